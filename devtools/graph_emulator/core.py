"""The emulator's state and the services every handler shares.

All state lives on the server's event loop: handlers and background deliveries run there, and
mutate state only between awaits, so no locks are needed.
"""

from __future__ import annotations

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
from .subscriptions import SubscriptionBook
from .throttle import Throttle
from .timeutil import format_utc


@dataclass(frozen=True)
class ChangeRef:
    """The ids and version of an item at the moment it changed (kept for notifications)."""

    regular_id: str
    immutable_id: str
    change_key: str


class Emulator:
    def __init__(self, config: GraphEmulatorConfig) -> None:
        self.config = config
        self.session: aiohttp.ClientSession | None = None
        self.clock_offset = 0.0
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
        """Forget everything: users, events, subscriptions, tokens, faults, counters, clock offset."""
        self.notifier.close()
        self.clock_offset = 0.0
        self._new_state()

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
