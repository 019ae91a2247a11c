"""In-process instruments of the benchmark stack: process figures, a stack sampler, a storage
operation counter, an invocation log, a time-stamped log of writes, and the `/_bench` routes.

Everything here is installed by `launch.py` in the process it measures; the harness reads it over
HTTP (`GET /_bench/stats`). Cheap enough to leave on for every benchmark: a counter increment per
storage call, one list append per invocation or write.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import os
import re
import resource
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import unquote, urlsplit

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Any  # an aiohttp middleware (aiohttp's own alias is not public)

# Which function an I/O call belongs to: set around each invocation, inherited by `asyncio.to_thread`
# and by the dev host's executor calls (they copy the context). "host" = the host's own calls.
CURRENT_FUNCTION: contextvars.ContextVar[str] = contextvars.ContextVar("bench_function", default="host")


# -- the process ---------------------------------------------------------------------------------------
def process_figures() -> dict[str, float]:
    """CPU seconds (user + system), current RSS and peak RSS (MB) of this process."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    rss_pages = 0
    try:
        with open("/proc/self/statm") as statm:
            rss_pages = int(statm.read().split()[1])
    except OSError:
        pass
    return {
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 4),
        "rss_mb": round(rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),  # kB on Linux
        "threads": threading.active_count(),
        "wall": time.time(),
    }


# -- a wall-clock sampler of every thread ------------------------------------------------------------
_IDLE_LEAVES = ("threading.py", "queue.py", "selectors.py", "concurrent/futures/thread.py")
_IO_LEAVES = ("socket.py", "ssl.py", "http/client.py", "asyncio/selector_events.py")


_STDLIB = re.compile(r"^.*/python3\.\d+/")
_PROJECT = str(Path(__file__).resolve().parents[2]) + "/"
# Frames every worker thread or the event loop has at its bottom: no news in an inclusive profile.
_FRAMES_OF_EVERY_THREAD = frozenset({
    "threading.py:run", "threading.py:_bootstrap", "threading.py:_bootstrap_inner",
    "concurrent/futures/thread.py:run", "concurrent/futures/thread.py:_worker",
    "asyncio/base_events.py:run_forever", "asyncio/base_events.py:_run_once", "asyncio/events.py:_run",
    "asyncio/base_events.py:run_until_complete", "asyncio/runners.py:run",
})


def _where(frame: FrameType) -> str:
    code = frame.f_code
    path = code.co_filename
    if "site-packages/" in path:
        path = path.split("site-packages/", 1)[1]
    elif path.startswith(_PROJECT):
        path = path[len(_PROJECT):]
    else:
        path = _STDLIB.sub("", path)
    return f"{path}:{code.co_name}"


