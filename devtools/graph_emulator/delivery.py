"""Asynchronous delivery of change and lifecycle notifications, with retries and injected faults.

Items for one URL that arrive within ``delivery_batch_ms`` are coalesced into one POST
``{"value": [...]}``. A failed POST (non-2xx, connection error, timeout) is retried with exponential
back-off until ``retry_max_duration_seconds``, and always at least once. Items whose subscription
expired or was deleted meanwhile are not sent.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import aiohttp

from .config import GraphEmulatorConfig
from .stats import Stats
from .subscriptions import Subscription
from .timeutil import format_utc


@dataclass
class NotificationFaults:
    drop: int = 0  # drop the next N items
    duplicate: int = 0  # deliver the next N items twice
    reorder: bool = False  # reverse the items of each delivery
    delay_ms: int = 0  # hold every delivery this long

    def to_json(self) -> dict[str, Any]:
        return {"drop": self.drop, "duplicate": self.duplicate, "reorder": self.reorder, "delayMs": self.delay_ms}


@dataclass
class _Pending:
    items: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (subscription id, item)
    handle: asyncio.TimerHandle | None = None


class Notifier:
    def __init__(
        self,
        config: GraphEmulatorConfig,
        stats: Stats,
        http: Callable[[], aiohttp.ClientSession],
        is_live: Callable[[str, datetime], bool],
        now: Callable[[], datetime],
    ) -> None:
        self.config = config
        self.stats = stats
        self.http = http
        self.is_live = is_live
        self.now = now
        self.faults = NotificationFaults()
        self.log: list[dict[str, Any]] = []
        self._pending: dict[str, _Pending] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    def enqueue(self, url: str, item: dict[str, Any], subscription_id: str) -> None:
        pending = self._pending.setdefault(url, _Pending())
        pending.items.append((subscription_id, item))
        if pending.handle is None:
            loop = asyncio.get_running_loop()
            pending.handle = loop.call_later(self.config.delivery_batch_ms / 1000, self._flush, url)

    def _flush(self, url: str) -> None:
        pending = self._pending.pop(url, None)
        if pending is None or self._closed:
            return
        items: list[tuple[str, dict[str, Any]]] = []
        for entry in pending.items:
            if self.faults.drop > 0:
                self.faults.drop -= 1
                self.stats.notifications["dropped"] += 1
                continue
            items.append(entry)
            if self.faults.duplicate > 0:
                self.faults.duplicate -= 1
                self.stats.notifications["duplicated"] += 1
                items.append(entry)
        if self.faults.reorder:
            items.reverse()
        if items:
            self.spawn(self._deliver(url, items, "change"))

    def lifecycle(self, url: str, subscription: Subscription, event: str) -> None:
        """Send one lifecycle notification (not coalesced, not subject to drop/duplicate faults)."""
        item = {
            "subscriptionId": subscription.id,
            "subscriptionExpirationDateTime": format_utc(subscription.expiration),
            "tenantId": self.config.tenant_id,
            "clientState": subscription.client_state,
            "lifecycleEvent": event,
        }
        self.spawn(self._deliver(url, [(subscription.id, item)], "lifecycle"))

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, items: list[tuple[str, dict[str, Any]]], kind: str) -> None:
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        loop = asyncio.get_running_loop()
        started = loop.time()
        attempt = 0
        while True:
            if kind == "change":
                items = [(sid, item) for sid, item in items if self.is_live(sid, self.now())]
                if not items:
                    return
            attempt += 1
            status, error = await self._post(url, [item for _, item in items])
            self._record(url, kind, attempt, status, error, [item for _, item in items])
            if status is not None and 200 <= status < 300:
                key = "delivered" if kind == "change" else "lifecycleDelivered"
                self.stats.notifications[key] += len(items)
                self.stats.notifications["posts"] += 1
                return
            self.stats.notifications["failedAttempts"] += 1
            delay = min(self.config.retry_base_seconds * self.config.retry_factor ** (attempt - 1),
                        self.config.retry_max_seconds)
            if attempt > 1 and loop.time() + delay - started > self.config.retry_max_duration_seconds:
                self.stats.notifications["abandoned"] += len(items)
                return
            await asyncio.sleep(delay * random.uniform(0.9, 1.1))

    async def _post(self, url: str, items: list[dict[str, Any]]) -> tuple[int | None, str | None]:
        timeout = aiohttp.ClientTimeout(total=self.config.delivery_timeout_seconds)
        body = json.dumps({"value": items}).encode()
        try:
            async with self.http().post(
                url, data=body, headers={"Content-Type": "application/json; charset=utf-8"}, timeout=timeout
            ) as response:
                await response.read()
                return response.status, None
        except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(self, url: str, kind: str, attempt: int, status: int | None, error: str | None,
                items: list[dict[str, Any]]) -> None:
        self.log.append({
            "url": url, "kind": kind, "attempt": attempt, "status": status, "error": error, "items": items,
            "time": format_utc(self.now()),
        })
        del self.log[: -self.config.notification_log_limit]

    def close(self) -> None:
        """Stop everything in flight (reset and shutdown)."""
        self._closed = True
        for pending in self._pending.values():
            if pending.handle is not None:
                pending.handle.cancel()
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
