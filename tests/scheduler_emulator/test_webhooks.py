"""Appointment webhooks: subscriptions, delivery shape, retries (HTTP 200 only), order, faults."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from dimescheduler import DimeSchedulerClient

from devtools.azurite import free_port

from .builders import call, exchange_item, imported, planner_body, seed_people
from .conftest import Receiver, wait_for
from .test_reads import EXCHANGE_KEYS, INCOMING_KEYS

EVENTS = {"AppointmentCreated": "Create", "AppointmentUpdated": "Update", "AppointmentDeleted": "Delete"}


def subscribe(api: httpx.Client, event: str, url: str) -> str:
    """Subscribe under Source App ``BC``, the back office of the test appointments (hooks are routed
    by Source App); the hook id comes from the 201's ``Location`` (its body is empty by default)."""
    body = {"sourceApp": "BC", "name": "sync", "notificationURL": url, "resource": "Appointments",
            "changeType": [EVENTS[event]]}
    response = api.post(f"/webhooks/{event}", json=body)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def webhook_stats(ctl: httpx.Client) -> dict[str, int]:
    return ctl.get("/stats").json()["webhooks"]


def until(ctl: httpx.Client, counter: str, value: int) -> None:
    """Wait until a webhook counter reaches ``value``; on timeout show the counters and the log."""
    wait_for(lambda: webhook_stats(ctl)[counter] == value, f"webhooks.{counter} == {value}",
             describe=lambda: (webhook_stats(ctl), ctl.get("/webhooks/deliveries").json()))


def create(ctl: httpx.Client, **extra: Any) -> dict[str, Any]:
    response = ctl.post("/planner/appointments", json=planner_body(**extra))
    assert response.status_code == 201, response.text
    return response.json()


def patch(ctl: httpx.Client, guid: str, **fields: Any) -> None:
    response = ctl.patch(f"/planner/appointments/{guid}", json=fields)
    assert response.status_code == 200, response.text


# --- subscriptions -------------------------------------------------------------------------------------
VALID = {"sourceApp": "CONNECTOR", "name": "sync", "notificationURL": "http://127.0.0.1:1/hook",
         "resource": "Appointments", "changeType": ["Create"]}


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"sourceApp": None}, "sourceApp"),
        ({"notificationURL": None}, "notificationURL"),
        ({"resource": None}, "resource"),
        ({"changeType": None}, "changeType"),
        ({"notificationURL": "/relative"}, "absolute"),
        ({"resource": "Tasks"}, "Appointments"),
        ({"changeType": []}, "changeType"),
        ({"changeType": ["Update"]}, "'Create'"),
        ({"changeType": ["Create", "Explode"]}, "Explode"),
        ({"name": 5}, "name"),
    ],
)
def test_subscription_body_is_validated(api: httpx.Client, change: dict[str, Any], fragment: str) -> None:
    body = {k: v for k, v in (VALID | change).items() if v is not None}
    response = api.post("/webhooks/AppointmentCreated", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]


def test_subscribe_list_and_unsubscribe(api: httpx.Client, ctl: httpx.Client) -> None:
    assert api.post("/webhooks/AppointmentCreated", content=b"{oops").status_code == 400
    response = api.post("/webhooks/AppointmentCreated", json=VALID)
    assert response.status_code == 201 and response.content == b""  # by default only a Location
    (hook,) = api.get("/webhooks").json()
    assert hook["id"] and {k: hook[k] for k in VALID} == VALID
    assert response.headers["Location"] == f"/webhooks/AppointmentCreated/{hook['id']}"
    assert [h["id"] for h in api.get("/webhooks").json()] == [hook["id"]]
    assert [h["id"] for h in ctl.get("/webhooks").json()] == [hook["id"]]
    assert api.delete(f"/webhooks/AppointmentUpdated/{hook['id']}").status_code == 404  # other event type
    assert api.delete(f"/webhooks/AppointmentCreated/{hook['id']}").status_code == 200
    assert api.delete(f"/webhooks/AppointmentCreated/{hook['id']}").status_code == 404
    assert api.get("/webhooks").json() == []


