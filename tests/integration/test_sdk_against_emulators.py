"""The official SDKs talk to the emulators: msgraph-sdk (through the Graph gateway) and dimescheduler.

Subscriptions are validated against a route on a real dev host and notifications arrive there; the
Dime.Scheduler SDK imports, reads and receives a webhook on the same kind of route.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connector.config import GraphAuthMode, GraphConfig, PlanningConfig, Secret
from connector.gateways.graph import ExchangeGateway, GraphError
from connector.gateways.planning import PlanningError, PlanningGateway, Procedure
from devtools.devhost import DevHost
from devtools.local_stack import wait_until
from devtools.serve import ServerThread
from tests.integration.conftest import probe_received

PROPERTY_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name DimeSchedulerAppointmentId"


def graph_gateway(server: ServerThread, token: str = "dev-graph-token") -> ExchangeGateway:
    return ExchangeGateway(GraphConfig(
        base_url=f"{server.url}/v1.0", auth_mode=GraphAuthMode.STATIC_TOKEN, tenant_id=None, client_id=None,
        client_secret=None, client_certificate=None, static_token=Secret(token), managed_identity_client_id=None,
    ))


def planning_gateway(server: ServerThread, key: str = "dev-api-key") -> PlanningGateway:
    return PlanningGateway(PlanningConfig(base_url=server.url, api_key=Secret(key), source_app="CONNECTORTEST"))


def seed_user(server: ServerThread, upn: str) -> None:
    httpx.post(f"{server.url}/_emulator/seed",
               json={"users": [{"displayName": upn.split("@")[0], "userPrincipalName": upn, "mail": upn}]},
               timeout=10).raise_for_status()


async def test_subscription_handshake_event_and_notification_reach_a_dev_host_route(
    graph_emulator: ServerThread, probe_host: DevHost
) -> None:
    upn = f"erin-{uuid.uuid4().hex[:6]}@contoso.example"
    seed_user(graph_emulator, upn)
    gateway = graph_gateway(graph_emulator)
    user = await gateway.get_user(upn.upper())  # UPNs resolve case-insensitively
    assert user is not None and user["userPrincipalName"] == upn
    channel = "graph" + uuid.uuid4().hex[:8]

    subscription = await gateway.create_subscription(
        user["id"], f"{probe_host.url}/api/probe/{channel}", f"{probe_host.url}/api/probe/{channel}life",
        client_state="state-" + channel, expiration=datetime.now(UTC) + timedelta(hours=2),
    )
    # Graph answered 201 only after both URLs echoed their validation token on the dev host.
    assert len(probe_received(probe_host, channel + "-handshakes")) == 1
    assert len(probe_received(probe_host, channel + "life-handshakes")) == 1
    assert subscription["resource"] == f"users/{user['id']}/events"

    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    created = await gateway.create_event(user["id"], {
        "subject": "Boiler maintenance",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "transactionId": "txn-" + channel,
        "singleValueExtendedProperties": [{"id": PROPERTY_ID, "value": "appointment-42"}],
    })
    notified = wait_until(
        lambda: [item for batch in probe_received(probe_host, channel) for item in batch["value"]
                 if item["resourceData"]["id"] == created["id"]],
        what="a change notification for the new event on the dev host",
    )
    assert notified[0]["clientState"] == "state-" + channel
    assert notified[0]["subscriptionId"] == subscription["id"]
    assert {n["changeType"] for n in notified} >= {"created"}

    # A retried create with the same transactionId does not duplicate the event.
    again = await gateway.create_event(user["id"], {
        "subject": "Boiler maintenance",
        "start": {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "end": {"dateTime": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"},
        "transactionId": "txn-" + channel,
    })
    assert again["id"] == created["id"]
    tagged = await gateway.find_events_by_property(user["id"], PROPERTY_ID, "appointment-42")
    assert [e["id"] for e in tagged] == [created["id"]]
    assert tagged[0]["singleValueExtendedProperties"][0]["value"] == "appointment-42"

    # The typed msgraph API works against the emulator too.
    typed = await gateway.client.users.by_user_id(user["id"]).events.by_event_id(created["id"]).get()
    assert typed is not None and typed.subject == "Boiler maintenance"

    await gateway.delete_subscription(subscription["id"])
    assert await gateway.get_subscription(subscription["id"]) is None


async def test_graph_errors_carry_status_code_and_retry_after(graph_emulator: ServerThread) -> None:
    upn = f"fred-{uuid.uuid4().hex[:6]}@contoso.example"
    seed_user(graph_emulator, upn)
    with pytest.raises(GraphError) as unauthorised:
        await graph_gateway(graph_emulator, token="wrong-token").get_user(upn)
    assert unauthorised.value.status == 401

    gateway = graph_gateway(graph_emulator)
    assert await gateway.get_user("nobody@contoso.example") is None
    user = await gateway.get_user(upn)
    assert user is not None
    fault = httpx.post(f"{graph_emulator.url}/_emulator/faults", json={
        "method": "GET", "route": "/v1.0/users/{id}/calendarView", "status": 429, "retryAfter": 7, "count": 10,
    }, timeout=10)
    assert fault.status_code == 201
    try:
        with pytest.raises(GraphError) as throttled:
            await gateway.calendar_view(user["id"], datetime.now(UTC), datetime.now(UTC) + timedelta(days=1))
        assert throttled.value.status == 429 and throttled.value.transient
        assert throttled.value.code == "TooManyRequests"
        assert throttled.value.retry_after == 7
    finally:
        httpx.delete(f"{graph_emulator.url}/_emulator/faults", timeout=10)


def test_dimescheduler_sdk_imports_reads_and_receives_a_webhook(
    scheduler_emulator: ServerThread, probe_host: DevHost
) -> None:
    gateway = planning_gateway(scheduler_emulator)
    suffix = uuid.uuid4().hex[:6].upper()
    resource_no, mail = f"ERIN{suffix}", f"erin{suffix.lower()}@contoso.example"
    gateway.run_import([Procedure("mboc_upsertResource", {
        "ResourceNo": resource_no, "DisplayName": "Erin", "Email": mail, "ExchangeIntegrationEnabled": True,
    })])
    resources = {r["resourceNo"]: r for r in gateway.list_resources()}
    assert resources[resource_no]["email"] == mail
    assert resources[resource_no]["exchangeIntegrationEnabled"] is True

    channel = "ds" + suffix.lower()
    # Webhooks are routed by the appointment's Source App: register under the job's back office.
    hook_id = gateway.register_webhook("AppointmentCreated", f"{probe_host.url}/api/probe/{channel}", "test hook",
                                       "DEMO")
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    planned = httpx.post(f"{scheduler_emulator.url}/_emulator/planner/appointments", json={
        "Subject": "Heat pump installation",
        "StartDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndDate": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Assignments": [{"Resource": {"ResourceNo": resource_no}}],
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1"}},
    }, timeout=10)
    assert planned.status_code == 201
    guid, appointment_id = planned.json()["AppointmentGuid"], str(planned.json()["id"])
    payloads = wait_until(lambda: [p for p in probe_received(probe_host, channel) if p.get("AppointmentGuid") == guid],
                          what="the AppointmentCreated webhook on the dev host")
    assert payloads[0]["Subject"] == "Heat pump installation"
    assert payloads[0]["Assignments"][0]["Resource"]["ResourceNo"] == resource_no

    result = gateway.run_import([Procedure("mboc_upsertExchangeAppointment", {
        "AppointmentGuid": str(uuid.uuid4()), "ExchangeId": "AAkALgAAAAAA", "ICalUId": "040000008200E0",
        "Start": start + timedelta(hours=4), "End": start + timedelta(hours=5), "Subject": "Dentist",
        "Body": "", "Importance": 1, "ResourceEmail": mail, "ShowAs": 3, "Sensitivity": 1,
        "Categories": ["Red", "Blue"], "CreatedByExchange": True,
    })])
    assert result.success and len(result.appointments) == 1
    window = gateway.appointments(start - timedelta(hours=1), start + timedelta(days=1), [resource_no])
    subjects = sorted(a["Subject"] for a in window)
    assert subjects == ["Dentist", "Heat pump installation"]
    one = gateway.get_appointment(guid, appointment_id)
    assert one is not None and one["Subject"] == "Heat pump installation"
    assert gateway.get_appointment(str(uuid.uuid4())) is None
    gateway.delete_webhook("AppointmentCreated", hook_id)


def test_dimescheduler_errors_are_specific(scheduler_emulator: ServerThread) -> None:
    with pytest.raises(PlanningError) as unauthorised:
        planning_gateway(scheduler_emulator, key="wrong").list_resources()
    assert unauthorised.value.status == 401 and not unauthorised.value.transient
    with pytest.raises(PlanningError) as rejected:
        planning_gateway(scheduler_emulator).run_import([Procedure("mboc_upsertExchangeAppointment", {
            "AppointmentGuid": str(uuid.uuid4()), "Start": "not a date", "End": "2026-01-01 10:00:00Z",
            "ResourceEmail": "nobody@contoso.example",
        })])
    assert rejected.value.status == 400 and "Start" in str(rejected.value)
