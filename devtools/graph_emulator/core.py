"""The emulator's state and the services every handler shares.

All state lives on the server's event loop: handlers and background deliveries run there, and
mutate state only between awaits, so no locks are needed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp

from . import pipeline
from .config import GraphEmulatorConfig
from .delivery import Notifier
from .delta import DeltaBook
from .errors import GraphError
from .faults import FaultBook
from .messages import GraphRequest, GraphResponse
from .stats import Stats
from .store import EventStore, EventView, User
from .subscriptions import Subscription, SubscriptionBook
from .throttle import Throttle
from .timeutil import format_utc


@dataclass(frozen=True)
class ChangeRef:
    """The ids and version of an item at the moment it changed (kept for notifications)."""

    regular_id: str
    immutable_id: str
    change_key: str


log = logging.getLogger("graph_emulator")


class Emulator:
    def __init__(self, config: GraphEmulatorConfig) -> None:
        self.config = config
        self._initial_config = dataclasses.replace(config)  # /reset also undoes /_emulator/config changes
        self.session: aiohttp.ClientSession | None = None
        self.clock_offset = 0.0
        self._reauthorizer: asyncio.Task[None] | None = None
        self._new_state()

    def _new_state(self) -> None:
        self.store = EventStore(self.config.max_expanded_occurrences)
        self.stats = Stats()
        self.faults = FaultBook()
        self.throttle = Throttle(self.config, self.timestamp)
        self.subscriptions = SubscriptionBook()
        self.delta = DeltaBook()
        self.notifier = Notifier(self.config, self.stats, self.http, self.subscriptions.is_live, self.now)

    def reset(self) -> None:
        """Forget everything: users, events, subscriptions, tokens, faults, counters, clock offset,
        and the knobs changed through /_emulator/config."""
        self.close()
        for field in dataclasses.fields(self.config):
            setattr(self.config, field.name, getattr(self._initial_config, field.name))
        self.clock_offset = 0.0
        self._new_state()

    def close(self) -> None:
        """Stop the background work: deliveries in flight and the reauthorization ticker."""
        self.notifier.close()
        if self._reauthorizer is not None:
            self._reauthorizer.cancel()
            self._reauthorizer = None

    # -- automatic reauthorizationRequired ---------------------------------------------------------
    def schedule_reauthorization(self, sub: Subscription) -> None:
        """The next challenge comes one period after the subscription was created or renewed."""
        interval = self.config.reauthorization_interval_seconds
        sub.next_reauthorization = self.timestamp() + (interval or 0)
        self.ensure_reauthorizer()

    def ensure_reauthorizer(self) -> None:
        """Start the ticker (on the server's loop) if reauthorization is on and it is not running."""
        if self.config.reauthorization_interval_seconds and (self._reauthorizer is None or self._reauthorizer.done()):
            self._reauthorizer = asyncio.get_running_loop().create_task(self._reauthorize_forever())

    async def _reauthorize_forever(self) -> None:
        while True:
            interval = self.config.reauthorization_interval_seconds
            await asyncio.sleep(min(interval or 1.0, 1.0) / 4)
            if interval:
                try:
                    self.reauthorize_due(interval)
                except Exception:  # a bug here must not stop the ticker
                    log.exception("automatic reauthorizationRequired failed")

    def reauthorize_due(self, interval: float) -> None:
        """Send reauthorizationRequired to every live subscription whose period has passed."""
        now, moment = self.timestamp(), self.now()
        for sub in list(self.subscriptions.items.values()):
            if sub.lifecycle_url and sub.live(moment) and sub.next_reauthorization <= now:
                sub.next_reauthorization = now + interval
                self.notifier.lifecycle(sub.lifecycle_url, sub, "reauthorizationRequired")

    async def execute(self, req: GraphRequest) -> GraphResponse:
        """Run one Graph request, real or inside a ``$batch``, through the pipeline."""
        return await pipeline.execute(self, req)

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.clock_offset)

    def timestamp(self) -> float:
        return time.time() + self.clock_offset

    def http(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession()
        return self.session

    def mailbox(self, ref: str) -> User:
        user = self.store.find_user(ref)
        if user is None:
            raise GraphError(404, "ErrorInvalidUser", f"The requested user '{ref}' is invalid.")
        return user

    @staticmethod
    def change_ref(view: EventView) -> ChangeRef:
        return ChangeRef(view.id(False), view.id(True), view.change_key)

    def event_changed(self, user: User, change_type: str, refs: list[ChangeRef]) -> None:
        """Queue change notifications for every live subscription on the mailbox that wants them."""
        for sub in self.subscriptions.live_for(user.id, self.now()):
            if change_type not in sub.change_types:
                continue
            for ref in refs:
                event_id = ref.immutable_id if sub.immutable_ids else ref.regular_id
                resource = f"Users/{user.id}/Events/{event_id}"
                item: dict[str, Any] = {
                    "id": secrets.token_urlsafe(12),
                    "subscriptionId": sub.id,
                    "subscriptionExpirationDateTime": format_utc(sub.expiration),
                    "changeType": change_type,
                    "resource": resource,
                    "resourceData": {
                        "@odata.type": "#Microsoft.Graph.Event",
                        "@odata.id": resource,
                        "@odata.etag": f'W/"{ref.change_key}"',
                        "id": event_id,
                    },
                    "clientState": sub.client_state,
                    "tenantId": self.config.tenant_id,
                }
                self.notifier.enqueue(sub.notification_url, item, sub.id)
