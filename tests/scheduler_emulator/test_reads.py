"""Reads through the official SDK: resources, the appointment window, one appointment, indicators."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from dimescheduler import DimeSchedulerClient

from .builders import ALICE, exchange_item, imported, numeric_id, planner_body, seed_people

INCOMING_KEYS = {
    "id", "appointmentNo", "AppointmentGuid", "Subject", "Body", "StartDate", "EndDate",
    "Importance", "Locked", "LastModifiedDate", "LastModifiedUser", "CreatedDate", "CreatedUser",
    "IsRecurrenceException", "Task", "Category", "TimeMarker", "Assignments", "AppointmentFieldValues",
    "AppointmentUrls", "AppointmentContainers", "Notifications",
}
EXCHANGE_KEYS = {"IsAllDayEvent", "CreatedByExchange", "ExchangeId", "ICalUId", "ShowAs", "Sensitivity", "Categories"}


def test_resources_are_camel_case_per_the_swagger(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    result = sdk.resources.get_all()
    assert result.ok
    alice, bob = result.data
    for key, value in ALICE.items():
        assert alice[key] == value, key
    assert isinstance(alice["id"], int) and alice["id"] != bob["id"]
    assert bob["resourceNo"] == "BOB" and bob["email"] == "Bob@Contoso.com"
    assert bob["exchangeIntegrationEnabled"] is False
    for key in ("resourceTypeId", "resourceName", "phone", "mobilePhone", "teamCode", "doNotShow", "freeText20"):
        assert key in alice


def _seed_window(ctl: httpx.Client) -> dict[str, str]:
    seed_people(ctl)
    day = {"Task": None, "Category": None}
    items = {
        "alice_morning": planner_body(StartDate="2026-01-05T08:00:00Z", EndDate="2026-01-05T09:00:00Z"),
        "bob_noon": planner_body(StartDate="2026-01-05T11:30:00Z", EndDate="2026-01-05T12:30:00Z",
                                 Assignments=[{"ResourceNo": "BOB"}]),
        "both_evening": planner_body(StartDate="2026-01-05T17:00:00Z", EndDate="2026-01-05T19:00:00Z",
                                     Assignments=[{"ResourceNo": "ALICE"}, {"ResourceNo": "BOB"}]),
        "unassigned": planner_body(StartDate="2026-01-05T10:00:00Z", EndDate="2026-01-05T10:30:00Z",
                                   Assignments=[], **day),
        "next_day": planner_body(StartDate="2026-01-06T08:00:00Z", EndDate="2026-01-06T09:00:00Z"),
    }
    guids = {}
    for name, body in items.items():
        response = ctl.post("/planner/appointments", json=body | {"Subject": name})
        assert response.status_code == 201, response.text
        guids[name] = response.json()["AppointmentGuid"]
    return guids


def _subjects(result: object) -> list[str]:
    assert result.ok, result.error  # type: ignore[attr-defined]
    return [a["Subject"] for a in result.data]  # type: ignore[attr-defined]


def test_window_overlap_and_resource_filter(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    _seed_window(ctl)
    start, end = datetime(2026, 1, 5, 8, 30, tzinfo=UTC), datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    # Overlap counts, sorted by start; no resource filter = every appointment, unassigned included.
    assert _subjects(sdk.appointments.get(start, end)) == ["alice_morning", "unassigned", "bob_noon", "both_evening"]
    assert _subjects(sdk.appointments.get(start, end, ["ALICE"])) == ["alice_morning", "both_evening"]
    assert _subjects(sdk.appointments.get(start, end, ["bob"])) == ["bob_noon", "both_evening"]
    assert _subjects(sdk.appointments.get(start, end, ["ALICE", "BOB"])) == [
        "alice_morning", "bob_noon", "both_evening"]
    # Touching the window's edge is not an overlap.
    assert _subjects(sdk.appointments.get("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z", ["ALICE"])) == []
    assert _subjects(sdk.appointments.get("2026-01-05T00:00:00.000Z", "2026-01-06T00:00:00.000Z", ["NOBODY"])) == []


def test_window_items_have_the_incoming_shape(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    guids = _seed_window(ctl)
    result = sdk.appointments.get("2026-01-05T00:00:00Z", "2026-01-05T09:00:00Z", ["ALICE"])
    (item,) = result.data
    assert set(item) >= INCOMING_KEYS and not set(item) & EXCHANGE_KEYS
    assert item["AppointmentGuid"] == guids["alice_morning"]
    assert (item["StartDate"], item["EndDate"]) == ("2026-01-05T08:00:00", "2026-01-05T09:00:00")  # UTC, no offset
    assert item["Task"] == {"TaskNo": "T1", "Job": {"SourceApp": "BC", "SourceType": "JOB", "JobNo": "J1"}}
    assert item["Category"] == {"DisplayName": "Confirmed", "Color": "#00FF00"}
    assert item["Importance"] == 1 and item["LastModifiedUser"] == "planner"
    (assignment,) = item["Assignments"]
    assert assignment["ResourceId"] == sdk.resources.get_all().data[0]["id"]
    assert assignment["Resource"] == {
        "ResourceNo": "ALICE", "DisplayName": "Alice Smith", "Email": "alice@contoso.com", "Department": "Field",
        "SourceApp": "BC", "SourceType": "RES", "ResourceType": {"DisplayName": "Technician"},
    }


def test_exchange_items_carry_their_origin(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    guid = "0b7ad1d2-6d55-4a9c-9d38-000000000010"
    assert imported(sdk.imports.run([exchange_item(guid)]))
    (item,) = sdk.appointments.get("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", ["ALICE"]).data
    assert set(item) >= INCOMING_KEYS and not set(item) & EXCHANGE_KEYS  # the published schema has none
    ctl.patch("/config", json={"payload_outlook_fields": True}).raise_for_status()
    (item,) = sdk.appointments.get("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", ["ALICE"]).data
    assert set(item) >= INCOMING_KEYS | EXCHANGE_KEYS
    assert (item["CreatedByExchange"], item["ShowAs"], item["Sensitivity"]) == (True, 3, 1)
    assert item["Categories"] == ["Red", "Blue"] and item["Task"] is None


@pytest.mark.parametrize(
    "query",
    [
        {"endDate": "2026-01-05T00:00:00Z"},
        {"startDate": "2026-01-05T00:00:00Z"},
        {"startDate": "yesterday", "endDate": "2026-01-05T00:00:00Z"},
        {"startDate": "2026-01-05T00:00:00", "endDate": "2026-01-06T00:00:00"},  # no zone
        {"startDate": "2026-01-06T00:00:00Z", "endDate": "2026-01-05T00:00:00Z"},  # reversed
    ],
)
def test_window_needs_valid_dates(api: httpx.Client, query: dict[str, str]) -> None:
    response = api.get("/appointment", params=query)
    assert response.status_code == 400
    assert response.json()["message"]


def test_unencoded_plus_offset_is_understood(api: httpx.Client, ctl: httpx.Client) -> None:
    _seed_window(ctl)
    response = api.get("/appointment?startDate=2026-01-05T08:30:00+00:00&endDate=2026-01-05T09:00:00+00:00")
    assert response.status_code == 200, response.text
    assert [a["Subject"] for a in response.json()] == ["alice_morning"]


def test_get_by_id_and_guid(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    guids = _seed_window(ctl)
    by_id = sdk.appointments.get_by_id(numeric_id(ctl, guids["bob_noon"]))
    assert by_id.ok and by_id.data["Subject"] == "bob_noon"
    # By default only the numeric id is a valid route value: a GUID finds nothing.
    assert sdk.appointments.get_by_id(guids["bob_noon"]).response.status_code == 404
    ctl.patch("/config", json={"appointment_lookup": "id_or_guid"}).raise_for_status()
    by_guid = sdk.appointments.get_by_id(guids["bob_noon"])
    assert by_guid.ok and by_guid.data == by_id.data
    assert sdk.appointments.get_by_id(guids["bob_noon"].upper()).data == by_guid.data
    missing = sdk.appointments.get_by_id("424242")
    assert missing.response.status_code == 404 and missing.error["message"]
    assert sdk.appointments.get_by_id("00000000-0000-4000-8000-00000000dead").response.status_code == 404


def test_categories_and_time_markers(api: httpx.Client, sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    ctl.post("/seed", json={
        "categories": [{"name": "OOO", "displayName": "Out of office", "color": "#7f61ff"},
                       {"CategoryName": "CONF", "DisplayName": "Confirmed", "CategoryHexColor": "#00FF00"}],
        "timeMarkers": [{"name": "Underway", "color": "#99AA22"}],
    }).raise_for_status()
    expected = [{"id": "1", "name": "OOO", "displayName": "Out of office", "color": "#7f61ff"},
                {"id": "2", "name": "CONF", "displayName": "Confirmed", "color": "#00FF00"}]
    assert sdk.categories.get_all().data == expected
    assert api.get("/categories").json() == expected
    assert sdk.time_markers.get_all().data == [{"id": "1", "name": "Underway", "color": "#99AA22"}]
