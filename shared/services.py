"""The app's long-lived collaborators, built once per process from the validated settings.

Functions ask for what they need (`services().work_queues`, ...). Construction is lazy so that a
function that needs only the queue never imports msgraph (the webhook path stays light), and so
that tests can build their own `Services` from their own `Settings`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from azure.core.exceptions import HttpResponseError

from shared.activity import ActivityLog
from shared.config import Settings, get_settings, reset_settings_cache
from shared.mappings import MappingStore
from shared.messages import ExchangeChange
from shared.queues import WorkQueues
from shared.registry import ResourceRecord, ResourceRegistry
from shared.repositories import Repositories
from shared.resource_settings import SettingsStore
from shared.storage import StorageClients

if TYPE_CHECKING:  # the gateways import msgraph / the Dime.Scheduler SDK: only when first used
    from shared.graph_gateway import ExchangeGateway
    from shared.health import HealthReporter
    from shared.monitor import Monitor
    from shared.planning_gateway import PlanningGateway
    from shared.settings_api import SettingsApi


class Services:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def storage(self) -> StorageClients:
        return StorageClients(self.settings.storage)

    @cached_property
    def repositories(self) -> Repositories:
        repositories = Repositories(self.storage)
        _ensure("tables", repositories.ensure)
        return repositories

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
        queues = WorkQueues(self.storage)
        _ensure("queues", queues.ensure)
        return queues

    @cached_property
    def exchange(self) -> ExchangeGateway:
        from shared.graph_gateway import ExchangeGateway

        return ExchangeGateway(self.settings.graph)

    @cached_property
    def settings_api(self) -> SettingsApi:
        from shared.settings_api import SettingsApi

        def resync(records: list[ResourceRecord]) -> None:
            for record in records:
                if record.user_id:
                    self.work_queues.send_exchange_change(ExchangeChange(record.user_id, reason="settings"))

        return SettingsApi(self.registry, self.resource_settings, self.settings.admin_app_role, resync)

    @cached_property
    def monitor(self) -> Monitor:
        from shared.monitor import Monitor

        return Monitor(self.registry, self.activity, self.mappings, self.work_queues, self.storage,
                       self.settings.activity_retention_days)

    @cached_property
    def health(self) -> HealthReporter:
        from shared.health import HealthReporter

        return HealthReporter(self)

    @cached_property
    def planning(self) -> PlanningGateway:
        from shared.planning_gateway import PlanningGateway

        return PlanningGateway(self.settings.planning)


def _ensure(what: str, create: Callable[[], None]) -> None:
    """Create the tables / queues once per process (a fresh Azurite has none). In Azure, Bicep creates
    them and the identity may lack the right to: that is logged, not fatal."""
    try:
        create()
    except HttpResponseError as exc:
        logging.getLogger(__name__).warning("could not create the %s (%s); expecting them to exist", what, exc.status_code)


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
