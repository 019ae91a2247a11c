"""HTTP triggers over real HTTP: routing, constraints, methods, auth levels, conversion, errors."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler
from azure.storage.queue import QueueClient

from devtools.devhost import DevHost

from .conftest import StartHost, unique, write_root

APP = "tests.devhost.apps.http_app:app"


@pytest.fixture(scope="module")
def out_queue() -> str:
    return unique("http-out")


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory, storage_connection_string: str, out_queue: str) -> Iterator[DevHost]:
    root = write_root(tmp_path_factory.mktemp("http"))
    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "ECHO_ROUTE": "resolved",
        "OUT_QUEUE": out_queue,
        "PROBE_SETTING": "from-settings",
    }
    with DevHost(APP, root, settings=settings) as running:
        yield running


@pytest.fixture
def client(host: DevHost) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=host.url, timeout=10) as c:
        yield c


def test_literal_route_under_default_prefix(client: httpx.Client) -> None:
    assert client.get("/api/health").json() == {"status": "ok"}
    assert client.get("/health").status_code == 404  # only under the route prefix
    assert client.get("/API/Health").status_code == 200  # literals are case-insensitive, as in ASP.NET


@pytest.mark.parametrize(
    ("path", "fn", "route"),
    [
        ("/api/items/42", "item_by_id", {"id": "42"}),
        ("/api/items/42/", "item_by_id", {"id": "42"}),
        ("/api/things/3f2504e0-4f89-11d3-9a0c-0305e82c3301", "thing", {"id": "3f2504e0-4f89-11d3-9a0c-0305e82c3301"}),
        ("/api/words/abc", "word", {"x": "abc"}),
        ("/api/words/abc/7", "word", {"x": "abc", "n": "7"}),
        ("/api/users/me", "user_me", None),
        ("/api/users/alice", "user_by_name", {"name": "alice"}),
        ("/api/opt", "optional", {}),
        ("/api/opt/x", "optional", {"name": "x"}),
        ("/api/files/a/b/c.txt", "files", {"path": "a/b/c.txt"}),
        ("/api/files", "files", {}),
    ],
)
def test_route_templates(client: httpx.Client, path: str, fn: str, route: dict[str, str] | None) -> None:
    resp = client.get(path)
    assert resp.status_code == 200, resp.text
    assert resp.json()["fn"] == fn
    if route is not None:
        assert resp.json()["route"] == route


@pytest.mark.parametrize("path", ["/api/items/abc", "/api/items/99999999999", "/api/things/not-a-guid", "/api/words/a1"])
def test_constraint_mismatch_is_404(client: httpx.Client, path: str) -> None:
    assert client.get(path).status_code == 404


def test_setting_expression_in_route(client: httpx.Client) -> None:
    resp = client.get("/api/env/resolved")
    assert resp.json() == {"fn": "env_route", "setting": "from-settings"}
    assert client.get("/api/env/%25ECHO_ROUTE%25").status_code == 404


def test_methods(client: httpx.Client) -> None:
    assert client.post("/api/only-post").status_code == 200
    assert client.get("/api/only-post").status_code == 405
    assert client.delete("/api/users/me").status_code == 200  # no methods given: every method


def test_function_auth_level(client: httpx.Client) -> None:
    assert client.get("/api/secured").status_code == 401
    assert client.get("/api/secured", headers={"x-functions-key": "wrong"}).status_code == 401
    assert client.get("/api/secured", headers={"x-functions-key": "dev-function-key"}).status_code == 200
    assert client.get("/api/secured", params={"code": "dev-function-key"}).status_code == 200
    assert client.get("/api/secured", params={"code": "dev-master-key"}).status_code == 200


def test_admin_auth_level(client: httpx.Client) -> None:
    assert client.get("/api/master-only").status_code == 401
    assert client.get("/api/master-only", headers={"x-functions-key": "dev-function-key"}).status_code == 401
    assert client.get("/api/master-only", headers={"x-functions-key": "dev-master-key"}).status_code == 200


def test_request_and_response_conversion(client: httpx.Client) -> None:
    resp = client.post("/api/echo", params={"q": "1", "r": ["a", "b"]}, headers={"X-Probe": "yes"}, content=b"payload")
    assert resp.status_code == 201
    assert resp.headers["content-type"] == "application/json"
    assert resp.headers["x-out"] == "1"
    assert resp.headers.get_list("set-cookie") == ["a=1", "b=2"]
    data = resp.json()
    assert data["method"] == "POST"
    assert data["url"].endswith("/api/echo?q=1&r=a&r=b")
    assert data["params"] == {"q": "1", "r": "a,b"}
    assert data["header"] == "yes"
    assert data["body"] == "payload"
    assert not data["thread"].startswith("devhost-fn")  # a coroutine runs on the host loop


def test_text_response_gets_charset(client: httpx.Client) -> None:
    resp = client.get("/api/text")
    assert (resp.status_code, resp.text) == (202, "plain")
    assert resp.headers["content-type"] == "text/plain; charset=utf-8"


def test_sync_function_gets_context_and_runs_in_pool(client: httpx.Client) -> None:
    data = client.get("/api/sync-context").json()
    assert data["function_name"] == "sync_context"
    assert len(data["invocation_id"]) == 36
    assert data["thread"].startswith("devhost-fn")


def test_exception_is_500_logged_and_host_survives(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    assert client.get("/api/boom").status_code == 500
    assert client.get("/api/health").status_code == 200
    failed = [r for r in caplog.records if r.name == "devhost" and "Functions.boom" in r.getMessage()]
    assert failed and "(Failed, Id=" in failed[0].getMessage() and "Duration=" in failed[0].getMessage()
    assert failed[0].exc_info is not None and "probe failure" in str(failed[0].exc_info[1])


def test_invocation_log_line_and_function_logging(client: httpx.Client, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    client.get("/api/health")
    messages = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("Executed 'Functions.health' (Succeeded, Id=") and "ms" in m for m in messages)
    assert "probe health called" in messages


def test_queue_output_binding(client: httpx.Client, storage_connection_string: str, out_queue: str) -> None:
    assert client.post("/api/enqueue", content=b"to-the-queue").status_code == 202
    queue = QueueClient.from_connection_string(storage_connection_string, out_queue)
    [message] = queue.peek_messages()
    assert base64.b64decode(message.content) == b"to-the-queue"  # the host's default base64 encoding


def test_routes_in_the_hosts_own_space_are_refused(client: httpx.Client) -> None:
    assert client.get("/api/administration/thing").status_code == 404
    listed = {f["name"]: f for f in client.get("/admin/functions").json()}
    assert listed["reserved"]["error"] == "The specified route conflicts with one or more built in routes."
    assert listed["health"]["error"] is None


def test_unknown_route_is_404(client: httpx.Client) -> None:
    assert client.get("/api/nope").status_code == 404


def test_body_limit_is_413(start_host: StartHost, storage_connection_string: str) -> None:
    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "ECHO_ROUTE": "x",
        "OUT_QUEUE": "unused",
        "FUNCTIONS_REQUEST_BODY_SIZE_LIMIT": "1000",
    }
    host = start_host(APP, settings)
    with httpx.Client(base_url=host.url) as c:
        assert c.post("/api/echo", content=b"x" * 1000).status_code == 201
        assert c.post("/api/echo", content=b"x" * 1001).status_code == 413


def test_route_prefix_keys_and_middleware_hook(start_host: StartHost, storage_connection_string: str) -> None:
    @web.middleware
    async def fake_sign_in(request: web.Request, handler: Handler) -> web.StreamResponse:
        # what the future dev sign-in will do: inject an Easy Auth header
        request = request.clone(headers={**request.headers, "X-MS-CLIENT-PRINCIPAL-NAME": "dev@example.com"})
        return await handler(request)

    settings = {
        "AzureWebJobsStorage": storage_connection_string,
        "ECHO_ROUTE": "x",
        "OUT_QUEUE": "unused",
        "DEVHOST_FUNCTION_KEY": "custom-key",
    }
    host = start_host(APP, settings, host_json={"extensions": {"http": {"routePrefix": "custom"}}}, middlewares=[fake_sign_in])
    with httpx.Client(base_url=host.url) as c:
        assert c.get("/custom/health").status_code == 200
        assert c.get("/api/health").status_code == 404
        assert c.get("/custom/secured", headers={"x-functions-key": "custom-key"}).status_code == 200
        assert c.get("/custom/secured", headers={"x-functions-key": "dev-function-key"}).status_code == 401
        assert c.post("/custom/echo", content=b"").json()["principal"] == "dev@example.com"


def test_empty_route_prefix(tmp_path: Path, start_host: StartHost, storage_connection_string: str) -> None:
    settings = {"AzureWebJobsStorage": storage_connection_string, "ECHO_ROUTE": "x", "OUT_QUEUE": "unused"}
    host = start_host(APP, settings, host_json={"extensions": {"http": {"routePrefix": ""}}})
    with httpx.Client(base_url=host.url) as c:
        assert c.get("/health").json() == {"status": "ok"}
        assert c.get("/admin/host/status").json()["state"] == "Running"  # admin routes stay reserved
