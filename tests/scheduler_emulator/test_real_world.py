"""The emulator's real-world defaults and their knobs (issue 10): webhook routing by Source App, the
import envelope variants, procedures that take exactly their declared parameters, the published
payload without the Outlook fields, the numeric appointment id, the 201 of a subscription, payload
dates; and batches that roll back from their journal."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from dimescheduler import DimeSchedulerClient

from connector.gateways.planning import EXCHANGE_PARAMETERS, Procedure, exchange_parameters

from .builders import call, exchange_item, import_status, imported, job_and_task, numeric_id, planner_body, seed_people
from .conftest import Receiver, wait_for

G1 = "7a1c2b1e-0000-4000-8000-000000000001"
G2 = "7a1c2b1e-0000-4000-8000-000000000002"


def hook(api: httpx.Client, url: str, source_app: str, event: str = "AppointmentCreated") -> str:
    change = {"AppointmentCreated": "Create", "AppointmentUpdated": "Update", "AppointmentDeleted": "Delete"}[event]
    body = {"sourceApp": source_app, "name": "t", "notificationURL": url, "resource": "Appointments",
            "changeType": [change]}
    response = api.post(f"/webhooks/{event}", json=body)
    assert response.status_code == 201, response.text
    return response.headers["Location"].rsplit("/", 1)[-1]


def plan(ctl: httpx.Client, source_app: str = "BC", **extra: Any) -> dict[str, Any]:
    task = {"TaskNo": "T1", "Job": {"SourceApp": source_app, "SourceType": "JOB", "JobNo": "J1"}}
    response = ctl.post("/planner/appointments", json=planner_body(Task=task, **extra))
    assert response.status_code == 201, response.text
    return dict(response.json())


def knobs(ctl: httpx.Client, **values: Any) -> None:
    ctl.patch("/config", json=values).raise_for_status()


# --- 9. routing by Source App ---------------------------------------------------------------------------
def test_webhooks_are_routed_by_the_appointments_source_app(
        api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient, receiver: Receiver) -> None:
    seed_people(ctl)
    hook(api, f"{receiver.url}/ok/bc", "bc")  # Source Apps match case-insensitively
    hook(api, f"{receiver.url}/ok/crm", "CRM")
    hook(api, f"{receiver.url}/ok/own", "EXCHANGECONNECTOR")
    plan(ctl, "BC", Subject="bc job")
    plan(ctl, "CRM", Subject="crm job")
    assert imported(sdk.imports.run([exchange_item(G1)]))  # an Outlook item: no job, no Source App
    wait_for(lambda: ctl.get("/stats").json()["webhooks"]["delivered"] == 2, "two routed deliveries")
    assert [r.body["Subject"] for r in receiver.at("/ok/bc")] == ["bc job"]
    assert [r.body["Subject"] for r in receiver.at("/ok/crm")] == ["crm job"]
    assert receiver.at("/ok/own") == []  # the connector's own Source App hears of nothing


def test_routing_knob_all_sends_everything_to_every_hook(
        api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient, receiver: Receiver) -> None:
    seed_people(ctl)
    knobs(ctl, webhook_routing="all")
    hook(api, f"{receiver.url}/ok/own", "EXCHANGECONNECTOR")
    plan(ctl, "BC", Subject="bc job")
    assert imported(sdk.imports.run([exchange_item(G1)]))
    wait_for(lambda: len(receiver.at("/ok/own")) == 2, "both appointments at the one hook")


# --- 10. the import envelope ------------------------------------------------------------------------------
def test_a_failed_import_answers_http_200_with_the_failure_inside(api: httpx.Client, ctl: httpx.Client) -> None:
    seed_people(ctl)
    bad = call("mboc_upsertExchangeAppointment", AppointmentGuid=G1, Start="x", End="y", ResourceEmail="a@b.c")
    response = api.post("/import", json=[bad])
    assert response.status_code == 200
    body = response.json()
    assert body["StatusCode"] == 400 and body["ContentType"] == "application/json"
    content = json.loads(body["Content"])
    assert content["Error"] == "Bad Request" and "'Start'" in content["Description"]
    assert ctl.get("/appointments").json() == []


def test_import_envelope_knobs(api: httpx.Client, ctl: httpx.Client) -> None:
    seed_people(ctl)
    knobs(ctl, import_envelope_casing="camel", import_content_as_object=True)
    ok = api.post("/import", json=[exchange_item(G1)])
    assert ok.status_code == 200 and set(ok.json()) == {"content", "contentType", "statusCode"}
    assert ok.json()["statusCode"] == 200 and ok.json()["content"]["Appointments"][0]["Guid"] == G1
    knobs(ctl, import_failure_as_http_200=False, import_envelope_casing="pascal", import_content_as_object=False)
    failed = api.post("/import", json=[call("mboc_nope")])
    assert failed.status_code == 400 and failed.json()["StatusCode"] == 400
    assert "mboc_nope" in json.loads(failed.json()["Content"])["Description"]


def test_an_envelope_fault_fails_imports_inside_a_200(api: httpx.Client, ctl: httpx.Client) -> None:
    seed_people(ctl)
    ctl.post("/faults", json={"route": "/import", "status": 503, "envelope": True, "count": 1}).raise_for_status()
    answer = api.post("/import", json=[exchange_item(G1)])
    assert answer.status_code == 200 and answer.json()["StatusCode"] == 503
    assert json.loads(answer.json()["Content"])["Error"] == "Service Unavailable"
    assert ctl.get("/appointments").json() == []
    assert import_status(api.post("/import", json=[exchange_item(G1)])) == 200  # the fault is used up
    assert ctl.post("/faults", json={"route": "/import", "envelope": True, "latencyMs": 5}).status_code == 400


# --- 11. exactly the declared parameters ------------------------------------------------------------------
@pytest.mark.parametrize("extra", ["IsAllDayEvent", "Location"])
def test_exchange_upsert_refuses_parameters_the_model_does_not_have(
        sdk: DimeSchedulerClient, ctl: httpx.Client, extra: str) -> None:
    seed_people(ctl)
    item = exchange_item(G1)
    item["ParameterNames"].append(extra)
    item["ParameterValues"].append("False" if extra == "IsAllDayEvent" else "Room 1")
    result = sdk.imports.run([item])
    assert import_status(result) == 400
    assert f"unknown parameter {extra!r}" in json.loads(result.data["Content"])["Description"]
    assert ctl.get("/appointments").json() == []


def test_the_connectors_exchange_calls_match_the_procedures(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    """What connector.gateways.planning sends, upsert and delete with every model field, is accepted."""
    seed_people(ctl)
    item = {"Subject": "Dentist", "Body": "", "Start": "2026-01-05 09:00:00Z", "End": "2026-01-05 10:00:00Z",
            "ShowAs": 3, "Sensitivity": 1, "Importance": 0, "ICalUId": "ical", "Categories": ["Red"],
            "Location": "ignored", "IsAllDayEvent": False}
    upsert = Procedure("mboc_upsertExchangeAppointment", exchange_parameters(G1, "AAMk-1", "alice@contoso.com", item))
    assert tuple(upsert.to_json()["ParameterNames"]) == EXCHANGE_PARAMETERS
    assert imported(sdk.imports.run([upsert.to_json()]))
    assert ctl.get(f"/appointments/{G1}").json()["Subject"] == "Dentist"
    delete = Procedure("mboc_deleteExchangeAppointment", exchange_parameters(G1, "AAMk-1", "alice@contoso.com", item))
    assert imported(sdk.imports.run([delete.to_json()]))
    assert ctl.get(f"/appointments/{G1}").status_code == 404
    # Deleted in Outlook: the item's fields are unknown and sent empty.
    assert imported(sdk.imports.run([upsert.to_json()]))
    gone = Procedure("mboc_deleteExchangeAppointment", exchange_parameters(G1, "AAMk-1", "alice@contoso.com", {}))
    assert imported(sdk.imports.run([gone.to_json()]))
    assert ctl.get(f"/appointments/{G1}").status_code == 404
    unknown = call("mboc_deleteExchangeAppointment", AppointmentGuid=G1, Location="x")
    assert import_status(sdk.imports.run([unknown])) == 400


# --- 12. the published payload ----------------------------------------------------------------------------
def test_payloads_leave_out_fields_the_schema_does_not_publish(
        api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient, receiver: Receiver) -> None:
    seed_people(ctl)
    hook(api, f"{receiver.url}/ok/default", "BC")
    created = plan(ctl, IsAllDayEvent=True)
    (got,) = wait_for(lambda: receiver.at("/ok/default"), "the delivery")
    assert "IsAllDayEvent" not in got.body and "CreatedByExchange" not in got.body
    read = sdk.appointments.get_by_id(str(created["id"])).data
    assert "IsAllDayEvent" not in read and "CreatedByExchange" not in read
    knobs(ctl, payload_outlook_fields=True)
    plan(ctl, IsAllDayEvent=True)
    second = wait_for(lambda: receiver.at("/ok/default")[1:], "the second delivery")
    assert second[0].body["IsAllDayEvent"] is True
    assert imported(sdk.imports.run([exchange_item(G2)]))
    outlook = sdk.appointments.get_by_id(numeric_id(ctl, G2)).data
    assert outlook["CreatedByExchange"] is True and outlook["IsAllDayEvent"] is False


# --- 13. id, subscription answer, dates --------------------------------------------------------------------
def test_get_appointment_takes_the_numeric_id_by_default(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    created = plan(ctl)
    assert sdk.appointments.get_by_id(str(created["id"])).data["AppointmentGuid"] == created["AppointmentGuid"]
    assert sdk.appointments.get_by_id(created["AppointmentGuid"]).response.status_code == 404
    knobs(ctl, appointment_lookup="id_or_guid")
    assert sdk.appointments.get_by_id(created["AppointmentGuid"]).ok


def test_subscription_201_has_a_location_and_a_body_only_by_knob(api: httpx.Client, ctl: httpx.Client) -> None:
    body = {"sourceApp": "BC", "notificationURL": "http://127.0.0.1:1/x", "resource": "Appointments",
            "changeType": ["Create"]}
    plain = api.post("/webhooks/AppointmentCreated", json=body)
    assert plain.status_code == 201 and plain.content == b""
    hook_id = plain.headers["Location"].rsplit("/", 1)[-1]
    assert [h["id"] for h in api.get("/webhooks").json()] == [hook_id]
    knobs(ctl, webhook_created_answer="body")
    full = api.post("/webhooks/AppointmentCreated", json=body)
    assert full.status_code == 201 and full.headers["Location"].endswith("/" + full.json()["id"])


@pytest.mark.parametrize(("dates", "expected"), [
    ("naive", "2026-01-06T08:00:00"), ("utc_z", "2026-01-06T08:00:00Z"), ("offset", "2026-01-06T09:00:00+01:00"),
])
def test_payload_dates(api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient, receiver: Receiver,
                       dates: str, expected: str) -> None:
    seed_people(ctl)
    knobs(ctl, payload_dates=dates)
    hook(api, f"{receiver.url}/ok/{dates}", "BC")
    created = plan(ctl)
    (got,) = wait_for(lambda: receiver.at(f"/ok/{dates}"), "the delivery")
    assert got.body["StartDate"] == expected
    assert sdk.appointments.get_by_id(str(created["id"])).data["StartDate"] == expected


# --- batches roll back from their journal ------------------------------------------------------------------
def test_a_failing_batch_undoes_every_record_it_touched(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    ctl.patch("/config", json={"import_batch_partial": False}).raise_for_status()  # all or nothing
    assert imported(sdk.imports.run([*job_and_task(), exchange_item(G1, subject="before"),
                                     call("mboc_upsertCategory", CategoryName="Red", CategoryHexColor="#FF0000")]))
    before = ctl.get("/appointments").json()
    failing = [
        call("mboc_upsertResource", ResourceNo="ALICE", DisplayName="Changed"),  # an existing record, in place
        call("mboc_upsertCategory", CategoryName="Red", CategoryHexColor="#00FF00"),
        exchange_item(G1, subject="after"),  # an update
        exchange_item(G2),  # a new appointment, with a new id
        call("mboc_deleteExchangeAppointment", AppointmentGuid=G1),  # and a delete
        call("mboc_nope"),
    ]
    assert import_status(sdk.imports.run(failing)) == 400
    assert ctl.get("/appointments").json() == before
    assert sdk.resources.get_all().data[0]["displayName"] == "Alice Smith"
    assert [c["color"] for c in sdk.categories.get_all().data] == ["#FF0000"]
    assert sdk.appointments.get_by_id(numeric_id(ctl, G1)).data["Subject"] == "before"
    assert imported(sdk.imports.run([exchange_item(G2)]))  # the id the failed batch took is given again
    assert int(numeric_id(ctl, G2)) == int(numeric_id(ctl, G1)) + 1
