"""Appointment webhooks: subscriptions, and delivery with retries, ordering and injected faults.

Delivery follows the reference: an HTTP POST of the appointment as JSON to every subscription of
the event type; only HTTP 200 counts as success — anything else (201, 202, 204 included), a timeout
or a connection error is retried with exponential back-off, up to ``retry_max_attempts`` attempts,
then abandoned. Deliveries for the same (subscription, appointment) go out one after the other, in
the order the changes happened (a lane per pair); different lanes run concurrently.

Injected faults (control plane): ``drop`` the next N deliveries (never sent), ``duplicate`` the next
N (sent twice), ``delayMs`` before every first attempt, ``reorder`` (hold the next N deliveries, then
queue them in reverse order).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from .config import SchedulerEmulatorConfig
from .values import iso_z

log = logging.getLogger(__name__)

# Event type (the route name) -> the change type its subscription must ask for.
EVENT_TYPES = {"AppointmentCreated": "Create", "AppointmentUpdated": "Update", "AppointmentDeleted": "Delete"}


class HookProblem(ValueError):
    """A subscription request that cannot be honoured; ``status`` is the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Hook:
    id: str
    event: str
    source_app: str
    name: str | None
    url: str
    resource: str
    change_type: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "event": self.event, "sourceApp": self.source_app, "name": self.name,
            "notificationURL": self.url, "resource": self.resource, "changeType": list(self.change_type),
        }


class HookRegistry:
    """The subscriptions, per event type."""

    def __init__(self) -> None:
        self.hooks: dict[str, Hook] = {}

    def subscribe(self, event: str, body: Any, limit: int) -> Hook:
        """Validate a subscription body against the Swagger (required: sourceApp, notificationURL,
        resource, changeType) and store it."""
        if not isinstance(body, dict):
            raise HookProblem("the body must be a JSON object")
        missing = [k for k in ("sourceApp", "notificationURL", "resource", "changeType") if body.get(k) in (None, "")]
        if missing:
            raise HookProblem(f"missing required field(s): {', '.join(missing)}")
        for key in ("sourceApp", "notificationURL", "resource"):
            if not isinstance(body[key], str):
                raise HookProblem(f"'{key}' must be a string")
        if body.get("name") is not None and not isinstance(body["name"], str):
            raise HookProblem("'name' must be a string")
        url = urlsplit(body["notificationURL"])
        if url.scheme not in ("http", "https") or not url.netloc:
            raise HookProblem(f"'notificationURL' must be an absolute http(s) URL, got {body['notificationURL']!r}")
        if body["resource"] != "Appointments":
            raise HookProblem(f"'resource' must be 'Appointments', got {body['resource']!r}")
        change_type = body["changeType"]
        if not isinstance(change_type, list) or not change_type or not all(isinstance(c, str) for c in change_type):
            raise HookProblem("'changeType' must be a non-empty array of strings")
        unknown = [c for c in change_type if c not in EVENT_TYPES.values()]
        if unknown:
            raise HookProblem(f"'changeType' has unknown value(s) {unknown}; use Create, Update or Delete")
        if EVENT_TYPES[event] not in change_type:
            raise HookProblem(f"'changeType' must contain {EVENT_TYPES[event]!r} for {event}")
        if len(self.hooks) >= limit:
            raise HookProblem("Resource exhausted. More than expected number of webhooks have been created.", 429)
        hook = Hook(
            str(uuid.uuid4()), event, body["sourceApp"], body.get("name"), body["notificationURL"],
            body["resource"], list(change_type),
        )
        self.hooks[hook.id] = hook
        return hook

    def unsubscribe(self, event: str, hook_id: str) -> bool:
        hook = self.hooks.get(hook_id)
        if hook is None or hook.event != event:
            return False
        del self.hooks[hook_id]
        return True

    def for_event(self, event: str, source_app: str | None = None) -> list[Hook]:
        """The hooks of ``event``; given a ``source_app``, only those registered under it (case-
        insensitively; an empty one matches no hook)."""
        return [h for h in self.hooks.values() if h.event == event
                and (source_app is None or (source_app != "" and h.source_app.casefold() == source_app.casefold()))]


@dataclass
class WebhookFaults:
    drop: int = 0
    duplicate: int = 0
    delay_ms: int = 0
    reorder: int = 0

    def as_json(self) -> dict[str, int]:
        return {"drop": self.drop, "duplicate": self.duplicate, "delayMs": self.delay_ms, "reorder": self.reorder}


@dataclass
class Delivery:
    seq: int
    hook: Hook
    event: str
    guid: str
    payload: dict[str, Any]
    duplicate: bool = False
    attempts: int = field(default=0)


