"""Fixtures for the emulator's conformance tests: the emulator and webhook receivers, over real HTTP.

One emulator serves the whole module (started on a free port); every test begins with
``POST /_emulator/reset``, which restores state, counters and configuration. Back-off is shrunk
through the config so that retry tests stay fast.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import pytest
from aiohttp import web
from dimescheduler import DimeSchedulerClient

from devtools.scheduler_emulator import SchedulerEmulatorConfig, create_app
from devtools.scheduler_emulator.sdk import emulator_transport
from devtools.serve import ServerThread

API_KEY = "dev-api-key"
T = TypeVar("T")

FAST = SchedulerEmulatorConfig(
    retry_base_seconds=0.02, retry_factor=2.0, retry_max_seconds=0.1, retry_max_attempts=4,
    delivery_timeout_seconds=5,
)


def wait_for(check: Callable[[], T], what: str, timeout: float = 10.0,
             describe: Callable[[], object] | None = None) -> T:
    """Poll ``check`` until it returns something truthy; fail naming ``what`` (and ``describe()``, the
    state worth seeing) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            state = f"; state: {describe()!r}" if describe else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last value {value!r}{state}")
        time.sleep(0.02)


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Receiver:
    """An HTTP endpoint for webhook deliveries. Paths decide the answer:
    ``/ok/...`` 200; ``/flaky/<n>/...`` 500 for the first n requests to that path, then 200;
    ``/status/<code>/...`` always <code>."""

    url: str
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()


def _receiver_app(receiver: Receiver) -> web.Application:
    seen: dict[str, int] = {}

    async def handle(request: web.Request) -> web.Response:
        raw = await request.read()
        try:
            body: Any = await request.json()
        except ValueError:
            body = raw.decode(errors="replace")
        with receiver.lock:
            receiver.requests.append(Received(request.path, dict(request.headers), body))
        parts = request.path.strip("/").split("/")
        seen[request.path] = seen.get(request.path, 0) + 1
        if parts[0] == "flaky" and seen[request.path] <= int(parts[1]):
            return web.Response(status=500, text="not yet")
        if parts[0] == "status":
            return web.Response(status=int(parts[1]), text="as configured")
        return web.Response(status=200, text="ok")

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    return app


@pytest.fixture(scope="module")
def emulator_server() -> Iterator[ServerThread]:
    server = ServerThread(create_app(FAST)).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def receiver_server() -> Iterator[tuple[ServerThread, Receiver]]:
    receiver = Receiver(url="")
    server = ServerThread(_receiver_app(receiver)).start()
    receiver.url = server.url
    try:
        yield server, receiver
    finally:
        server.stop()


@pytest.fixture
def base_url(emulator_server: ServerThread) -> str:
    httpx.post(f"{emulator_server.url}/_emulator/reset").raise_for_status()
    return emulator_server.url


@pytest.fixture
def receiver(receiver_server: tuple[ServerThread, Receiver]) -> Receiver:
    receiver_server[1].clear()
    return receiver_server[1]


@pytest.fixture
def api(base_url: str) -> Iterator[httpx.Client]:
    """Plain httpx against the API, with the key (for what the SDK has no method for)."""
    with httpx.Client(base_url=base_url, headers={"X-API-KEY": API_KEY}, timeout=10) as client:
        yield client


@pytest.fixture
def ctl(base_url: str) -> Iterator[httpx.Client]:
    """The control plane (no key)."""
    with httpx.Client(base_url=f"{base_url}/_emulator", timeout=10) as client:
        yield client


@pytest.fixture
def sdk(base_url: str) -> Iterator[DimeSchedulerClient]:
    """The official SDK, retries off so that status codes reach the test as they are."""
    client = DimeSchedulerClient(API_KEY, transport=emulator_transport(base_url), retry=False)
    try:
        yield client
    finally:
        client.close()
