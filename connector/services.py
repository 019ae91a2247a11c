"""The app's long-lived collaborators, built once per process from the validated settings.

Functions ask for what they need (`services().work_queues`, ...). Construction is lazy so that a
function that needs only the queue never imports msgraph (the webhook path stays light), and so
that tests can build their own `Services` from their own `Settings`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from azure.core.exceptions import HttpResponseError

from connector.config import Settings, get_settings, reset_settings_cache
from connector.messages import ExchangeChange
from connector.stores.activity import ActivityLog
from connector.stores.holds import HoldStore
from connector.stores.mappings import MappingStore
from connector.stores.queues import WorkQueues
from connector.stores.registry import ResourceRecord, ResourceRegistry
from connector.stores.repositories import Repositories
from connector.stores.settings import SettingsStore
from connector.stores.storage import StorageClients
from connector.telemetry import on_activity
from connector.web.graph_intake import SubscriptionCache

if TYPE_CHECKING:  # the gateways import msgraph / the Dime.Scheduler SDK: only when first used
    from connector.gateways.graph import ExchangeGateway
    from connector.gateways.planning import PlanningGateway
    from connector.web.health import HealthReporter
    from connector.web.monitor import Monitor
    from connector.web.settings_api import SettingsApi


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
        return MappingStore(self.repositories.mappings, self.repositories.window)

    @cached_property
    def registry(self) -> ResourceRegistry:
        return ResourceRegistry(self.repositories.subscriptions)

    @cached_property
    def subscription_lookup(self) -> SubscriptionCache:
        """The webhooks' subscription index look-up, known subscriptions remembered for a minute."""
        return SubscriptionCache(self.registry.subscription)

    @cached_property
    def holds(self) -> HoldStore:
        """Changes the mass-change guard held for an admin (rows in the `cursors` table)."""
        return HoldStore(self.repositories.cursors)

    @cached_property
    def resource_settings(self) -> SettingsStore:
        return SettingsStore(self.repositories.settings)

    @cached_property
    def activity(self) -> ActivityLog:
        return ActivityLog(self.repositories.activity, self.settings.activity_retention_days, listeners=[on_activity])

    @cached_property
    def work_queues(self) -> WorkQueues:
        queues = WorkQueues(self.storage)
        _ensure("queues", queues.ensure)
        return queues

    @cached_property
    def exchange(self) -> ExchangeGateway:
        from connector.gateways.graph import ExchangeGateway

        return ExchangeGateway(self.settings.graph)

    @cached_property
    def settings_api(self) -> SettingsApi:
        from connector.web.settings_api import SettingsApi

        def resync(records: list[ResourceRecord]) -> None:
            for record in records:
                if record.user_id:
                    self.work_queues.send_exchange_change(ExchangeChange(record.user_id, reason="settings"))

        return SettingsApi(self.registry, self.resource_settings, self.settings.admin_app_role, resync)

    @cached_property
    def monitor(self) -> Monitor:
        from connector.web.monitor import Monitor

        return Monitor(self.registry, self.activity, self.mappings, self.work_queues, self.storage,
                       self.settings.activity_retention_days, self.holds)

    @cached_property
    def health(self) -> HealthReporter:
        from connector.web.health import HealthReporter

        storage = self.storage

        def storage_probe() -> None:
            next(iter(storage.table_service.list_tables(results_per_page=1)), None)

        return HealthReporter(self.settings, storage=lambda: asyncio.to_thread(storage_probe),
                              graph=lambda: self.exchange.ping(), planning=lambda: asyncio.to_thread(self.planning.ping))

    @cached_property
    def planning(self) -> PlanningGateway:
        from connector.gateways.planning import PlanningGateway

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
