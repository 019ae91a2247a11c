"""Start-up semantics: settings precedence, %SETTING% errors, app isolation, disabled functions, CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devtools.azurite import free_port
from devtools.devhost import DevHost, DevHostError
from devtools.devhost.routes import RouteTemplate
from devtools.devhost.settings import parse_host_json, parse_timespan

from .conftest import StartHost, wait_for, write_root

HTTP_APP = "tests.devhost.apps.http_app:app"
ROOT = Path(__file__).resolve().parents[2]


def http_settings(connection: str, **extra: str) -> dict[str, str]:
    return {"AzureWebJobsStorage": connection, "ECHO_ROUTE": "resolved", "OUT_QUEUE": "unused", **extra}


def test_two_hosts_of_the_same_app_run_side_by_side(start_host: StartHost, storage_connection_string: str) -> None:
    first = start_host(HTTP_APP, http_settings(storage_connection_string))
    second = start_host(
        HTTP_APP, http_settings(storage_connection_string), host_json={"extensions": {"http": {"routePrefix": "two"}}}
    )
    assert first.module is not second.module  # each host called get_functions() on its own FunctionApp
    assert httpx.get(f"{first.url}/api/health").status_code == 200
    assert httpx.get(f"{second.url}/two/health").status_code == 200


def test_missing_setting_is_a_clear_startup_error(tmp_path: Path, storage_connection_string: str) -> None:
    settings = {"AzureWebJobsStorage": storage_connection_string, "OUT_QUEUE": "q", "PROBE_LEAK": "1"}
    with pytest.raises(DevHostError, match="ECHO_ROUTE"):
        DevHost(HTTP_APP, write_root(tmp_path), settings=settings).start()
    assert "PROBE_LEAK" not in os.environ  # a failed start undoes its settings


def test_missing_connection_is_a_clear_startup_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AzureWebJobsStorage", raising=False)
    with pytest.raises(DevHostError, match="AzureWebJobsStorage"):
        DevHost(HTTP_APP, write_root(tmp_path), settings={"ECHO_ROUTE": "x", "OUT_QUEUE": "q"}).start()


def test_settings_precedence_and_restore(tmp_path: Path, storage_connection_string: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROBE_SETTING", "from-env")
    root = write_root(tmp_path, values={"PROBE_SETTING": "from-file", "ECHO_ROUTE": "file-route"})
    with DevHost(HTTP_APP, root, settings={"AzureWebJobsStorage": storage_connection_string, "OUT_QUEUE": "q"}) as host:
        data = httpx.get(f"{host.url}/api/env/file-route").json()
        assert data["setting"] == "from-env"  # the environment wins over local.settings.json
    assert "ECHO_ROUTE" not in os.environ
    with DevHost(HTTP_APP, root, settings=http_settings(storage_connection_string, PROBE_SETTING="explicit")) as host:
        assert httpx.get(f"{host.url}/api/env/resolved").json()["setting"] == "explicit"
    assert os.environ["PROBE_SETTING"] == "from-env"


def test_disabled_function(start_host: StartHost, storage_connection_string: str) -> None:
    settings = http_settings(storage_connection_string, **{"AzureWebJobs.health.Disabled": "true"})
    host = start_host(HTTP_APP, settings)
    assert httpx.get(f"{host.url}/api/health").status_code == 404
    listed = {f["name"]: f["isDisabled"] for f in httpx.get(f"{host.url}/admin/functions").json()}
    assert listed["health"] is True and listed["echo"] is False


def test_cli_runs_like_func_start(tmp_path: Path, storage_connection_string: str) -> None:
    port = free_port()
    values = http_settings(storage_connection_string, PROBE_SETTING="from-file")
    root = write_root(tmp_path, values=values)
    env = {**os.environ, "PROBE_SETTING": "from-env", "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-m", "devtools.devhost", "--app", HTTP_APP, "--root", str(root), "--port", str(port)]
    proc = subprocess.Popen(args, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
    try:

        def up() -> bool:
            try:
                return bool(httpx.get(f"http://127.0.0.1:{port}/admin/host/status").json()["state"] == "Running")
            except httpx.HTTPError:
                assert proc.poll() is None, "the dev host exited"
                return False

        wait_for(up, what="the CLI dev host")
        assert httpx.get(f"http://127.0.0.1:{port}/api/env/resolved").json()["setting"] == "from-env"
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "Executed 'Functions.env_route' (Succeeded" in err


@pytest.mark.parametrize(
    ("template", "path", "expected"),
    [
        ("a/{x:regex(^\\d{{3}}$)}", "/a/123", {"x": "123"}),
        ("a/{x:regex(^\\d{{3}}$)}", "/a/1234", None),
        ("a/{x=dflt}", "/a", {"x": "dflt"}),
        ("f/{name}.{ext}", "/f/report.pdf", {"name": "report", "ext": "pdf"}),
        ("n/{v:min(10)}", "/n/9", None),
        ("n/{v:range(1,5):int}", "/n/5", {"v": "5"}),
        ("s/{v:length(2)}", "/s/ab", {"v": "ab"}),
        ("s/{v:length(2)}", "/s/abc", None),
        ("b/{v:bool}", "/b/True", {"v": "True"}),
    ],
)
def test_route_template_details(template: str, path: str, expected: dict[str, str] | None) -> None:
    assert RouteTemplate(template).match(path) == expected


def test_host_json_defaults_and_timespans() -> None:
    options = parse_host_json({"extensions": {"queues": {"batchSize": 10}}}).queues
    assert (options.batch_size, options.new_batch_threshold, options.max_dequeue_count) == (10, 5, 5)
    assert (options.max_polling_interval, options.visibility_timeout, options.message_encoding) == (60, 0, "base64")
    assert parse_timespan("1.02:03:04.5", "x") == 86400 + 7384.5
    with pytest.raises(DevHostError):
        parse_host_json({"extensions": {"queues": {"maxPollingInterval": 5}}})
    assert json.dumps(parse_host_json({}).route_prefix) == '"api"'


def test_port_in_use_fails_cleanly(tmp_path: Path, storage_connection_string: str) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = http_settings(storage_connection_string, PROBE_LEAK="1")
        with pytest.raises(OSError):
            DevHost(HTTP_APP, write_root(tmp_path), settings=settings, port=port).start()
    assert "PROBE_LEAK" not in os.environ