class Dispatcher:
    """Queues and sends deliveries on the server's event loop."""

    def __init__(self, config: Callable[[], SchedulerEmulatorConfig]) -> None:
        self._config = config
        self.counters: Counter[str] = Counter()
        self.log: deque[dict[str, Any]] = deque(maxlen=config().delivery_log_limit)
        self.faults = WebhookFaults()
        self._seq = 0
        self._lanes: dict[tuple[str, str], deque[Delivery]] = {}
        self._workers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._held: list[Delivery] = []
        self._session: aiohttp.ClientSession | None = None

    # --- queueing -------------------------------------------------------------------------------
    def enqueue(self, hook: Hook, event: str, guid: str, payload: dict[str, Any]) -> None:
        self._seq += 1
        delivery = Delivery(self._seq, hook, event, guid, payload)
        if self.faults.drop > 0:
            self.faults.drop -= 1
            self.counters["dropped"] += 1
            self._record(delivery, outcome="dropped")
            return
        copies = [delivery]
        if self.faults.duplicate > 0:
            self.faults.duplicate -= 1
            self.counters["duplicated"] += 1
            copies.append(Delivery(delivery.seq, hook, event, guid, payload, duplicate=True))
        if self.faults.reorder > 0:
            self.faults.reorder -= 1
            self._held.extend(copies)
            if self.faults.reorder == 0:
                self.release_held()
            return
        for copy in copies:
            self._queue(copy)

    def release_held(self) -> None:
        """Queue held deliveries, last first (the point of a reorder fault)."""
        held, self._held = self._held, []
        for delivery in reversed(held):
            self._queue(delivery)

    def _queue(self, delivery: Delivery) -> None:
        key = (delivery.hook.id, delivery.guid)
        self._lanes.setdefault(key, deque()).append(delivery)
        if key not in self._workers:
            self._workers[key] = asyncio.get_running_loop().create_task(self._drain(key))

    def pending(self) -> int:
        return sum(len(lane) for lane in self._lanes.values()) + len(self._held)

    async def _drain(self, key: tuple[str, str]) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                await self._deliver(lane[0])
                lane.popleft()
        finally:
            self._lanes.pop(key, None)
            self._workers.pop(key, None)

    # --- sending --------------------------------------------------------------------------------
    async def _deliver(self, delivery: Delivery) -> None:
        config = self._config()
        if self.faults.delay_ms:
            await asyncio.sleep(self.faults.delay_ms / 1000)
        body = json.dumps(delivery.payload).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "DimeScheduler-Emulator"}
        if config.event_header:
            headers[config.event_header] = delivery.event
        for attempt in range(1, max(1, config.retry_max_attempts) + 1):
            delivery.attempts = attempt
            status, error = await self._post(delivery.hook.url, body, headers, config.delivery_timeout_seconds)
            if status == 200:
                self.counters["delivered"] += 1
                self._record(delivery, outcome="delivered", status=status)
                return
            self.counters["failedAttempts"] += 1
            self._record(delivery, outcome="failed", status=status, error=error)
            if attempt < config.retry_max_attempts:
                delay = config.retry_base_seconds * config.retry_factor ** (attempt - 1)
                await asyncio.sleep(min(delay, config.retry_max_seconds))
        self.counters["abandoned"] += 1
        self._record(delivery, outcome="abandoned")

    async def _post(self, url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int | None, str | None]:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.post(
                url, data=body, headers=headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                await response.read()
                return response.status, None
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            return None, f"{type(exc).__name__}: {exc}"

    def _record(self, delivery: Delivery, *, outcome: str, status: int | None = None, error: str | None = None) -> None:
        self.log.append(
            {
                "seq": delivery.seq, "hookId": delivery.hook.id, "url": delivery.hook.url,
                "eventType": delivery.event, "appointmentGuid": delivery.guid, "attempt": delivery.attempts,
                "status": status, "outcome": outcome, "error": error, "duplicate": delivery.duplicate,
                "at": iso_z(datetime.now(UTC)),
            }
        )

    # --- lifecycle ------------------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        names = ("delivered", "failedAttempts", "dropped", "abandoned", "duplicated")
        return {name: self.counters[name] for name in names} | {"pending": self.pending()}

    async def reset(self) -> None:
        """Forget everything: pending deliveries are cancelled, counters, log and faults cleared."""
        workers = list(self._workers.values())
        for worker in workers:
            worker.cancel()
        for worker in workers:
            with contextlib.suppress(asyncio.CancelledError):
                await worker
        self._lanes.clear()
        self._workers.clear()
        self._held.clear()
        self.counters.clear()
        self.log.clear()
        self.faults = WebhookFaults()

    async def close(self) -> None:
        await self.reset()
        if self._session is not None:
            await self._session.close()
            self._session = None