def _thread_cpu_ns(native_id: int) -> int:
    """Nanoseconds a thread of this process has run on a CPU (Linux schedstat; 0 if unknown)."""
    try:
        with open(f"/proc/self/task/{native_id}/schedstat") as stat:
            return int(stat.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


class Sampler:
    """Samples every thread's stack every `interval` seconds, two ways:

    - wall clock: a sample whose innermost frame waits for work (a lock, an idle executor, the event
      loop's select) is idle and dropped; the others count for every function on the stack
      (inclusive) and for the innermost one (self). Waiting on a socket counts (it is where a request
      spends its time) and is reported as a share;
    - CPU: each thread's stack is weighted by the CPU time (Linux schedstat) the thread used since
      the previous sample, so the shares say where the process's CPU went. The CPU of an interval
      goes to the stack seen at its end: a frame that blocks (a socket read) collects the CPU of the
      work just before it, so read the CPU profile by caller (inclusive), not by innermost frame."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.inclusive: Counter[str] = Counter()
        self.self_: Counter[str] = Counter()
        self.cpu_inclusive: Counter[str] = Counter()
        self.cpu_self: Counter[str] = Counter()
        self.cpu_ns = 0
        self.samples = 0
        self.io_samples = 0
        self.idle_samples = 0
        self.started = 0.0

    def start(self, interval: float = 0.005) -> None:
        self.stop()
        for counter in (self.inclusive, self.self_, self.cpu_inclusive, self.cpu_self):
            counter.clear()
        self.cpu_ns = 0
        self.samples = self.io_samples = self.idle_samples = 0
        self.started = time.time()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, args=(interval,), name="bench-sampler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join(timeout=5)
            self._thread = None

    def _run(self, interval: float) -> None:
        me = threading.get_ident()
        last_cpu: dict[int, int] = {}
        while not self._stop.wait(interval):
            native = {t.ident: t.native_id for t in threading.enumerate()}
            for ident, frame in sys._current_frames().items():
                if ident == me:
                    continue
                native_id = native.get(ident)
                used = 0
                if native_id is not None:
                    now = _thread_cpu_ns(native_id)
                    used = now - last_cpu.get(native_id, now)
                    last_cpu[native_id] = now
                stack = self._stack(frame)
                if used > 0:
                    self.cpu_ns += used
                    self.cpu_self[stack[0]] += used
                    for where in set(stack):
                        self.cpu_inclusive[where] += used
                leaf = frame.f_code.co_filename
                if any(leaf.endswith(name) for name in _IDLE_LEAVES):
                    self.idle_samples += 1
                    continue
                self.samples += 1
                if any(leaf.endswith(name) for name in _IO_LEAVES):
                    self.io_samples += 1
                self.self_[stack[0]] += 1
                for where in set(stack):
                    self.inclusive[where] += 1

    @staticmethod
    def _stack(frame: FrameType) -> list[str]:
        """Innermost first, without the frames every thread has at its bottom."""
        stack = [_where(frame)]
        current = frame.f_back
        while current is not None:
            where = _where(current)
            if where not in _FRAMES_OF_EVERY_THREAD:
                stack.append(where)
            current = current.f_back
        return stack

    def report(self, top: int = 30) -> dict[str, Any]:
        busy = max(self.samples, 1)
        cpu = max(self.cpu_ns, 1)
        return {
            "seconds": round(time.time() - self.started, 2),
            "busy_samples": self.samples,
            "socket_wait_share": round(self.io_samples / busy, 3),
            "cpu_seconds_sampled": round(self.cpu_ns / 1e9, 2),
            "cpu_inclusive": [{"where": w, "share": round(n / cpu, 3)} for w, n in self.cpu_inclusive.most_common(top)],
            "cpu_self": [{"where": w, "share": round(n / cpu, 3)} for w, n in self.cpu_self.most_common(top // 2)],
            "wall_inclusive": [{"where": w, "share": round(n / busy, 3)} for w, n in self.inclusive.most_common(top)],
            "wall_self": [{"where": w, "share": round(n / busy, 3)} for w, n in self.self_.most_common(top // 2)],
        }


# -- Azure Storage operations, counted at the azure-core transport -----------------------------------
def _table_kind(method: str, rest: str) -> str:
    if rest.startswith("Tables"):
        return "table_admin"
    if rest.startswith("$batch"):
        return "batch"
    if method == "GET":
        return "point_read" if "(PartitionKey=" in rest else "query"
    return {"POST": "insert", "PUT": "upsert_or_replace", "MERGE": "merge", "PATCH": "merge",
            "DELETE": "delete"}.get(method, method.lower())


def _queue_kind(method: str, rest: str, query: str) -> str:
    parts = [p for p in rest.split("/") if p]
    if len(parts) >= 2 and parts[1] == "messages":
        if len(parts) == 2:
            if method == "POST":
                return "put"
            if method == "GET":
                return "peek" if "peekonly=true" in query else "get"
            return "clear" if method == "DELETE" else method.lower()
        return {"DELETE": "delete", "PUT": "update"}.get(method, method.lower())
    if "comp=metadata" in query:
        return "metadata"
    return "queue_admin"


class StorageCounter:
    """Counts every Azure Storage call of the process by (function, service, kind)."""

    def __init__(self, ports: dict[int, str]) -> None:
        self.ports = ports  # port -> "blob" | "queue" | "table"
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def record(self, method: str, url: str) -> None:
        parts = urlsplit(url)
        service = self.ports.get(parts.port or 0)
        if service is None:
            return
        rest = unquote(parts.path).split("/", 2)[-1] if parts.path.count("/") >= 2 else ""
        if service == "table":
            kind = _table_kind(method.upper(), rest)
        elif service == "queue":
            kind = _queue_kind(method.upper(), rest, parts.query)
        else:
            kind = method.lower()
        key = (CURRENT_FUNCTION.get(), service, kind)
        with self._lock:
            self.counts[key] += 1

    def install(self) -> None:
        """Wrap the sync (requests) and async (aiohttp) transports of azure-core."""
        from azure.core.pipeline.transport import AioHttpTransport, RequestsTransport

        counter = self
        sync_send = RequestsTransport.send
        async_send = AioHttpTransport.send

        def send(self: Any, request: Any, **kwargs: Any) -> Any:
            counter.record(request.method, request.url)
            return sync_send(self, request, **kwargs)

        async def asend(self: Any, request: Any, **kwargs: Any) -> Any:
            counter.record(request.method, request.url)
            return await async_send(self, request, **kwargs)

        RequestsTransport.send = send  # type: ignore[method-assign,unused-ignore]
        AioHttpTransport.send = asend  # type: ignore[method-assign,unused-ignore]

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self.counts.items())
        return [{"function": f, "service": s, "kind": k, "count": n} for (f, s, k), n in sorted(items)]

    def clear(self) -> None:
        with self._lock:
            self.counts.clear()


# -- invocations of the function app -------------------------------------------------------------------
@dataclass
class Invocation:
    function: str
    started: float  # wall clock
    seconds: float
    ok: bool


class InvocationLog:
    def __init__(self, limit: int = 200_000) -> None:
        self.items: list[Invocation] = []
        self.limit = limit
        self.in_flight = 0  # invocations running now (the dev host's loop is their only writer)
        self._lock = threading.Lock()

    def add(self, item: Invocation) -> None:
        with self._lock:
            if len(self.items) < self.limit:
                self.items.append(item)

    def install(self) -> None:
        """Wrap the dev host's `Invoker.invoke`: name the function for the storage counter, time it."""
        from devtools.devhost.invocation import Invoker

        log = self
        original = Invoker.invoke

        async def invoke(self: Any, spec: Any, trigger_value: Any, detail: str = "") -> Any:
            token = CURRENT_FUNCTION.set(spec.name)
            started, began, ok = time.time(), time.perf_counter(), False
            log.in_flight += 1
            try:
                result = await original(self, spec, trigger_value, detail)
                ok = True
                return result
            finally:
                log.in_flight -= 1
                CURRENT_FUNCTION.reset(token)
                log.add(Invocation(spec.name, started, time.perf_counter() - began, ok))

        Invoker.invoke = invoke  # type: ignore[method-assign]

    def snapshot(self, since: float = 0.0) -> list[dict[str, Any]]:
        with self._lock:
            items = [i for i in self.items if i.started >= since]
        return [{"function": i.function, "started": i.started, "seconds": round(i.seconds, 5), "ok": i.ok}
                for i in items]

    def summary(self) -> dict[str, dict[str, float]]:
        out: dict[str, dict[str, float]] = defaultdict(lambda: {"count": 0, "failed": 0, "seconds": 0.0, "max": 0.0})
        with self._lock:
            items = list(self.items)
        for i in items:
            entry = out[i.function]
            entry["count"] += 1
            entry["failed"] += 0 if i.ok else 1
            entry["seconds"] = round(entry["seconds"] + i.seconds, 4)
            entry["max"] = max(entry["max"], round(i.seconds, 4))
        return dict(out)

    def clear(self) -> None:
        with self._lock:
            self.items.clear()


# -- a time-stamped log of writes, with a long poll ----------------------------------------------------
class WriteLog:
    """Writes an emulator completed (`{"t": wall clock, ...}`); lives on the server's event loop."""

    def __init__(self, limit: int = 200_000) -> None:
        self.items: list[dict[str, Any]] = []
        self.limit = limit
        self._changed: asyncio.Event | None = None

    def add(self, entry: dict[str, Any]) -> None:
        entry.setdefault("t", time.time())
        if len(self.items) < self.limit:
            self.items.append(entry)
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def matching(self, since: float, where: dict[str, str]) -> list[dict[str, Any]]:
        return [e for e in self.items if e["t"] >= since and all(str(e.get(k, "")) == v for k, v in where.items())]

    async def wait(self, since: float, where: dict[str, str], timeout: float) -> list[dict[str, Any]]:
        """The matching entries, waiting up to `timeout` seconds for a first one."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.matching(since, where)
            left = deadline - time.monotonic()
            if found or left <= 0:
                return found
            if self._changed is None:
                self._changed = asyncio.Event()
            event = self._changed
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), left)


# -- time inside an aiohttp app's handlers ------------------------------------------------------------
@dataclass
class HandlerTimes:
    count: Counter[str] = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=lambda: defaultdict(float))

    def add(self, key: str, seconds: float) -> None:
        self.count[key] += 1
        self.seconds[key] += seconds

    def snapshot(self) -> dict[str, Any]:
        return {
            "total_seconds": round(sum(self.seconds.values()), 4),
            "requests": sum(self.count.values()),
            "by_route": {k: {"count": self.count[k], "seconds": round(self.seconds[k], 4)}
                         for k in sorted(self.count, key=lambda k: -self.seconds[k])},
        }

    def clear(self) -> None:
        self.count.clear()
        self.seconds.clear()


def _route_key(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info.http_exception is None else None
    template = resource.canonical if resource is not None else request.path
    if template.startswith("/v1.0/{tail"):  # the Graph emulator routes everything through one handler
        segments = request.path[len("/v1.0/"):].split("/")
        template = "/v1.0/" + "/".join("{id}" if len(s) > 16 or "@" in s or "=" in s else s for s in segments)
    return f"{request.method} {template}"


# -- the /_bench control plane -------------------------------------------------------------------------
@dataclass
class Probe:
    """What one process exposes under `/_bench`."""

    role: str
    sampler: Sampler = field(default_factory=Sampler)
    handlers: HandlerTimes = field(default_factory=HandlerTimes)
    writes: WriteLog = field(default_factory=WriteLog)
    storage: StorageCounter | None = None
    invocations: InvocationLog | None = None
    time_handlers: bool = True

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"role": self.role, "process": process_figures(), "handlers": self.handlers.snapshot(),
                               "writes": len(self.writes.items)}
        if self.storage is not None:
            out["storage"] = self.storage.snapshot()
        if self.invocations is not None:
            out["invocations"] = self.invocations.summary()
            out["in_flight"] = self.invocations.in_flight
        return out

    def reset(self) -> None:
        self.handlers.clear()
        self.writes.items.clear()
        if self.storage is not None:
            self.storage.clear()
        if self.invocations is not None:
            self.invocations.clear()

    async def _control(self, request: web.Request) -> web.StreamResponse:
        path = request.path[len("/_bench"):]
        if path == "/stats":
            return web.json_response(self.stats())
        if path == "/reset" and request.method == "POST":
            self.reset()
            return web.json_response({"reset": True})
        if path == "/profile/start" and request.method == "POST":
            self.sampler.start(float(request.query.get("interval", "0.005")))
            return web.json_response({"profiling": True})
        if path == "/profile/stop" and request.method == "POST":
            self.sampler.stop()
            return web.json_response(self.sampler.report(int(request.query.get("top", "30"))))
        if path == "/invocations" and self.invocations is not None:
            return web.json_response({"value": self.invocations.snapshot(float(request.query.get("since", "0")))})
        if path == "/writes":
            since = float(request.query.get("since", "0"))
            where = {k: v for k, v in request.query.items() if k not in ("since", "timeout")}
            timeout = float(request.query.get("timeout", "0"))
            found = await self.writes.wait(since, where, timeout) if timeout else self.writes.matching(since, where)
            return web.json_response({"value": found})
        return web.json_response({"error": f"no bench route {request.method} {request.path}"}, status=404)

    def middleware(self) -> Middleware:
        probe = self

        @web.middleware
        async def bench(request: web.Request, handler: Handler) -> web.StreamResponse:
            if request.path.startswith("/_bench/"):
                return await probe._control(request)
            if not probe.time_handlers or request.path.startswith("/_emulator"):
                return await handler(request)
            began = time.perf_counter()
            try:
                return await handler(request)
            finally:
                probe.handlers.add(_route_key(request), time.perf_counter() - began)

        return bench


def dumps(data: Any) -> str:
    return json.dumps(data, separators=(",", ":"))
