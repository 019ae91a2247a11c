"""Fixtures for the Graph emulator conformance tests: the emulator over real HTTP, an HTTP client,
and a receiver app that plays the connector's webhook endpoints."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from aiohttp import web

from devtools.graph_emulator import GraphEmulatorConfig, create_app
from devtools.serve import ServerThread

TOKEN = "dev-graph-token"
T = TypeVar("T")

# Short delivery and retry timings keep the suite fast; nothing asserts on durations.
FAST = dict(
    delivery_batch_ms=30,
    retry_base_seconds=0.05,
    retry_max_seconds=0.2,
    retry_max_duration_seconds=3,
    validation_timeout_seconds=1,
    delivery_timeout_seconds=1,
)


def wait_for(probe: Callable[[], T | None], timeout: float = 10, interval: float = 0.02) -> T:
    """Poll until ``probe`` returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s (last value: {value!r})")
        time.sleep(interval)


@dataclass
class Graph:
    """A running emulator and a client already carrying the bearer token."""

    server: ServerThread
    client: httpx.Client

    @property
    def url(self) -> str:
        return self.server.url

    def user(self, upn: str = "ann@contoso.com", name: str = "Ann") -> str:
        response = self.client.post("/_emulator/seed", json={
            "users": [{"displayName": name, "userPrincipalName": upn, "mail": upn}]})
        assert response.status_code == 200, response.text
        return str(response.json()["users"][0]["id"])

    def stats(self) -> dict[str, Any]:
        return dict(self.client.get("/_emulator/stats").json())


@pytest.fixture
def graph_factory() -> Iterator[Callable[..., Graph]]:
    started: list[Graph] = []

    def start(**overrides: Any) -> Graph:
        server = ServerThread(create_app(GraphEmulatorConfig(**{**FAST, **overrides}))).start()
        client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)
        graph = Graph(server, client)
        started.append(graph)
        return graph

    yield start
    for graph in started:
        graph.client.close()
        graph.server.stop()


@pytest.fixture(scope="module")
def shared_graph() -> Iterator[Graph]:
    server = ServerThread(create_app(GraphEmulatorConfig(**FAST))).start()
    client = httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)
    yield Graph(server, client)
    client.close()
    server.stop()


@pytest.fixture
def graph(shared_graph: Graph) -> Graph:
    """The module's emulator, reset to an empty tenant for each test."""
    assert shared_graph.client.post("/_emulator/reset").status_code == 200
    return shared_graph


@dataclass
class Hit:
    path: str
    query: dict[str, list[str]]
    raw_query: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Webhook endpoints with scripted behaviours, recording every POST.

    Paths: ``/ok`` (echo the token as text/plain, 202 for notifications), ``/wrong`` (echo a wrong
    token), ``/encoded`` (echo the token still URL-encoded), ``/json`` (echo with a JSON content type),
    ``/flaky`` (500 on the first notification, then 202), ``/slow`` (answer after 3 s), ``/down``
    (500 on every notification), ``/lag`` (202 after ``lag_seconds``), ``/switch`` (answers
    ``switch_status`` to notifications).
    """

    server: ServerThread
    hits: list[Hit] = field(default_factory=list)
    flaky_failures: int = 0
    lag_seconds: float = 0.4
    switch_status: int = 202

    def url(self, path: str) -> str:
        return self.server.url + path

    def notifications(self, path: str | None = None) -> list[Hit]:
        return [h for h in self.hits if "validationToken" not in h.query and (path is None or h.path == path)]

    def items(self, path: str | None = None) -> list[dict[str, Any]]:
        return [item for hit in self.notifications(path) for item in hit.json()["value"]]

    def validations(self, path: str | None = None) -> list[Hit]:
        return [h for h in self.hits if "validationToken" in h.query and (path is None or h.path == path)]


def _receiver_app(receiver_ref: list[Receiver]) -> web.Application:
    async def handle(request: web.Request) -> web.Response:
        receiver = receiver_ref[0]
        body = await request.read()
        raw_query = request.rel_url.raw_query_string
        hit = Hit(request.path, parse_qs(raw_query), raw_query, dict(request.headers), body)
        receiver.hits.append(hit)
        mode = request.path.strip("/")
        token = request.query.get("validationToken")
        if mode == "slow":
            await asyncio.sleep(3)
        if mode == "lag" and token is None:
            await asyncio.sleep(receiver.lag_seconds)
        if mode == "switch" and token is None:
            return web.Response(status=receiver.switch_status)
        if token is not None:
            if mode == "wrong":
                return web.Response(text="not-the-token", content_type="text/plain")
            if mode == "encoded":
                encoded = urlsplit(str(request.url)).query.split("validationToken=")[1]
                return web.Response(text=encoded, content_type="text/plain")
            if mode == "json":
                return web.Response(text=token, content_type="application/json")
            return web.Response(text=token, content_type="text/plain")
        if mode == "down":
            return web.Response(status=500)
        if mode == "flaky" and receiver.flaky_failures == 0:
            receiver.flaky_failures += 1
            return web.Response(status=500)
        return web.Response(status=202)

    app = web.Application()
    app.router.add_route("POST", "/{tail:.*}", handle)
    return app


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    ref: list[Receiver] = []
    server = ServerThread(_receiver_app(ref))
    ref.append(Receiver(server))
    server.start()
    yield ref[0]
    server.stop()


MAILBOX = "/v1.0/users/ann@contoso.com"


def event_body(subject: str = "Meeting", start: str = "2026-01-05T09:00:00", end: str = "2026-01-05T10:00:00",
               zone: str = "UTC", **extra: Any) -> dict[str, Any]:
    return {
        "subject": subject,
        "body": {"contentType": "html", "content": "<p>Hello <b>world</b></p>"},
        "start": {"dateTime": start, "timeZone": zone},
        "end": {"dateTime": end, "timeZone": zone},
        **extra,
    }


WINDOW = {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2026-02-01T00:00:00Z"}


def subscription_body(receiver: Receiver, path: str = "/ok", **extra: Any) -> dict[str, Any]:
    from datetime import UTC, datetime, timedelta

    return {
        "changeType": "created,updated,deleted",
        "notificationUrl": receiver.url(path),
        "resource": "users/ann@contoso.com/events",
        "expirationDateTime": (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
        "clientState": "secret-state",
        **extra,
    }
