"""`GET /api/health` on the real function app under the dev host, against Azurite and both emulators."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from connector.services import reset_services
from connector.web.identity import encode_principal
from devtools.azurite import free_port
from devtools.devhost import DevHost
from devtools.local_stack import wait_until
from devtools.serve import ServerThread
from tests.integration.conftest import ROOT, stack_settings

ADMIN = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Ada", "ada@contoso.example", ("Connector.Admin",))}
NOT_ADMIN = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Bob", "bob@contoso.example")}


def health(host: DevHost, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.get(f"{host.url}/api/health", headers=headers, timeout=30)


@pytest.fixture(scope="module")
def app_host(graph_emulator: ServerThread, scheduler_emulator: ServerThread,
             storage_connection_string: str) -> Iterator[DevHost]:
    port = free_port()
    settings = stack_settings(graph_emulator, scheduler_emulator, storage_connection_string,
                              f"http://127.0.0.1:{port}")
    reset_services()
    host = DevHost("function_app:app", ROOT, settings=settings, port=port, timers=False)
    host.start()
    try:
        yield host
    finally:
        host.stop()
        reset_services()


def test_health_reports_every_dependency_without_secrets(app_host: DevHost) -> None:
    for response in (health(app_host), health(app_host, ADMIN)):
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "ok"
        assert {name: check["ok"] for name, check in body["checks"].items()} == {
            "storage": True, "graph": True, "planning": True,
        }
        for secret in ("dev-api-key", "dev-graph-token", "dev-webhook-secret", "AccountKey", "Eby8vdM02"):
            assert secret not in response.text


def test_anonymous_callers_get_the_status_only_admins_the_details(app_host: DevHost) -> None:
    """The configuration (URLs, tenant, modes) and latencies are for admins; anyone else, and a
    signed-in user without the admin role, sees up or down."""
    status_only = {"status": "ok", "checks": {name: {"ok": True} for name in ("storage", "graph", "planning")}}
    assert health(app_host).json() == status_only
    assert health(app_host, NOT_ADMIN).json() == status_only
    details = health(app_host, ADMIN).json()
    assert details["config"]["graph"]["authMode"] == "static_token"
    assert all("latencyMs" in check for check in details["checks"].values())


def test_health_turns_503_and_names_the_dependency_that_fails(app_host: DevHost,
                                                               scheduler_emulator: ServerThread) -> None:
    fault = httpx.post(f"{scheduler_emulator.url}/_emulator/faults", json={"status": 503}, timeout=10)
    assert fault.status_code in (200, 201)
    try:
        degraded = wait_until(lambda: (r := health(app_host, ADMIN)).status_code == 503
                              and r, timeout=30, interval=0.5, what="health to report the Dime.Scheduler outage")
        body = degraded.json()
        assert body["status"] == "degraded"
        assert body["checks"]["planning"]["ok"] is False and "503" in body["checks"]["planning"]["error"]
        assert body["checks"]["graph"]["ok"] is True and body["checks"]["storage"]["ok"] is True
        anonymous = health(app_host)  # same outage, the upstream's error text withheld
        assert anonymous.status_code == 503
        assert anonymous.json() == {"status": "degraded", "checks": {"storage": {"ok": True}, "graph": {"ok": True},
                                                                    "planning": {"ok": False}}}
    finally:
        httpx.delete(f"{scheduler_emulator.url}/_emulator/faults", timeout=10)
    wait_until(lambda: httpx.get(f"{app_host.url}/api/health", timeout=30).status_code == 200, timeout=30,
               interval=0.5, what="health to recover once the fault is lifted")


def test_health_needs_no_key_but_other_methods_are_refused(app_host: DevHost) -> None:
    assert httpx.post(f"{app_host.url}/api/health", timeout=10).status_code == 405


def test_start_up_fails_with_a_message_naming_the_missing_setting(tmp_path: Path) -> None:
    values = json.loads((ROOT / "local.settings.sample.json").read_text())["Values"]
    del values["DS_API_KEY"]
    settings_file = tmp_path / "local.settings.json"
    settings_file.write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    env = {k: v for k, v in os.environ.items() if k not in values and k != "DS_API_KEY"}
    result = subprocess.run(
        [sys.executable, "-m", "devtools.devhost", "--app", "function_app:app", "--root", str(ROOT),
         "--settings", str(settings_file), "--port", str(free_port())],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0
    assert "DS_API_KEY is missing" in result.stdout + result.stderr
