"""Timer triggers and the admin API: schedules from settings, run_on_startup, no overlap, manual runs."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from devtools.devhost import DevHost

from .conftest import StartHost, wait_for
from .test_queues import queue_settings

APP = "tests.devhost.apps.timer_app:app"
YEARLY = "0 0 0 1 1 *"


def state(host: DevHost) -> dict[str, Any]:
    return httpx.get(f"{host.url}/api/state", timeout=10).json()  # type: ignore[no-any-return]


def admin_run(host: DevHost, name: str, body: object = None, content: bytes | None = None) -> httpx.Response:
    if content is not None:
        return httpx.post(f"{host.url}/admin/functions/{name}", content=content, timeout=10)
    return httpx.post(f"{host.url}/admin/functions/{name}", json={"input": ""} if body is None else body, timeout=10)


def test_run_on_startup(start_host: StartHost) -> None:
    host = start_host(APP, {"TICK_SCHEDULE": YEARLY, "BUSY_SCHEDULE": YEARLY})
    [run] = wait_for(lambda: state(host)["runs"]["ticker"], what="the start-up run")  # yearly: only start-up
    assert run["past_due"] is False


def test_schedule_from_setting(start_host: StartHost) -> None:
    host = start_host(APP, {"TICK_SCHEDULE": "*/1 * * * * *", "BUSY_SCHEDULE": YEARLY})
    first = wait_for(lambda: state(host)["runs"]["ticker"], what="the start-up run")
    assert first[0]["past_due"] is False
    wait_for(lambda: len(state(host)["runs"]["ticker"]) >= 3, what="two scheduled ticks")
    assert state(host)["runs"]["manual"] == []  # yearly: not due


def test_timers_disabled_still_run_manually(start_host: StartHost) -> None:
    host = start_host(APP, {"TICK_SCHEDULE": "*/1 * * * * *", "BUSY_SCHEDULE": YEARLY}, timers=False)
    assert admin_run(host, "manual").status_code == 202
    wait_for(lambda: state(host)["runs"]["manual"], what="the manual run")
    assert state(host)["runs"]["manual"][0]["past_due"] is False
    assert admin_run(host, "TICKER").status_code == 202  # names are case-insensitive, like the host's
    [tick] = wait_for(lambda: state(host)["runs"]["ticker"], what="the manual tick")  # no start-up run
    assert tick["past_due"] is False


def test_timer_never_overlaps_itself(start_host: StartHost, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="devhost")
    host = start_host(APP, {"TICK_SCHEDULE": YEARLY, "BUSY_SCHEDULE": "*/1 * * * * *"})
    wait_for(lambda: state(host)["busy"]["running"] == 1, what="the first busy run")

    def skipped() -> int:
        return sum("Timer 'busy': skipping" in r.getMessage() for r in caplog.records)

    wait_for(lambda: skipped() >= 2, what="two skipped ticks")
    assert len(state(host)["runs"]["busy"]) == 1
    httpx.post(f"{host.url}/api/release")
    wait_for(lambda: len(state(host)["runs"]["busy"]) >= 2, what="a run after the busy one")
    assert state(host)["busy"]["max_running"] == 1


def test_admin_api(start_host: StartHost) -> None:
    settings = {"TICK_SCHEDULE": YEARLY, "BUSY_SCHEDULE": YEARLY}
    host = start_host(APP, settings, timers=False)
    status = httpx.get(f"{host.url}/admin/host/status").json()
    assert status["state"] == "Running"
    listed = {f["name"]: f["trigger"] for f in httpx.get(f"{host.url}/admin/functions").json()}
    assert listed == {
        "ticker": "timerTrigger",
        "manual": "timerTrigger",
        "busy": "timerTrigger",
        "state": "httpTrigger",
        "release": "httpTrigger",
    }
    assert admin_run(host, "nope").status_code == 404
    assert admin_run(host, "state").status_code == 400  # HTTP functions are called over HTTP
    assert admin_run(host, "manual", content=b"{not json").status_code == 400
    assert admin_run(host, "manual", body={"input": 5}).status_code == 400


def test_admin_runs_queue_function_with_input(start_host: StartHost, storage_connection_string: str) -> None:
    host = start_host("tests.devhost.apps.queue_app:app", queue_settings(storage_connection_string))
    assert admin_run(host, "flaky", body={"input": '{"key": "manual"}'}).status_code == 202
    wait_for(lambda: "manual" in state(host)["succeeded"], what="the manual queue run")
    [seen] = state(host)["bodies"]
    assert seen["body"] == '{"key": "manual"}'
    assert seen["dequeue_count"] == 1
