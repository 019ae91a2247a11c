"""JSON batching of Graph writes: concurrent writes are coalesced into `POST /$batch` requests.

Why: the planning worker runs many queue invocations at once on one event loop (the host runs up to
batchSize + newBatchThreshold of them), each usually writing one event. Sent one by one, every write
is an HTTP round trip and counts against the mailbox's 4-concurrent-requests limit. Here, writes
submitted within a short window (`window_seconds`, default 50 ms) travel together in one `$batch`
of at most 20 requests, which may span several mailboxes (Graph throttles each inner request on
its own mailbox).

Per mailbox (the `users/{id}` a request addresses):
- at most one batch in flight holding that mailbox's requests. Graph runs at most 4 Outlook requests
  of a batch at a time, whatever their mailboxes (throttling-limits, "Outlook service batching"), so one
  batch without `dependsOn` may hold up to 20 requests of one mailbox and still keeps within its limit
  of 4 concurrent requests: a busy mailbox's writes travel 20 to a round trip. Before 2022 Graph ran
  them all at once and answered the ones past 4 with 429 (MailboxConcurrency), and a tenant may still
  behave so: a mailbox whose batch of more than `PER_MAILBOX` requests met an inner 429 gets at most
  `PER_MAILBOX` per batch from then on (its throttled writes are retried like any 429);
- `Retry-After` is honoured: an inner 429/503 fails that write with a transient `GraphError`
  carrying the delay (the worker re-queues the change for later), and the mailbox is paused until
  the delay has passed: writes submitted meanwhile fail at once with the remaining delay instead
  of being sent into the throttle. A throttled or failed *batch* fails every write in it the same
  way, and pauses every mailbox it held.
- A batch Graph refuses as a whole (413: too large; 400: the batch itself, e.g. more requests than the
  tenant takes) says nothing about any one of its writes: it goes again as two halves, recursively, one
  after the other (the mailboxes stay in flight meanwhile), so only a write refused on its own fails
  with that answer and the rest are applied.
Inner responses arrive in any order: they are matched by id. Limits hold per process; across
scaled-out instances Graph's own 429s (handled as above) are the backstop.

`build_batch`, `match_responses` and `inner_error` are pure (unit-tested); `GraphBatcher` does the
scheduling and needs an async `send(body) -> dict` that posts the batch (ExchangeGateway.batch).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from connector.errors import GraphError

MAX_BATCH = 20  # Graph's limit of requests in one $batch
PER_MAILBOX = 4  # Outlook: 4 concurrent requests per mailbox (a batch's cap where Graph runs them all at once)
PAUSE_STATUSES = frozenset({429, 503})
REFUSED_BATCH_STATUSES = frozenset({400, 413})  # the batch as a whole: split it (see the module docstring)


@dataclass(frozen=True)
class WriteRequest:
    """One Graph request inside a batch: method, URL relative to the version root, optional JSON body."""

    method: str
    url: str  # e.g. /users/{id}/events/{event-id} (no host, no /v1.0)
    mailbox: str  # the user id the request addresses (throttling key)
    body: Mapping[str, Any] | None = None
    prefer: tuple[str, ...] = ()
    if_match: str | None = None  # a conditional write: 412 when the item's changeKey moved meanwhile


@dataclass(frozen=True)
class WriteResponse:
    status: int
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> dict[str, Any]:
        return dict(self.body) if isinstance(self.body, Mapping) else {}


def build_batch(items: Sequence[tuple[str, WriteRequest]]) -> dict[str, Any]:
    """The `$batch` body for (id, request) pairs; writes with a body carry their Content-Type."""
    if not 0 < len(items) <= MAX_BATCH:
        raise ValueError(f"a batch holds 1..{MAX_BATCH} requests, got {len(items)}")
    requests: list[dict[str, Any]] = []
    for request_id, request in items:
        entry: dict[str, Any] = {"id": request_id, "method": request.method.upper(), "url": request.url}
        headers: dict[str, str] = {}
        if request.prefer:
            headers["Prefer"] = ", ".join(request.prefer)
        if request.if_match:
            headers["If-Match"] = request.if_match
        if request.body is not None:
            headers["Content-Type"] = "application/json"
            entry["body"] = dict(request.body)
        if headers:
            entry["headers"] = headers
        requests.append(entry)
    return {"requests": requests}


def _retry_after(headers: Mapping[str, Any]) -> float | None:
    for key, value in headers.items():
        if key.lower() == "retry-after":
            try:
                return max(0.0, float(value))
            except (TypeError, ValueError):
                return None
    return None


def match_responses(ids: Sequence[str], answer: Mapping[str, Any]) -> dict[str, WriteResponse]:
    """Inner responses by request id (they come back in any order). A request the answer does not
    mention gets a 503 (unknown outcome: retried, which is safe because every write is idempotent)."""
    found: dict[str, WriteResponse] = {}
    for raw in answer.get("responses") or ():
        if not isinstance(raw, Mapping) or str(raw.get("id")) not in ids:
            continue
        raw_headers = raw.get("headers")
        headers: Mapping[str, Any] = raw_headers if isinstance(raw_headers, Mapping) else {}
        try:
            status = int(raw.get("status", 0))
        except (TypeError, ValueError):
            status = 0
        found[str(raw["id"])] = WriteResponse(status, {str(k): str(v) for k, v in headers.items()}, raw.get("body"))
    missing = WriteResponse(503, {}, {"error": {"code": "MissingBatchResponse",
                                                "message": "the $batch answer did not include this request"}})
    return {request_id: found.get(request_id, missing) for request_id in ids}


def inner_error(response: WriteResponse) -> GraphError:
    """A failed inner response as the GraphError a direct request would have raised."""
    error = response.json().get("error")
    code, message = "UnknownError", f"HTTP {response.status}"
    if isinstance(error, Mapping):
        code = str(error.get("code") or code)
        message = str(error.get("message") or message)
    return GraphError(response.status or 503, code, message, _retry_after(response.headers))


@dataclass
class _Pending:
    request: WriteRequest
    future: asyncio.Future[WriteResponse]


class GraphBatcher:
    """Coalesces concurrent writes into `$batch` requests (see the module docstring). One per event loop."""

    def __init__(
        self,
        send: Callable[[dict[str, Any]], Awaitable[dict[str, Any] | None]],
        window_seconds: float = 0.05,
        max_batch: int = MAX_BATCH,
        per_mailbox: int = MAX_BATCH,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._send = send
        self._window = window_seconds
        self._max_batch = max_batch
        self._per_mailbox = per_mailbox
        self._clock = clock
        self._pending: deque[_Pending] = deque()
        self._busy: set[str] = set()  # mailboxes with a batch in flight
        self._paused: dict[str, float] = {}  # mailbox -> monotonic time it may be written again
        self._narrow: set[str] = set()  # mailboxes whose batches are capped at PER_MAILBOX (see the docstring)
        self._wake = asyncio.Event()
        self._runner: asyncio.Task[None] | None = None
        self._in_flight: set[asyncio.Task[None]] = set()
        self.batches_sent = 0

    async def submit(self, request: WriteRequest) -> WriteResponse:
        """Send `request` in the next batch; returns its inner response (any status), or raises a
        transient GraphError when its mailbox is paused by a Retry-After or the batch failed."""
        remaining = self._paused.get(request.mailbox, 0.0) - self._clock()
        if remaining > 0:
            raise GraphError(429, "TooManyRequests", "mailbox paused by an earlier Retry-After", remaining)
        future: asyncio.Future[WriteResponse] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(request, future))
        self._wake.set()
        if self._runner is None or self._runner.done():
            self._runner = asyncio.create_task(self._run())
        return await future

    async def _run(self) -> None:
        """Drain the pending writes: wait for the window, then send what each mailbox may send now."""
        while self._pending:
            if len(self._pending) < self._max_batch:
                await asyncio.sleep(self._window)  # let concurrent invocations add their writes
            chosen = self._take()
            if not chosen:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=1.0)
                continue
            task = asyncio.create_task(self._dispatch(chosen))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    def _take(self) -> list[_Pending]:
        """Up to max_batch writes whose mailbox has no batch in flight, ≤ its cap per mailbox, FIFO."""
        chosen: list[_Pending] = []
        per: dict[str, int] = {}
        keep: deque[_Pending] = deque()
        now = self._clock()
        while self._pending:
            item = self._pending.popleft()
            mailbox = item.request.mailbox
            if item.future.done():
                continue  # cancelled by its caller
            remaining = self._paused.get(mailbox, 0.0) - now
            if remaining > 0:
                item.future.set_exception(GraphError(429, "TooManyRequests", "mailbox paused by an earlier Retry-After",
                                                     remaining))
                continue
            cap = min(self._per_mailbox, PER_MAILBOX) if mailbox in self._narrow else self._per_mailbox
            if len(chosen) < self._max_batch and mailbox not in self._busy and per.get(mailbox, 0) < cap:
                chosen.append(item)
                per[mailbox] = per.get(mailbox, 0) + 1
            else:
                keep.append(item)
        self._pending = keep
        self._busy.update(per)
        return chosen

    def _pause(self, mailbox: str, seconds: float | None) -> None:
        if seconds:
            self._paused[mailbox] = max(self._paused.get(mailbox, 0.0), self._clock() + seconds)

    async def _dispatch(self, chosen: list[_Pending]) -> None:
        mailboxes = {item.request.mailbox for item in chosen}
        try:
            await self._send_split(chosen)
        finally:
            self._busy.difference_update(mailboxes)

    async def _send_split(self, chosen: list[_Pending]) -> None:
        """Send `chosen` as one batch; one refused as a whole goes again as two halves (module docstring)."""
        ids = [str(index) for index in range(len(chosen))]
        mailboxes = {item.request.mailbox for item in chosen}
        try:
            self.batches_sent += 1
            answer = await self._send(build_batch(list(zip(ids, (item.request for item in chosen), strict=True))))
        except GraphError as exc:
            if exc.status in REFUSED_BATCH_STATUSES and len(chosen) > 1:
                middle = len(chosen) // 2
                await self._send_split(chosen[:middle])
                await self._send_split(chosen[middle:])
                return
            if exc.status in PAUSE_STATUSES:
                for mailbox in mailboxes:
                    self._pause(mailbox, exc.retry_after)
            for item in chosen:
                if not item.future.done():
                    item.future.set_exception(exc)
            return
        except BaseException as exc:  # network error or a bug: every write in the batch learns of it
            for item in chosen:
                if not item.future.done():
                    item.future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        responses = match_responses(ids, answer or {})
        counts = Counter(item.request.mailbox for item in chosen)
        for request_id, item in zip(ids, chosen, strict=True):
            response = responses[request_id]
            mailbox = item.request.mailbox
            if response.status in PAUSE_STATUSES:
                self._pause(mailbox, _retry_after(response.headers))
                if response.status == 429 and counts[mailbox] > PER_MAILBOX:
                    self._narrow.add(mailbox)
            if not item.future.done():
                item.future.set_result(response)
