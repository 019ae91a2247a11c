"""Recurring series: expansion, occurrence ids, exceptions, cancellations, instances."""

from __future__ import annotations

from typing import Any

from .conftest import MAILBOX, WINDOW, Graph, event_body


def weekly_series(graph: Graph, **range_: Any) -> dict[str, Any]:
    recurrence = {
        "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday"], "firstDayOfWeek": "monday"},
        "range": {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": 4, **range_},
    }
    response = graph.client.post(MAILBOX + "/events", json=event_body("Series", recurrence=recurrence))
    assert response.status_code == 201, response.text
    return dict(response.json())


def view(graph: Graph, **headers: str) -> list[dict[str, Any]]:
    return list(graph.client.get(MAILBOX + "/calendarView", params=WINDOW, headers=headers).json()["value"])


def test_weekly_series_expands_in_calendar_view(graph: Graph) -> None:
    graph.user()
    master = weekly_series(graph)
    assert master["type"] == "seriesMaster"
    assert master["recurrence"]["pattern"]["daysOfWeek"] == ["monday", "wednesday"]
    items = view(graph)
    assert [i["start"]["dateTime"][:10] for i in items] == ["2026-01-05", "2026-01-07", "2026-01-12", "2026-01-14"]
    assert {i["type"] for i in items} == {"occurrence"}
    assert {i["seriesMasterId"] for i in items} == {master["id"]}
    assert len({i["id"] for i in items}) == 4 and len({i["iCalUId"] for i in items}) == 4
    assert master["iCalUId"] not in {i["iCalUId"] for i in items}
    assert [i["id"] for i in view(graph)] == [i["id"] for i in items]  # stable across calls
    listed = graph.client.get(MAILBOX + "/events").json()["value"]
    assert [e["type"] for e in listed] == ["seriesMaster"]  # /events has no occurrences


def test_daily_series_with_end_date_and_interval(graph: Graph) -> None:
    graph.user()
    recurrence = {"pattern": {"type": "daily", "interval": 2},
                  "range": {"type": "endDate", "startDate": "2026-01-05", "endDate": "2026-01-11"}}
    graph.client.post(MAILBOX + "/events", json=event_body("Daily", recurrence=recurrence))
    assert [i["start"]["dateTime"][:10] for i in view(graph)] == ["2026-01-05", "2026-01-07", "2026-01-09",
                                                                  "2026-01-11"]


def test_no_end_series_keeps_local_time_across_dst(graph: Graph) -> None:
    graph.user()
    recurrence = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                  "range": {"type": "noEnd", "startDate": "2026-03-23"}}
    graph.client.post(MAILBOX + "/events", json=event_body(
        "Weekly", start="2026-03-23T09:00:00", end="2026-03-23T10:00:00", zone="Europe/Brussels",
        recurrence=recurrence))
    items = graph.client.get(MAILBOX + "/calendarView", params={
        "startDateTime": "2026-03-20T00:00:00Z", "endDateTime": "2026-04-07T00:00:00Z"}).json()["value"]
    # 09:00 Brussels is 08:00 UTC before the DST switch on 29 March and 07:00 UTC after it
    assert [i["start"]["dateTime"] for i in items] == [
        "2026-03-23T08:00:00.0000000", "2026-03-30T07:00:00.0000000", "2026-04-06T07:00:00.0000000"]


def test_patch_occurrence_becomes_exception(graph: Graph) -> None:
    graph.user()
    master = weekly_series(graph)
    second = view(graph)[1]
    patched = graph.client.patch(f"{MAILBOX}/events/{second['id']}", json={
        "subject": "Moved", "start": {"dateTime": "2026-01-07T15:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-07T16:00:00", "timeZone": "UTC"}})
    assert patched.status_code == 200
    assert patched.json()["type"] == "exception" and patched.json()["id"] == second["id"]
    assert patched.json()["changeKey"] != second["changeKey"]
    items = {i["id"]: i for i in view(graph)}
    assert items[second["id"]]["type"] == "exception"
    assert items[second["id"]]["subject"] == "Moved"
    assert items[second["id"]]["start"]["dateTime"] == "2026-01-07T15:00:00.0000000"
    master_now = graph.client.get(f"{MAILBOX}/events/{master['id']}").json()
    assert master_now["changeKey"] == master["changeKey"] and master_now["subject"] == "Series"
    # a later series edit shows through where the exception did not override it
    graph.client.patch(f"{MAILBOX}/events/{master['id']}", json={"showAs": "oof"})
    assert {i["showAs"] for i in view(graph)} == {"oof"}


def test_delete_occurrence_removes_it_from_views(graph: Graph) -> None:
    graph.user()
    weekly_series(graph)
    first = view(graph)[0]
    assert graph.client.delete(f"{MAILBOX}/events/{first['id']}").status_code == 204
    remaining = view(graph)
    assert len(remaining) == 3 and first["id"] not in {i["id"] for i in remaining}
    assert graph.client.get(f"{MAILBOX}/events/{first['id']}").status_code == 404


def test_master_edits_and_delete_affect_the_series(graph: Graph) -> None:
    graph.user()
    master = weekly_series(graph)
    graph.client.patch(f"{MAILBOX}/events/{master['id']}", json={"subject": "Renamed"})
    assert {i["subject"] for i in view(graph)} == {"Renamed"}
    assert graph.client.delete(f"{MAILBOX}/events/{master['id']}").status_code == 204
    assert view(graph) == []


def test_instances_endpoint(graph: Graph) -> None:
    graph.user()
    master = weekly_series(graph)
    single = graph.client.post(MAILBOX + "/events", json=event_body()).json()
    instances = graph.client.get(f"{MAILBOX}/events/{master['id']}/instances", params={
        "startDateTime": "2026-01-06T00:00:00Z", "endDateTime": "2026-01-13T00:00:00Z"}).json()["value"]
    assert [i["start"]["dateTime"][:10] for i in instances] == ["2026-01-07", "2026-01-12"]
    assert graph.client.get(f"{MAILBOX}/events/{master['id']}/instances").status_code == 400
    assert graph.client.get(f"{MAILBOX}/events/{single['id']}/instances", params=WINDOW).status_code == 400


def test_occurrence_ids_follow_immutable_preference(graph: Graph) -> None:
    graph.user()
    weekly_series(graph)
    regular = view(graph)
    immutable = view(graph, Prefer='IdType="ImmutableId"')
    assert {i["id"] for i in regular}.isdisjoint({i["id"] for i in immutable})
    fetched = graph.client.get(f"{MAILBOX}/events/{immutable[0]['id']}").json()
    assert fetched["id"] == regular[0]["id"] and fetched["type"] == "occurrence"


def test_invalid_recurrence_is_400(graph: Graph) -> None:
    graph.user()
    for recurrence in (
        {"pattern": {"type": "weekly", "interval": 1}, "range": {"type": "noEnd", "startDate": "2026-01-05"}},
        {"pattern": {"type": "daily", "interval": 0}, "range": {"type": "noEnd", "startDate": "2026-01-05"}},
        {"pattern": {"type": "hourly", "interval": 1}, "range": {"type": "noEnd", "startDate": "2026-01-05"}},
        {"pattern": {"type": "daily", "interval": 1}, "range": {"type": "endDate", "startDate": "2026-01-05"}},
        {"pattern": {"type": "daily", "interval": 1}},
    ):
        response = graph.client.post(MAILBOX + "/events", json=event_body(recurrence=recurrence))
        assert response.status_code == 400, recurrence
