"""The control plane: stats contract, resets, seed, the planner, the stored view, config."""

from __future__ import annotations

import httpx
import pytest
from dimescheduler import DimeSchedulerClient

from .builders import ALICE, BOB, call, exchange_item, import_status, imported, numeric_id, planner_body, seed_people


def test_stats_count_requests_by_route_template(
    api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient
) -> None:
    seed_people(ctl)
    guid = "0b7ad1d2-6d55-4a9c-9d38-000000000030"
    assert imported(sdk.imports.run([exchange_item(guid), exchange_item(guid, subject="x")]))
    assert import_status(sdk.imports.run([call("mboc_nope")])) == 400
    sdk.resources.get_all()
    sdk.appointments.get("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z")
    sdk.appointments.get_by_id(guid)
    sdk.appointments.get_by_id("1000")
    api.post("/webhooks/AppointmentCreated", json={"bad": True})
    api.delete("/webhooks/AppointmentDeleted/abc")
    api.get("/no/such/route")
    stats = ctl.get("/stats").json()
    assert stats["requests"] == {
        "POST /import": 2, "GET /resource": 1, "GET /appointment": 1, "GET /appointment/{id}": 2,
        "POST /webhooks/AppointmentCreated": 1, "DELETE /webhooks/AppointmentDeleted/{id}": 1,
    }
    assert stats["unmatched"] == {"GET /no/such/route": 1}
    assert stats["procedures"] == {"mboc_upsertExchangeAppointment": 2}  # the failed import applied nothing
    # Counters reset; state stays.
    assert ctl.post("/stats/reset").status_code == 200
    zeroed = ctl.get("/stats").json()
    assert zeroed["requests"] == {} and zeroed["procedures"] == {} and zeroed["webhooks"]["delivered"] == 0
    assert sdk.appointments.get_by_id(numeric_id(ctl, guid)).ok


def test_reset_clears_state_and_counters(api: httpx.Client, ctl: httpx.Client, sdk: DimeSchedulerClient) -> None:
    seed_people(ctl)
    assert imported(sdk.imports.run([exchange_item("0b7ad1d2-6d55-4a9c-9d38-000000000031")]))
    api.post("/webhooks/AppointmentCreated", json={"sourceApp": "C", "notificationURL": "http://127.0.0.1:1/x",
                                                   "resource": "Appointments", "changeType": ["Create"]})
    ctl.post("/faults", json={"route": "/category", "status": 500}).raise_for_status()
    assert ctl.post("/reset").status_code == 200
    assert ctl.get("/stats").json()["requests"] == {}
    assert sdk.resources.get_all().data == []
    assert ctl.get("/appointments").json() == []
    assert api.get("/webhooks").json() == []
    assert sdk.categories.get_all().ok  # the fault is gone


def test_seed_accepts_both_key_styles_and_is_silent(ctl: httpx.Client, sdk: DimeSchedulerClient) -> None:
    response = ctl.post("/seed", json={
        "resources": [ALICE, BOB],
        "appointments": [planner_body(AppointmentGuid="0b7ad1d2-6d55-4a9c-9d38-000000000032",
                                      LastModifiedDate="2025-12-01T10:00:00Z", LastModifiedUser="someone",
                                      CreatedDate="2025-11-30T10:00:00Z", CreatedUser="creator")],
    })
    assert response.status_code == 200, response.text
    summary = response.json()
    assert summary["resources"] == 2 and summary["appointments"][0]["AppointmentGuid"].endswith("32")
    item = sdk.appointments.get_by_id(str(summary["appointments"][0]["id"])).data
    assert (item["LastModifiedDate"], item["LastModifiedUser"]) == ("2025-12-01T10:00:00", "someone")
    assert (item["CreatedDate"], item["CreatedUser"]) == ("2025-11-30T10:00:00", "creator")
    stats = ctl.get("/stats").json()
    assert stats["requests"] == {"GET /appointment/{id}": 1} and stats["procedures"] == {}


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"resources": [{"displayName": "no number"}]}, "ResourceNo"),
        ({"resources": [{"resourceNo": "X", "exchangeIntegrationEnabled": "maybe"}]}, "maybe"),
        ({"resources": "ALICE"}, "array"),
        ({"people": []}, "people"),
        ({"appointments": [{"Subject": "no dates"}]}, "StartDate"),
        ({"categories": [{"name": "C", "color": "red"}]}, "#RRGGBB"),
    ],
)
def test_bad_seed_is_400_and_atomic(ctl: httpx.Client, sdk: DimeSchedulerClient, body: dict, fragment: str) -> None:
    payload = body if "resources" in body else {"resources": [ALICE], **body}  # a good part must not stick
    response = ctl.post("/seed", json=payload)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert sdk.resources.get_all().data == []


