"""Asynchronous delivery of change and lifecycle notifications, with retries and injected faults.

Items for one URL that arrive within ``delivery_batch_ms`` are coalesced into one POST
``{"value": [...]}``. The POST has ``delivery_timeout_seconds`` (Graph: 3 s) to be answered; a
failed POST (non-2xx, connection error, timeout) is retried with exponential back-off until
``retry_max_duration_seconds``, and always at least once. Items whose subscription expired or was
deleted meanwhile are not sent.

Each endpoint (URL) is judged on its answers of the last ``endpoint_window_seconds``
(change-notifications-delivery-webhooks): over ``slow_share`` slower than ``slow_answer_seconds``
makes it **slow** (new notifications wait ``slow_delay_seconds`` before their first attempt); over
``drop_share`` failed makes it **drop** (for ``drop_seconds`` every notification for it, new or
retried, is dropped and never sent). A state lasts its period, then the endpoint is judged again.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import deque
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


@dataclass(frozen=True)
class _Answer:
    at: float  # loop time
    slow: bool
    failed: bool


@dataclass
class EndpointHealth:
    """One endpoint's recent answers and the state Graph's judgement put it in."""

    answers: deque[_Answer] = field(default_factory=deque)
    state: str = "healthy"  # healthy | slow | drop
    until: float = 0.0  # loop time the state ends

    def current(self, now: float) -> str:
        if self.state != "healthy" and now >= self.until:
            self.state = "healthy"
        return self.state

    def judge(self, answer: _Answer, config: GraphEmulatorConfig) -> None:
        """Record one answer and put the endpoint in the state its recent answers call for."""
        self.answers.append(answer)
        while self.answers and self.answers[0].at <= answer.at - config.endpoint_window_seconds:
            self.answers.popleft()
        total = len(self.answers)
        if total < config.endpoint_min_answers or self.current(answer.at) == "drop":
            return
        failed = sum(a.failed for a in self.answers) / total
        slow = sum(a.slow for a in self.answers) / total
        if failed > config.drop_share:
            self.state, self.until = "drop", answer.at + config.drop_seconds
        elif slow > config.slow_share and self.state == "healthy":
            self.state, self.until = "slow", answer.at + config.slow_delay_seconds

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "state": self.current(now),
            "secondsLeft": round(max(0.0, self.until - now), 3) if self.state != "healthy" else 0,
            "answers": len(self.answers),
            "slow": sum(a.slow for a in self.answers),
            "failed": sum(a.failed for a in self.answers),
        }


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
        self.endpoints: dict[str, EndpointHealth] = {}
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
        self.stats.notifications["lifecycleSent"] += 1
        self.spawn(self._deliver(url, [(subscription.id, item)], "lifecycle"))

    def health(self, url: str) -> EndpointHealth:
        return self.endpoints.setdefault(url, EndpointHealth())

    def pending(self) -> int:
        """Notifications not yet settled: waiting in a batch, plus the posts (or their retries) under way."""
        return sum(len(pending.items) for pending in self._pending.values()) + len(self._tasks)

    def delivery_json(self) -> dict[str, Any]:
        """The ``delivery`` object of ``/_emulator/stats``: each endpoint's state and recent answers, and how
        many deliveries are still to settle (a test that waits for quiet waits for them too)."""
        now = asyncio.get_running_loop().time()
        return {"endpoints": {url: health.to_json(now) for url, health in self.endpoints.items()},
                "pending": self.pending()}

    def spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(self, url: str, items: list[tuple[str, dict[str, Any]]], kind: str) -> None:
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        loop = asyncio.get_running_loop()
        health = self.health(url)
        if health.current(loop.time()) == "slow":
            self.stats.notifications["delayedSlowEndpoint"] += len(items)
            await asyncio.sleep(self.config.slow_delay_seconds)
        started = loop.time()
        attempt = 0
        while True:
            if kind == "change":
                items = [(sid, item) for sid, item in items if self.is_live(sid, self.now())]
                if not items:
                    return
            if health.current(loop.time()) == "drop":
                self.stats.notifications["droppedDropEndpoint"] += len(items)
                self._record(url, kind, attempt + 1, None, "endpoint in drop state: not sent",
                             [item for _, item in items])
                return
            attempt += 1
            sent_at = loop.time()
            status, error = await self._post(url, [item for _, item in items])
            took = loop.time() - sent_at
            ok = status is not None and 200 <= status < 300
            timed_out = (error or "").startswith("TimeoutError")
            slow = timed_out or took > self.config.slow_answer_seconds
            health.judge(_Answer(loop.time(), slow, not ok or took > self.config.drop_answer_seconds), self.config)
            if slow:
                self.stats.notifications["slowAnswers"] += 1
            self._record(url, kind, attempt, status, error, [item for _, item in items])
            if ok:
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
