"""Access and resilience: API key, injected API faults, the SDK transport, the CLI, bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from dimescheduler import DimeSchedulerClient, RateLimitError, RetryConfig
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.azurite import free_port
from devtools.scheduler_emulator.sdk import emulator_async_transport, emulator_transport

from .builders import seed_people
from .conftest import API_KEY, wait_for

ROOT = Path(__file__).resolve().parents[2]


# --- the API key ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("headers", [{}, {"X-API-KEY": "wrong"}, {"X-API-KEY": ""}, {"Authorization": API_KEY}])
def test_missing_or_wrong_key_is_401(base_url: str, headers: dict[str, str]) -> None:
    for method, path in [("GET", "/resource"), ("POST", "/import"), ("GET", "/appointment/1"),
                         ("POST", "/webhooks/AppointmentCreated")]:
        response = httpx.request(method, f"{base_url}{path}", headers=headers)
        assert response.status_code == 401, (method, path)
        assert response.json()["message"]


def test_sdk_with_a_wrong_key_gets_a_typed_error(base_url: str) -> None:
    with DimeSchedulerClient("nope", transport=emulator_transport(base_url), retry=False) as client:
        result = client.resources.get_all()
    assert result.response.status_code == 401 and "X-API-KEY" in str(result.to_error())


def test_control_plane_needs_no_key(base_url: str) -> None:
    assert httpx.get(f"{base_url}/_emulator/stats").status_code == 200


def test_unknown_routes_answer_json(api: httpx.Client) -> None:
    response = api.get("/nowhere")
    assert response.status_code == 404 and response.json()["status"] == 404
    response = api.delete("/resource")
    assert response.status_code == 405 and response.json()["status"] == 405


# --- injected API faults -------------------------------------------------------------------------------
def test_status_fault_with_retry_after_and_count(ctl: httpx.Client, sdk: DimeSchedulerClient) -> None:
    fault = ctl.post("/faults", json={"method": "get", "route": "/resource", "status": 429, "retryAfter": 7,
                                      "count": 2})
    assert fault.status_code == 201
    for _ in range(2):
        result = sdk.resources.get_all()
        error = result.to_error()
        assert isinstance(error, RateLimitError) and error.retry_after == 7
    assert sdk.resources.get_all().ok  # the count is used up
    assert ctl.get("/faults").json() == []
    assert ctl.get("/stats").json()["requests"]["GET /resource"] == 3  # faulted requests count too


def test_fault_matches_route_template_and_method(ctl: httpx.Client, sdk: DimeSchedulerClient) -> None:
    ctl.post("/faults", json={"route": "/appointment/{id}", "status": 503}).raise_for_status()
    assert sdk.appointments.get_by_id("1000").response.status_code == 503
    assert sdk.appointments.get_by_id("1001").response.status_code == 503  # no count: until cleared
    assert sdk.appointments.get("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z").ok  # another route
    ctl.post("/faults", json={"method": "POST", "status": 500}).raise_for_status()
    assert sdk.imports.run([]).response.status_code == 500
    assert sdk.resources.get_all().ok  # GET is not POST
    assert ctl.delete("/faults").status_code == 204
    assert sdk.appointments.get_by_id("1000").response.status_code == 404


def test_sdk_retry_recovers_from_a_transient_fault(ctl: httpx.Client, base_url: str) -> None:
    seed_people(ctl)
    ctl.post("/faults", json={"route": "/resource", "status": 503, "retryAfter": 0, "count": 1}).raise_for_status()
    retry = RetryConfig(max_retries=2, initial_delay_s=0.01, max_delay_s=0.05)
    with DimeSchedulerClient(API_KEY, transport=emulator_transport(base_url), retry=retry) as client:
        result = client.resources.get_all()
    assert result.ok and len(result.data) == 2
    assert ctl.get("/stats").json()["requests"]["GET /resource"] == 2


def test_latency_fault_then_normal_answer(ctl: httpx.Client, sdk: DimeSchedulerClient) -> None:
    ctl.post("/faults", json={"route": "/category", "latencyMs": 20, "count": 1}).raise_for_status()
    assert sdk.categories.get_all().ok


@pytest.mark.parametrize(
    "body",
    [{"status": 200}, {"status": "503"}, {}, {"status": 503, "count": 0}, {"route": "resource", "status": 500},
     {"latencyMs": -5}, [1]],
)
def test_bad_fault_definitions_are_400(ctl: httpx.Client, body: object) -> None:
    response = ctl.post("/faults", json=body)
    assert response.status_code == 400 and response.json()["message"]


# --- the SDK transport ---------------------------------------------------------------------------------
def test_transport_rewrites_host_and_keeps_a_path_prefix() -> None:
    seen: list[str] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(f"{request.url} host={request.headers['Host']}")
        return httpx.Response(200, json=[])

    from connector.gateways.transport import BaseUrlTransport

    transport = BaseUrlTransport("http://127.0.0.1:7073/prefix/", inner=httpx.MockTransport(record))
    with DimeSchedulerClient(API_KEY, transport=transport, retry=False) as client:
        client.appointments.get("2026-01-05T00:00:00+00:00", "2026-01-06T00:00:00Z", ["R 1", "R2"])
    assert seen == [
        "http://127.0.0.1:7073/prefix/appointment?startDate=2026-01-05T00%3A00%3A00%2B00%3A00"
        "&endDate=2026-01-06T00%3A00%3A00Z&resources=R+1&resources=R2 host=127.0.0.1:7073"
    ]
    with pytest.raises(ValueError, match="absolute"):
        emulator_transport("127.0.0.1:7073")


async def test_async_transport(base_url: str) -> None:
    async with httpx.AsyncClient(base_url="https://api.dimescheduler.com", transport=emulator_async_transport(base_url),
                                 headers={"X-API-KEY": API_KEY}) as client:
        response = await client.get("/resource")
    assert response.status_code == 200 and response.json() == []


# --- the command line ----------------------------------------------------------------------------------
def test_cli_serves_on_the_given_port_with_the_given_key() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.scheduler_emulator", "--host", "127.0.0.1", "--port", str(port),
         "--api-key", "k1"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        def up() -> httpx.Response | None:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/resource", headers={"X-API-KEY": "k1"})
            except httpx.TransportError:
                assert process.poll() is None, process.stdout.read() if process.stdout else ""
                return None

        assert wait_for(up, "the CLI server to answer").status_code == 200
        assert httpx.get(f"http://127.0.0.1:{port}/resource", headers={"X-API-KEY": "dev-api-key"}).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=10)


# --- never crashes on bad input ------------------------------------------------------------------------
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_names = st.sampled_from(["AppointmentGuid", "AppointmentId", "Start", "End", "ResourceEmail", "ResourceNo",
                          "SourceApp", "SourceType", "JobNo", "TaskNo", "ShowAs", "CategoryName", "Name", "x"])
_procs = st.sampled_from(["mboc_upsertExchangeAppointment", "mboc_deleteExchangeAppointment", "mboc_upsertAppointment",
                          "mboc_deleteAppointment", "mboc_addAppointmentResource", "mboc_upsertResource",
                          "mboc_upsertCategory", "mboc_upsertTimeMarker", "mboc_upsertTask", "nope"])
_calls = st.lists(
    st.builds(lambda p, n, v: {"StoredProcedureName": p, "ParameterNames": n, "ParameterValues": v},
              _procs, st.lists(_names, max_size=6), st.lists(st.one_of(st.none(), st.text(max_size=25)), max_size=6)),
    max_size=3,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(_json, _calls))
def test_fuzzed_imports_never_fail_the_server(api: httpx.Client, body: object) -> None:
    response = api.post("/import", content=json.dumps(body))
    assert response.status_code in (200, 400), response.text
    json.loads(response.json()["Content"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=_json, target=st.sampled_from(["/planner/appointments", "/seed", "/faults", "/webhooks/faults", "/config"]))
def test_fuzzed_control_bodies_never_fail_the_server(ctl: httpx.Client, body: object, target: str) -> None:
    method = "PATCH" if target == "/config" else "POST"
    response = ctl.request(method, target, content=json.dumps(body))
    assert response.status_code < 500, response.text
    ctl.delete("/faults")
    ctl.post("/reset")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(start=st.text(max_size=30), end=st.text(max_size=30), ref=st.text(min_size=1, max_size=40))
def test_fuzzed_reads_never_fail_the_server(api: httpx.Client, start: str, end: str, ref: str) -> None:
    response = api.get("/appointment", params={"startDate": start, "endDate": end})
    assert response.status_code in (200, 400), response.text
    response = api.get(f"/appointment/{quote(ref, safe='')}")
    assert response.status_code < 500, response.text