def test_planner_create_patch_delete(ctl: httpx.Client, sdk: DimeSchedulerClient) -> None:
    seed_people(ctl)
    response = ctl.post("/planner/appointments", json=planner_body())
    assert response.status_code == 201
    created = response.json()
    guid = created["AppointmentGuid"]
    assert len(guid) == 36 and isinstance(created["id"], int) and created["Origin"] == "planning"
    assert created["LastModifiedDate"] == created["CreatedDate"]

    for assignments, expected in [
        ([{"Resource": {"ResourceNo": "BOB"}}], ["BOB"]),
        ([{"ResourceNo": "alice"}, {"ResourceNo": "BOB"}], ["ALICE", "BOB"]),
        ([], []),
    ]:
        response = ctl.patch(f"/planner/appointments/{guid}", json={"Assignments": assignments})
        assert response.status_code == 200, response.text
        assert response.json()["ResourceNos"] == expected
    patched = ctl.patch(f"/planner/appointments/{guid}", json={"Subject": "New subject", "Locked": True}).json()
    assert patched["Subject"] == "New subject" and patched["Locked"] is True
    assert patched["Body"] == "Replace filter"  # untouched fields stay
    assert patched["LastModifiedDate"] > created["LastModifiedDate"]
    # A save that changes nothing still counts as a planner's save.
    again = ctl.patch(f"/planner/appointments/{guid}", json={"Subject": "New subject"}).json()
    assert again["LastModifiedDate"] > patched["LastModifiedDate"]

    assert ctl.delete(f"/planner/appointments/{guid}").status_code == 204
    assert sdk.appointments.get_by_id(guid).response.status_code == 404
    assert ctl.delete(f"/planner/appointments/{guid}").status_code == 404
    assert ctl.patch(f"/planner/appointments/{guid}", json={}).status_code == 404


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (planner_body(Assignments=[{"Resource": {"ResourceNo": "ZED"}}]), "ZED"),
        (planner_body(StartDate="soon"), "StartDate"),
        (planner_body(EndDate="2026-01-06T07:00:00Z"), "before"),
        (planner_body(Importance=5), "Importance"),
        (planner_body(AppointmentGuid="nope"), "AppointmentGuid"),
        (planner_body(Task={"TaskNo": "T1"}), "Job"),
        ([1, 2], "object"),
    ],
)
def test_planner_rejects_bad_bodies(ctl: httpx.Client, body: object, fragment: str) -> None:
    seed_people(ctl)
    response = ctl.post("/planner/appointments", json=body)
    assert response.status_code == 400
    assert fragment in response.json()["message"]
    assert ctl.get("/appointments").json() == []


def test_planner_patch_with_unknown_resource_changes_nothing(ctl: httpx.Client) -> None:
    seed_people(ctl)
    guid = ctl.post("/planner/appointments", json=planner_body()).json()["AppointmentGuid"]
    before = ctl.get(f"/appointments/{guid}").json()
    response = ctl.patch(f"/planner/appointments/{guid}", json={"Subject": "x", "Assignments": [{"ResourceNo": "Q"}]})
    assert response.status_code == 400 and "'Q'" in response.json()["message"]
    assert ctl.get(f"/appointments/{guid}").json() == before


def test_planner_accepts_a_given_guid_and_flat_camel_case(ctl: httpx.Client) -> None:
    seed_people(ctl)
    guid = "0b7ad1d2-6d55-4a9c-9d38-000000000033"
    body = {"appointmentGuid": guid, "sourceApp": "BC", "sourceType": "JOB", "jobNo": "J9", "taskNo": "T9",
            "resourceNo": "BOB", "subject": "Flat", "start": "2026-01-07T08:00:00Z", "end": "2026-01-07T09:00:00Z"}
    created = ctl.post("/planner/appointments", json=body).json()
    assert created["AppointmentGuid"] == guid and created["ResourceNos"] == ["BOB"]
    assert created["Task"]["Job"]["JobNo"] == "J9" and created["Subject"] == "Flat"
    assert ctl.post("/planner/appointments", json=body).status_code == 400  # the GUID is taken


def test_stored_view_shows_every_field(ctl: httpx.Client, sdk: DimeSchedulerClient) -> None:
    seed_people(ctl)
    guid = "0b7ad1d2-6d55-4a9c-9d38-000000000034"
    assert imported(sdk.imports.run([exchange_item(guid)]))
    (item,) = ctl.get("/appointments").json()
    assert item["Origin"] == "exchange" and item["Location"] is None and item["IsAllDayEvent"] is False
    assert item["ExchangeId"] and item["ICalUId"] and item["ResourceNos"] == ["ALICE"]
    assert ctl.get(f"/appointments/{item['id']}").json() == item
    assert ctl.get("/appointments/unknown").status_code == 404


def test_config_knobs(ctl: httpx.Client) -> None:
    config = ctl.get("/config").json()
    assert config["import_fires_webhooks"] is True and config["payload_casing"] == "pascal"
    assert "api_keys" not in config  # keys are not echoed
    assert ctl.patch("/config", json={"payload_casing": "snake"}).status_code == 400
    assert ctl.patch("/config", json={"api_keys": ["x"]}).status_code == 400
    assert ctl.patch("/config", json={"retry_max_attempts": 1.5}).status_code == 400
    assert ctl.patch("/config", json={"accept_naive_dates": True}).json()["accept_naive_dates"] is True
