"""Events: CRUD, fields, validation, time zones, Prefer headers, ids, transactionId,
extended properties and OData options."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import MAILBOX, WINDOW, Graph, event_body

EXT_ID = "String {66f5a359-4659-4830-9070-00047ec6ac6e} Name AppointmentId"


def create(graph: Graph, **kwargs: object) -> dict[str, object]:
    response = graph.client.post(MAILBOX + "/events", json=event_body(**kwargs))  # type: ignore[arg-type]
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_get_update_delete(graph: Graph) -> None:
    graph.user()
    event = create(graph, subject="Standup", categories=["Blue"], showAs="tentative", sensitivity="private",
                   importance="high", location={"displayName": "Room 1"})
    assert event["@odata.context"].endswith("/events/$entity")  # type: ignore[union-attr]
    for name in ("id", "iCalUId", "changeKey", "createdDateTime", "lastModifiedDateTime", "organizer", "attendees",
                 "bodyPreview", "isCancelled", "locations", "seriesMasterId", "recurrence"):
        assert name in event, name
    assert event["type"] == "singleInstance"
    assert event["start"] == {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": "UTC"}
    assert event["@odata.etag"] == f'W/"{event["changeKey"]}"'
    assert event["bodyPreview"] == "Hello world"
    assert "transactionId" not in event
    url = f"{MAILBOX}/events/{event['id']}"
    assert graph.client.get(url).json()["subject"] == "Standup"
    assert graph.client.get(f"{MAILBOX}/calendar/events/{event['id']}").status_code == 200
    patched = graph.client.patch(url, json={"subject": "Renamed", "showAs": "free"})
    assert patched.status_code == 200
    assert patched.json()["subject"] == "Renamed" and patched.json()["categories"] == ["Blue"]
    assert patched.json()["changeKey"] != event["changeKey"]
    assert graph.client.delete(url).status_code == 204
    gone = graph.client.get(url)
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "ErrorItemNotFound"
    assert graph.client.patch(url, json={"subject": "x"}).status_code == 404
    assert graph.client.delete(url).status_code == 404


def test_calendar_events_path_and_events_list(graph: Graph) -> None:
    graph.user()
    graph.client.post(MAILBOX + "/calendar/events", json=event_body("A"))
    create(graph, subject="B")
    listed = graph.client.get(MAILBOX + "/events").json()
    assert sorted(e["subject"] for e in listed["value"]) == ["A", "B"]
    assert graph.client.get(MAILBOX + "/calendar/events").json()["value"]


def test_unknown_mailbox_is_404(graph: Graph) -> None:
    response = graph.client.post("/v1.0/users/ghost@contoso.com/events", json=event_body())
    assert response.status_code == 404


@pytest.mark.parametrize(
    ("patch", "code"),
    [
        ({"subjectt": "typo"}, "RequestBodyRead"),
        ({"showAs": "sleeping"}, "RequestBodyRead"),
        ({"sensitivity": "secret"}, "RequestBodyRead"),
        ({"importance": 3}, "RequestBodyRead"),
        ({"categories": "Blue"}, "RequestBodyRead"),
        ({"id": "AAMk"}, "ErrorInvalidPropertySet"),
        ({"start": {"dateTime": "2026-01-05T09:00:00", "timeZone": "Mars/Olympus"}}, "TimeZoneNotSupportedException"),
        ({"start": {"dateTime": "not a date", "timeZone": "UTC"}}, "ErrorInvalidRequest"),
        ({"end": {"dateTime": "2026-01-05T08:00:00", "timeZone": "UTC"}}, "ErrorInvalidRequest"),
        ({"isAllDay": True}, "ErrorInvalidRequest"),
        ({"transactionId": "late"}, "ErrorInvalidPropertySet"),
    ],
)
def test_invalid_patch_is_400(graph: Graph, patch: dict[str, object], code: str) -> None:
    graph.user()
    event = create(graph)
    response = graph.client.patch(f"{MAILBOX}/events/{event['id']}", json=patch)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == code
    assert graph.client.get(f"{MAILBOX}/events/{event['id']}").json()["changeKey"] == event["changeKey"]


def test_create_needs_start_and_end(graph: Graph) -> None:
    graph.user()
    response = graph.client.post(MAILBOX + "/events", json={"subject": "x"})
    assert response.status_code == 400


def test_all_day_needs_midnight(graph: Graph) -> None:
    graph.user()
    bad = graph.client.post(MAILBOX + "/events", json=event_body(isAllDay=True))
    assert bad.status_code == 400
    good = graph.client.post(MAILBOX + "/events", json=event_body(
        start="2026-01-05T00:00:00", end="2026-01-07T00:00:00", zone="W. Europe Standard Time", isAllDay=True))
    assert good.status_code == 201
    body = good.json()
    assert body["isAllDay"] is True
    assert body["start"]["dateTime"] == "2026-01-05T00:00:00.0000000"
    assert body["end"]["dateTime"] == "2026-01-07T00:00:00.0000000"
    pacific = graph.client.get(f"{MAILBOX}/events/{body['id']}",
                               headers={"Prefer": 'outlook.timezone="Pacific Standard Time"'}).json()
    assert pacific["start"] == {"dateTime": "2026-01-05T00:00:00.0000000", "timeZone": "Pacific Standard Time"}


def test_time_zones_stored_in_utc_and_prefer_timezone(graph: Graph) -> None:
    graph.user()
    for zone in ("W. Europe Standard Time", "Europe/Brussels", "Romance Standard Time",
                 "Central European Standard Time"):
        event = create(graph, start="2026-07-01T10:00:00", end="2026-07-01T11:00:00", zone=zone)
        assert event["start"] == {"dateTime": "2026-07-01T08:00:00.0000000", "timeZone": "UTC"}, zone
        assert event["originalStartTimeZone"] == zone
    eastern = create(graph, start="2026-01-05T09:00:00", end="2026-01-05T10:00:00", zone="Eastern Standard Time")
    assert eastern["start"]["dateTime"] == "2026-01-05T14:00:00.0000000"
    response = graph.client.get(f"{MAILBOX}/events/{eastern['id']}",
                                headers={"Prefer": 'outlook.timezone="GMT Standard Time"'})
    assert response.headers["Preference-Applied"] == 'outlook.timezone="GMT Standard Time"'
    assert response.json()["start"] == {"dateTime": "2026-01-05T14:00:00.0000000", "timeZone": "GMT Standard Time"}
    pacific = graph.client.get(f"{MAILBOX}/events/{eastern['id']}",
                               headers={"Prefer": 'outlook.timezone="America/Los_Angeles"'}).json()
    assert pacific["start"]["dateTime"] == "2026-01-05T06:00:00.0000000"


def test_prefer_values_combined_or_repeated(graph: Graph) -> None:
    graph.user()
    event = create(graph)
    url = graph.url + f"{MAILBOX}/events/{event['id']}"
    combined = graph.client.get(url, headers={"Prefer": 'outlook.timezone="Pacific Standard Time", '
                                                        'outlook.body-content-type="text"'})
    repeated = graph.client.get(url, headers=[("Prefer", 'outlook.timezone="Pacific Standard Time"'),
                                              ("Prefer", 'outlook.body-content-type="text"')])
    for response in (combined, repeated):
        body = response.json()
        assert body["body"] == {"contentType": "text", "content": "Hello world"}
        assert body["start"]["timeZone"] == "Pacific Standard Time"
        assert "outlook.body-content-type" in response.headers["Preference-Applied"]
        assert "outlook.timezone" in response.headers["Preference-Applied"]
    assert graph.client.get(url).json()["body"]["contentType"] == "html"


def test_regular_and_immutable_ids(graph: Graph) -> None:
    graph.user()
    immutable = graph.client.post(MAILBOX + "/events", json=event_body(),
                                  headers={"Prefer": 'IdType="ImmutableId"'})
    assert immutable.headers["Preference-Applied"] == 'IdType="ImmutableId"'
    immutable_id = immutable.json()["id"]
    regular_id = graph.client.get(f"{MAILBOX}/events/{immutable_id}").json()["id"]
    assert regular_id != immutable_id
    assert graph.client.get(f"{MAILBOX}/events/{regular_id}",
                            headers={"Prefer": 'IdType="ImmutableId"'}).json()["id"] == immutable_id
    # ids are case-sensitive
    assert graph.client.get(f"{MAILBOX}/events/{regular_id.lower()}").status_code == 404
    moved = graph.client.post(f"/_emulator/events/{regular_id}/move").json()
    assert moved["immutableId"] == immutable_id and moved["id"] != regular_id
    assert graph.client.get(f"{MAILBOX}/events/{regular_id}").status_code == 404
    assert graph.client.get(f"{MAILBOX}/events/{immutable_id}").json()["id"] == moved["id"]


def test_transaction_id_makes_create_idempotent(graph: Graph) -> None:
    graph.user()
    graph.user("bob@contoso.com", "Bob")
    first = create(graph, transactionId="tx-1")
    again = graph.client.post(MAILBOX + "/events", json=event_body(subject="other", transactionId="tx-1"))
    assert again.status_code == 201
    assert again.json()["id"] == first["id"] and again.json()["subject"] == "Meeting"
    assert first["transactionId"] == "tx-1"
    assert len(graph.client.get(MAILBOX + "/events").json()["value"]) == 1
    other_mailbox = graph.client.post("/v1.0/users/bob@contoso.com/events", json=event_body(transactionId="tx-1"))
    assert other_mailbox.json()["id"] != first["id"]


def test_a_repeated_transaction_id_after_its_event_was_deleted_in_both_variants(graph_factory: Any) -> None:
    # Graph does not document its answer to a repeat: the default gives the first event back, and once
    # that event is deleted a repeat creates a new one; "conflict" answers 409 and keeps the id taken.
    lenient = graph_factory()
    lenient.user()
    first = create(lenient, transactionId="tx-9")
    assert lenient.client.delete(f"{MAILBOX}/events/{first['id']}").status_code == 204
    again = lenient.client.post(MAILBOX + "/events", json=event_body(transactionId="tx-9"))
    assert again.status_code == 201 and again.json()["id"] != first["id"]
    strict = graph_factory(repeated_transaction="conflict")
    strict.user()
    first = create(strict, transactionId="tx-9")
    for _ in range(2):  # while its event exists, and after it was deleted
        repeat = strict.client.post(MAILBOX + "/events", json=event_body(transactionId="tx-9"))
        assert repeat.status_code == 409 and repeat.json()["error"]["code"] == "ErrorDuplicateTransactionId"
        strict.client.delete(f"{MAILBOX}/events/{first['id']}")
    assert strict.client.get(MAILBOX + "/events").json()["value"] == []
    assert strict.client.post(MAILBOX + "/events", json=event_body(transactionId="tx-10")).status_code == 201


def test_if_match_mismatch_is_412(graph: Graph) -> None:
    graph.user()
    event = create(graph)
    url = f"{MAILBOX}/events/{event['id']}"
    stale = graph.client.patch(url, json={"subject": "a"}, headers={"If-Match": 'W/"stale"'})
    assert stale.status_code == 412
    ok = graph.client.patch(url, json={"subject": "a"}, headers={"If-Match": str(event["@odata.etag"])})
    assert ok.status_code == 200


def test_extended_properties_hidden_unless_expanded(graph: Graph) -> None:
    graph.user()
    event = create(graph, singleValueExtendedProperties=[{"id": EXT_ID, "value": "appt-1"}])
    url = f"{MAILBOX}/events/{event['id']}"
    assert "singleValueExtendedProperties" not in event
    assert "singleValueExtendedProperties" not in graph.client.get(url).json()
    upper_guid = EXT_ID.replace("66f5a359", "66F5A359").replace("String", "string")
    expanded = graph.client.get(url, params={"$expand": f"singleValueExtendedProperties($filter=id eq '{upper_guid}')"})
    assert expanded.json()["singleValueExtendedProperties"] == [{"id": EXT_ID, "value": "appt-1"}]
    wrong_case_name = EXT_ID.replace("AppointmentId", "appointmentid")
    other = graph.client.get(url, params={"$expand": f"singleValueExtendedProperties($filter=id eq '{wrong_case_name}')"})
    assert "singleValueExtendedProperties" not in other.json()
    graph.client.patch(url, json={"singleValueExtendedProperties": [{"id": EXT_ID, "value": "appt-2"}]})
    again = graph.client.get(url, params={"$expand": f"singleValueExtendedProperties($filter=id eq '{EXT_ID}')"})
    assert again.json()["singleValueExtendedProperties"][0]["value"] == "appt-2"
    bad = graph.client.patch(url, json={"singleValueExtendedProperties": [{"id": "nonsense", "value": "x"}]})
    assert bad.status_code == 400


@pytest.mark.parametrize("path", ["/events", "/calendarView"])
def test_filter_on_extended_property(graph: Graph, path: str) -> None:
    graph.user()
    create(graph, subject="tagged", singleValueExtendedProperties=[{"id": EXT_ID, "value": "appt-1"}])
    create(graph, subject="other", singleValueExtendedProperties=[{"id": EXT_ID, "value": "appt-2"}])
    create(graph, subject="plain")
    guid_upper = EXT_ID.replace("66f5a359", "66F5A359")
    params = {**WINDOW, "$filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{guid_upper}' "
                                   "and ep/value eq 'appt-1')"}
    found = graph.client.get(MAILBOX + path, params=params).json()["value"]
    assert [e["subject"] for e in found] == ["tagged"]
    name_case = EXT_ID.replace("AppointmentId", "APPOINTMENTID")
    params["$filter"] = f"singleValueExtendedProperties/any(p: p/id eq '{name_case}' and p/value eq 'appt-1')"
    assert graph.client.get(MAILBOX + path, params=params).json()["value"] == []


def test_select_top_orderby_and_paging(graph: Graph) -> None:
    graph.user()
    for day in (7, 5, 6):
        create(graph, subject=f"d{day}", start=f"2026-01-0{day}T09:00:00", end=f"2026-01-0{day}T10:00:00")
    selected = graph.client.get(MAILBOX + "/events", params={"$select": "subject", "$orderby": "start/dateTime desc"})
    values = selected.json()["value"]
    assert [v["subject"] for v in values] == ["d7", "d6", "d5"]
    assert set(values[0]) == {"@odata.etag", "id", "subject"}
    page = graph.client.get(MAILBOX + "/calendarView", params={**WINDOW, "$top": "2"}).json()
    assert len(page["value"]) == 2
    rest = graph.client.get(page["@odata.nextLink"]).json()
    assert [v["subject"] for v in page["value"] + rest["value"]] == ["d5", "d6", "d7"]
    pref = graph.client.get(MAILBOX + "/events", headers={"Prefer": "odata.maxpagesize=1"})
    assert len(pref.json()["value"]) == 1 and "@odata.nextLink" in pref.json()
    assert graph.client.get(MAILBOX + "/events", params={"$select": "nope"}).status_code == 400
    assert graph.client.get(MAILBOX + "/events", params={"$orderby": "body"}).status_code == 400


def test_default_page_size_is_ten(graph: Graph) -> None:
    graph.user()
    for i in range(12):
        create(graph, subject=f"e{i}")
    first = graph.client.get(MAILBOX + "/events").json()
    assert len(first["value"]) == 10
    assert len(graph.client.get(first["@odata.nextLink"]).json()["value"]) == 2


def test_calendar_view_window(graph: Graph) -> None:
    graph.user()
    create(graph, subject="inside")
    create(graph, subject="overlapping", start="2025-12-31T23:00:00", end="2026-01-01T01:00:00")
    create(graph, subject="outside", start="2026-03-01T09:00:00", end="2026-03-01T10:00:00")
    view = graph.client.get(MAILBOX + "/calendarView", params=WINDOW)
    assert view.json()["@odata.context"].endswith("/calendarView")
    assert sorted(e["subject"] for e in view.json()["value"]) == ["inside", "overlapping"]
    for params in ({}, {"startDateTime": WINDOW["startDateTime"]}, {"endDateTime": WINDOW["endDateTime"]}):
        missing = graph.client.get(MAILBOX + "/calendarView", params=params)
        assert missing.status_code == 400 and "error" in missing.json()
    assert graph.client.get(MAILBOX + "/calendar/calendarView", params=WINDOW).json()["value"]