def test_too_many_subscriptions_is_429(api: httpx.Client, ctl: httpx.Client) -> None:
    ctl.patch("/config", json={"max_webhooks": 1}).raise_for_status()
    assert api.post("/webhooks/AppointmentCreated", json=VALID).status_code == 201
    assert api.post("/webhooks/AppointmentCreated", json=VALID).status_code == 429


# --- delivery ------------------------------------------------------------------------------------------
def test_planner_actions_deliver_the_full_appointment(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    for event in EVENTS:
        subscribe(api, event, f"{receiver.url}/ok/{event}")
    created = create(ctl)
    guid = created["AppointmentGuid"]
    (got,) = wait_for(lambda: receiver.at("/ok/AppointmentCreated"), "the Created delivery")
    assert got.headers["Content-Type"] == "application/json"
    assert set(got.body) >= INCOMING_KEYS and not set(got.body) & EXCHANGE_KEYS
    assert got.body["AppointmentGuid"] == guid and got.body["Subject"] == "Service visit"
    assert got.body["Assignments"][0]["Resource"]["Email"] == "alice@contoso.com"

    patch(ctl, guid, Subject="Moved", StartDate="2026-01-06T10:00:00Z", EndDate="2026-01-06T11:00:00Z")
    (updated,) = wait_for(lambda: receiver.at("/ok/AppointmentUpdated"), "the Updated delivery")
    assert (updated.body["Subject"], updated.body["StartDate"]) == ("Moved", "2026-01-06T10:00:00")  # no offset
    assert updated.body["LastModifiedDate"] > got.body["LastModifiedDate"]

    assert ctl.delete(f"/planner/appointments/{guid}").status_code == 204
    (deleted,) = wait_for(lambda: receiver.at("/ok/AppointmentDeleted"), "the Deleted delivery")
    assert deleted.body == updated.body  # the last state
    assert len(receiver.at("/ok/AppointmentCreated")) == 1  # each event went to its own hooks only


def test_import_changes_fire_and_noops_do_not(
    api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient, receiver: Receiver
) -> None:
    seed_people(ctl)
    # Outlook items have no Source App (no job): only unrouted hooks see them, and only the
    # payload_outlook_fields knob shows their origin fields.
    ctl.patch("/config", json={"webhook_routing": "all", "payload_outlook_fields": True}).raise_for_status()
    for event in EVENTS:
        subscribe(api, event, f"{receiver.url}/ok/{event}")
    guid = "0b7ad1d2-6d55-4a9c-9d38-000000000020"
    assert imported(sdk.imports.run([exchange_item(guid)]))
    (created,) = wait_for(lambda: receiver.at("/ok/AppointmentCreated"), "Created from /import")
    assert created.body["CreatedByExchange"] is True and created.body["ShowAs"] == 3
    assert imported(sdk.imports.run([exchange_item(guid)]))  # the same values again: no event
    assert webhook_stats(ctl)["pending"] == 0 and receiver.at("/ok/AppointmentUpdated") == []
    assert imported(sdk.imports.run([exchange_item(guid, subject="Dentist (2)")]))
    (updated,) = wait_for(lambda: receiver.at("/ok/AppointmentUpdated"), "Updated from /import")
    assert updated.body["Subject"] == "Dentist (2)"
    assert imported(sdk.imports.run([call("mboc_deleteExchangeAppointment", AppointmentGuid=guid)]))
    (deleted,) = wait_for(lambda: receiver.at("/ok/AppointmentDeleted"), "Deleted from /import")
    assert deleted.body["AppointmentGuid"] == guid and deleted.body["Subject"] == "Dentist (2)"


def test_imports_can_be_configured_silent(
    api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient, receiver: Receiver
) -> None:
    seed_people(ctl)
    ctl.patch("/config", json={"import_fires_webhooks": False, "webhook_routing": "all"}).raise_for_status()
    subscribe(api, "AppointmentCreated", f"{receiver.url}/ok/silent")
    assert imported(sdk.imports.run([exchange_item("0b7ad1d2-6d55-4a9c-9d38-000000000021")]))
    assert webhook_stats(ctl)["pending"] == 0  # enqueueing is synchronous: nothing was queued
    create(ctl)  # the planner still fires
    (only,) = wait_for(lambda: receiver.at("/ok/silent"), "the planner's delivery")
    assert only.body["Subject"] == "Service visit"


def test_failures_are_retried_until_200(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    subscribe(api, "AppointmentCreated", f"{receiver.url}/flaky/2/created")
    guid = create(ctl)["AppointmentGuid"]
    until(ctl, "delivered", 1)
    assert len(receiver.at("/flaky/2/created")) == 3
    log = ctl.get("/webhooks/deliveries").json()
    assert [(e["status"], e["attempt"], e["outcome"]) for e in log] == [
        (500, 1, "failed"), (500, 2, "failed"), (200, 3, "delivered")]
    assert {(e["eventType"], e["appointmentGuid"]) for e in log} == {("AppointmentCreated", guid)}
    assert webhook_stats(ctl) | {"pending": 0} == {
        "delivered": 1, "failedAttempts": 2, "dropped": 0, "abandoned": 0, "duplicated": 0, "pending": 0}


@pytest.mark.parametrize("status", [201, 202, 204, 500])
def test_only_200_is_success(api: httpx.Client, ctl: httpx.Client, receiver: Receiver, status: int) -> None:
    seed_people(ctl)
    subscribe(api, "AppointmentCreated", f"{receiver.url}/status/{status}/x")
    create(ctl)
    until(ctl, "abandoned", 1)
    attempts = 4  # FAST.retry_max_attempts
    assert len(receiver.at(f"/status/{status}/x")) == attempts
    stats = webhook_stats(ctl)
    assert (stats["delivered"], stats["failedAttempts"]) == (0, attempts)


def test_unreachable_receiver_is_retried_and_logged(api: httpx.Client, ctl: httpx.Client) -> None:
    seed_people(ctl)
    subscribe(api, "AppointmentCreated", f"http://127.0.0.1:{free_port()}/nobody")
    create(ctl)
    until(ctl, "abandoned", 1)
    log = ctl.get("/webhooks/deliveries").json()
    assert [e["outcome"] for e in log] == ["failed"] * 4 + ["abandoned"]
    assert log[0]["status"] is None and log[0]["error"]


def test_camel_casing(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    ctl.patch("/config", json={"payload_casing": "camel"}).raise_for_status()
    subscribe(api, "AppointmentCreated", f"{receiver.url}/ok/camel")
    guid = create(ctl)["AppointmentGuid"]
    (got,) = wait_for(lambda: receiver.at("/ok/camel"), "the camelCase delivery")
    assert got.body == {
        "id": got.body["id"], "appointmentGuid": guid, "sourceApp": "BC", "sourceType": "JOB", "jobNo": "J1", "taskNo": "T1",
        "resourceNo": "ALICE", "subject": "Service visit", "body": "Replace filter",
        "start": "2026-01-06T08:00:00", "end": "2026-01-06T09:30:00",
    }
    assert isinstance(got.body["id"], int)


def test_event_header_knob(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    subscribe(api, "AppointmentCreated", f"{receiver.url}/ok/header")
    create(ctl)
    (plain,) = wait_for(lambda: receiver.at("/ok/header"), "a delivery")
    assert "X-Emulator-Event" not in plain.headers  # nothing undocumented by default
    ctl.patch("/config", json={"event_header": "X-Emulator-Event"}).raise_for_status()
    create(ctl)
    second = wait_for(lambda: receiver.at("/ok/header")[1:], "the second delivery")
    assert second[0].headers["X-Emulator-Event"] == "AppointmentCreated"


def test_deliveries_keep_order_per_appointment(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    guid = create(ctl)["AppointmentGuid"]
    subscribe(api, "AppointmentUpdated", f"{receiver.url}/flaky/1/order")
    for subject in ("one", "two", "three"):
        patch(ctl, guid, Subject=subject)
    until(ctl, "delivered", 3)
    # The first attempt failed; the later changes waited for its retry.
    assert [r.body["Subject"] for r in receiver.at("/flaky/1/order")] == ["one", "one", "two", "three"]


# --- faults --------------------------------------------------------------------------------------------
def test_drop_fault(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    subscribe(api, "AppointmentCreated", f"{receiver.url}/ok/drop")
    assert ctl.post("/webhooks/faults", json={"drop": 1}).json()["drop"] == 1
    create(ctl, Subject="lost")
    create(ctl, Subject="kept")
    (got,) = wait_for(lambda: receiver.at("/ok/drop"), "the second delivery")
    assert got.body["Subject"] == "kept"
    stats = webhook_stats(ctl)
    assert (stats["dropped"], stats["delivered"], stats["pending"]) == (1, 1, 0)
    assert [e["outcome"] for e in ctl.get("/webhooks/deliveries").json()] == ["dropped", "delivered"]


def test_duplicate_fault(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    subscribe(api, "AppointmentCreated", f"{receiver.url}/ok/dup")
    ctl.post("/webhooks/faults", json={"duplicate": 1}).raise_for_status()
    create(ctl)
    first, second = wait_for(lambda: receiver.at("/ok/dup")[:2] if len(receiver.at("/ok/dup")) >= 2 else None,
                             "two copies")
    assert first.body == second.body
    assert webhook_stats(ctl)["duplicated"] == 1


def test_reorder_fault(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    guid = create(ctl)["AppointmentGuid"]
    subscribe(api, "AppointmentUpdated", f"{receiver.url}/ok/reorder")
    ctl.post("/webhooks/faults", json={"reorder": 2}).raise_for_status()
    patch(ctl, guid, Subject="first")
    assert webhook_stats(ctl)["pending"] == 1  # held until the second arrives
    patch(ctl, guid, Subject="second")
    wait_for(lambda: len(receiver.at("/ok/reorder")) == 2, "both deliveries")
    assert [r.body["Subject"] for r in receiver.at("/ok/reorder")] == ["second", "first"]


def test_delay_fault_and_clearing(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    subscribe(api, "AppointmentCreated", f"{receiver.url}/ok/delay")
    assert ctl.post("/webhooks/faults", json={"delayMs": 30, "drop": 5}).status_code == 200
    assert ctl.post("/webhooks/faults", json={"drop": -1}).status_code == 400
    assert ctl.post("/webhooks/faults", json={"explode": 1}).status_code == 400
    assert ctl.delete("/webhooks/faults").status_code == 204
    assert ctl.get("/webhooks/faults").json() == {"drop": 0, "duplicate": 0, "delayMs": 0, "reorder": 0}
    ctl.post("/webhooks/faults", json={"delayMs": 30}).raise_for_status()
    create(ctl)
    wait_for(lambda: receiver.at("/ok/delay"), "the delayed delivery")


def test_reset_cancels_pending_deliveries(api: httpx.Client, ctl: httpx.Client, receiver: Receiver) -> None:
    seed_people(ctl)
    ctl.patch("/config", json={"retry_max_attempts": 50, "retry_max_seconds": 1}).raise_for_status()
    subscribe(api, "AppointmentCreated", f"{receiver.url}/status/500/pending")
    create(ctl)
    wait_for(lambda: receiver.at("/status/500/pending"), "a first attempt")
    assert webhook_stats(ctl)["pending"] == 1
    ctl.post("/reset").raise_for_status()
    assert webhook_stats(ctl) == {
        "delivered": 0, "failedAttempts": 0, "dropped": 0, "abandoned": 0, "duplicated": 0, "pending": 0}
    assert ctl.get("/config").json()["retry_max_attempts"] == 4  # config restored too
