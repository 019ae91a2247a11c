"""The app's long-lived collaborators, built once per process from the validated settings.

Functions ask for what they need (`services().work_queues`, ...). Construction is lazy so that a
function that needs only the queue never imports msgraph (the webhook path stays light), and so
that tests can build their own `Services` from their own `Settings`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

from shared.activity import ActivityLog
from shared.config import Settings, get_settings, reset_settings_cache
from shared.mappings import MappingStore
from shared.queues import WorkQueues
from shared.registry import ResourceRegistry
from shared.repositories import Repositories
from shared.resource_settings import SettingsStore
from shared.storage import StorageClients

if TYPE_CHECKING:  # the gateways import msgraph / the Dime.Scheduler SDK: only when first used
    from shared.graph_gateway import ExchangeGateway
    from shared.health import HealthReporter
    from shared.planning_gateway import PlanningGateway


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def storage(self) -> StorageClients:
        return StorageClients(self.settings.storage)

    @cached_property
    def repositories(self) -> Repositories:
        return Repositories(self.storage)

    @cached_property
    def mappings(self) -> MappingStore:
        return MappingStore(self.repositories.mappings)

    @cached_property
    def registry(self) -> ResourceRegistry:
        return ResourceRegistry(self.repositories.subscriptions)

    @cached_property
    def resource_settings(self) -> SettingsStore:
        return SettingsStore(self.repositories.settings)

    @cached_property
    def activity(self) -> ActivityLog:
        return ActivityLog(self.repositories.activity, self.settings.activity_retention_days)

    @cached_property
    def work_queues(self) -> WorkQueues:
        return WorkQueues(self.storage)

    @cached_property
    def exchange(self) -> ExchangeGateway:
        from shared.graph_gateway import ExchangeGateway

        return ExchangeGateway(self.settings.graph)

    @cached_property
    def health(self) -> HealthReporter:
        from shared.health import HealthReporter

        return HealthReporter(self)

    @cached_property
    def planning(self) -> PlanningGateway:
        from shared.planning_gateway import PlanningGateway

        return PlanningGateway(self.settings.planning)


_services: Services | None = None


def services() -> Services:
    """The process's services. Functions hold no state of their own: everything long-lived is here."""
    global _services
    if _services is None:
        _services = Services(get_settings())
    return _services


def reset_services() -> None:
    """Forget the settings and every client (tests that start the app again with other settings)."""
    global _services
    _services = None
    reset_settings_cache()
