"""Where the app trusts `X-MS-CLIENT-PRINCIPAL`: the real function app under the dev host, against Azurite
and both emulators, on a host with neither Easy Auth nor the development setting, with Easy Auth's own
flag, and as the dev host runs it by default. A forged admin principal opens nothing on the first."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from connector.services import reset_services
from connector.web.identity import encode_principal
from devtools.azurite import free_port
from devtools.devhost import DevHost
from devtools.serve import ServerThread
from tests.integration.conftest import ROOT, stack_settings

FORGED_ADMIN = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Eve", "eve@evil.example", ("Connector.Admin",),
                                                          object_id="user-eve")}
XHR = {"X-Requested-With": "XMLHttpRequest"}


@contextmanager
def app_host(graph: ServerThread, scheduler: ServerThread, storage: str, **overrides: str) -> Iterator[DevHost]:
    """One host at a time: the app reads its settings from the process environment."""
    port = free_port()
    reset_services()
    host = DevHost("function_app:app", ROOT, port=port, timers=False,
                   settings=stack_settings(graph, scheduler, storage, f"http://127.0.0.1:{port}", **overrides))
    host.start()
    try:
        yield host
    finally:
        host.stop()
        reset_services()


def test_a_host_with_neither_setting_refuses_a_forged_admin_and_names_what_is_missing(
        graph_emulator: ServerThread, scheduler_emulator: ServerThread, storage_connection_string: str) -> None:
    with app_host(graph_emulator, scheduler_emulator, storage_connection_string, EASY_AUTH_DEV_TRUST="") as host:
        for method, path in (("GET", "/api/admin/resources"), ("GET", "/api/settings/me"),
                             ("PUT", "/api/admin/defaults")):
            answer = httpx.request(method, f"{host.url}{path}", headers={**FORGED_ADMIN, **XHR}, json={}, timeout=30)
            assert answer.status_code == 403, f"{method} {path}: {answer.status_code} {answer.text}"
            message = answer.json()["error"]["message"]
            assert "WEBSITE_AUTH_ENABLED is not True" in message and "EASY_AUTH_DEV_TRUST is not true" in message


def test_with_easy_auth_enabled_the_principal_is_trusted(
        graph_emulator: ServerThread, scheduler_emulator: ServerThread, storage_connection_string: str) -> None:
    with app_host(graph_emulator, scheduler_emulator, storage_connection_string, EASY_AUTH_DEV_TRUST="",
                  WEBSITE_AUTH_ENABLED="True") as host:
        answer = httpx.get(f"{host.url}/api/admin/resources", headers=FORGED_ADMIN, timeout=30)
        assert answer.status_code == 200, answer.text


def test_the_dev_host_sets_the_development_setting_itself(
        graph_emulator: ServerThread, scheduler_emulator: ServerThread, storage_connection_string: str) -> None:
    with app_host(graph_emulator, scheduler_emulator, storage_connection_string) as host:
        answer = httpx.get(f"{host.url}/api/admin/resources", headers=FORGED_ADMIN, timeout=30)
        assert answer.status_code == 200, answer.text
