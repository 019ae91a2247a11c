"""Real-world semantics of calendar reads: delta renders occurrences as stubs and lists the series
master, a deleted occurrence may give no signal, relative monthly/yearly recurrences, HTML bodies
unless the text Prefer is sent, mailbox time zones and all-day items stored in the zone they were
written in. Each knob variant is exercised through the running emulator's `/_emulator/config`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from .conftest import MAILBOX, WINDOW, Graph, event_body
from .test_delta import full_round

STUB_KEYS = {"@odata.type", "@odata.etag", "id", "type", "seriesMasterId", "start", "end"}
TEXT = {"Prefer": 'outlook.body-content-type="text"'}


@pytest.fixture
def own_graph(graph_factory: Callable[..., Graph]) -> Graph:
    """An emulator of the test's own: knobs set through /_emulator/config outlive a reset."""
    return graph_factory()


def set_knobs(graph: Graph, **knobs: Any) -> None:
    response = graph.client.patch("/_emulator/config", json=knobs)
    assert response.status_code == 200, response.text
    for name, value in knobs.items():
        assert response.json()[name] == value


def weekly(graph: Graph, subject: str = "Stand-up", count: int = 3, **fields: Any) -> dict[str, Any]:
    recurrence = {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
                  "range": {"type": "numbered", "startDate": "2026-01-05", "numberOfOccurrences": count}}
    response = graph.client.post(MAILBOX + "/events", json=event_body(subject, recurrence=recurrence, **fields))
    assert response.status_code == 201, response.text
    return dict(response.json())


# -- delta and series ---------------------------------------------------------------------------
def test_delta_renders_occurrences_as_stubs_and_lists_the_master_in_full(graph: Graph) -> None:
    graph.user()
    master = weekly(graph, showAs="oof", sensitivity="private")
    items, _, _ = full_round(graph, params=WINDOW)
    occurrences = [i for i in items if i["type"] == "occurrence"]
    assert len(occurrences) == 3
    for item in occurrences:
        assert set(item) == STUB_KEYS  # no subject, showAs, sensitivity, body, changeKey
        assert item["seriesMasterId"] == master["id"]
    listed = [i for i in items if i["type"] == "seriesMaster"]
    assert len(listed) == 1 and listed[0]["id"] == master["id"]
    assert listed[0]["subject"] == "Stand-up" and listed[0]["showAs"] == "oof" and listed[0]["sensitivity"] == "private"
    assert listed[0]["recurrence"]["pattern"]["type"] == "weekly"


def test_a_master_only_change_brings_the_master_not_its_unchanged_occurrences(graph: Graph) -> None:
    graph.user()
    master = weekly(graph)
    _, delta_link, _ = full_round(graph, params=WINDOW)
    graph.client.patch(f"{MAILBOX}/events/{master['id']}", json={"subject": "Stand-up (new room)",
                                                                  "sensitivity": "private", "showAs": "tentative"})
    changes, delta_link, _ = full_round(graph, delta_link)
    assert [(c["id"], c["type"], c["subject"]) for c in changes] == [(master["id"], "seriesMaster",
                                                                      "Stand-up (new room)")]
    # Exceptions are full items.
    occurrence = graph.client.get(f"{MAILBOX}/events/{master['id']}/instances", params=WINDOW).json()["value"][1]
    graph.client.patch(f"{MAILBOX}/events/{occurrence['id']}", json={"subject": "moved"})
    changes, _, _ = full_round(graph, delta_link)
    assert [(c["type"], c["subject"]) for c in changes] == [("exception", "moved")]


def test_knob_full_occurrences_renders_them_in_full_and_repeats_them_on_a_master_change(own_graph: Graph) -> None:
    own_graph.user()
    set_knobs(own_graph, delta_occurrences="full")
    master = weekly(own_graph)
    items, delta_link, _ = full_round(own_graph, params=WINDOW)
    occurrences = [i for i in items if i["type"] == "occurrence"]
    assert len(occurrences) == 3 and all(i["subject"] == "Stand-up" and "changeKey" in i for i in occurrences)
    own_graph.client.patch(f"{MAILBOX}/events/{master['id']}", json={"subject": "Renamed"})
    changes, _, _ = full_round(own_graph, delta_link)
    assert sorted(c["type"] for c in changes) == ["occurrence"] * 3 + ["seriesMaster"]


def test_a_deleted_occurrence_gives_no_removed_by_default_but_its_master_changes(graph: Graph) -> None:
    graph.user()
    master = weekly(graph)
    items, delta_link, _ = full_round(graph, params=WINDOW)
    gone = [i for i in items if i["type"] == "occurrence"][1]
    assert graph.client.delete(f"{MAILBOX}/events/{gone['id']}").status_code == 204
    changes, _, _ = full_round(graph, delta_link)
    assert [(c["id"], c["type"]) for c in changes] == [(master["id"], "seriesMaster")]
    assert all("@removed" not in c for c in changes)
    instances = graph.client.get(f"{MAILBOX}/events/{master['id']}/instances", params=WINDOW).json()["value"]
    assert gone["id"] not in {i["id"] for i in instances} and len(instances) == 2


def test_knob_removed_gives_a_tombstone_for_a_deleted_occurrence(own_graph: Graph) -> None:
    own_graph.user()
    set_knobs(own_graph, occurrence_delete_signal="removed")
    weekly(own_graph)
    items, delta_link, _ = full_round(own_graph, params=WINDOW)
    gone = [i for i in items if i["type"] == "occurrence"][1]
    own_graph.client.delete(f"{MAILBOX}/events/{gone['id']}")
    changes, _, _ = full_round(own_graph, delta_link)
    assert {"@odata.type": "#microsoft.graph.event", "id": gone["id"], "@removed": {"reason": "deleted"}} in changes


def test_config_knobs_are_checked(graph: Graph) -> None:
    before = graph.client.get("/_emulator/config").json()
    bad = graph.client.patch("/_emulator/config", json={"delta_occurrences": "stub", "occurrence_delete_signal": "x"})
    assert bad.status_code == 400 and "occurrence_delete_signal" in bad.json()["error"]["message"]
    assert graph.client.patch("/_emulator/config", json={"nope": 1}).status_code == 400
    assert graph.client.patch("/_emulator/config", json={"honour_body_content_type": "yes"}).status_code == 400
    assert graph.client.get("/_emulator/config").json() == before  # nothing changed


# -- relative recurrences -------------------------------------------------------------------------
def _instances(graph: Graph, pattern: dict[str, Any], start_date: str, count: int,
               window: dict[str, str]) -> list[str]:
    recurrence = {"pattern": pattern, "range": {"type": "numbered", "startDate": start_date,
                                                "numberOfOccurrences": count}}
    created = graph.client.post(MAILBOX + "/events", json=event_body(
        "Relative", start=f"{start_date}T09:00:00", end=f"{start_date}T10:00:00", recurrence=recurrence))
    assert created.status_code == 201, created.text
    items = graph.client.get(f"{MAILBOX}/events/{created.json()['id']}/instances", params=window).json()["value"]
    return [i["start"]["dateTime"][:10] for i in items]


def test_relative_monthly_second_tuesday_and_last_weekday(graph: Graph) -> None:
    graph.user()
    window = {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2026-07-01T00:00:00Z"}
    second_tuesday = {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"], "index": "second"}
    assert _instances(graph, second_tuesday, "2026-01-01", 4, window) == [
        "2026-01-13", "2026-02-10", "2026-03-10", "2026-04-14"]
    last_weekday = {"type": "relativeMonthly", "interval": 2, "index": "last",
                    "daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"]}
    assert _instances(graph, last_weekday, "2026-01-01", 3, window) == ["2026-01-30", "2026-03-31", "2026-05-29"]


def test_relative_yearly_last_friday_of_march(graph: Graph) -> None:
    graph.user()
    window = {"startDateTime": "2026-01-01T00:00:00Z", "endDateTime": "2029-01-01T00:00:00Z"}
    pattern = {"type": "relativeYearly", "interval": 1, "month": 3, "daysOfWeek": ["friday"], "index": "last"}
    assert _instances(graph, pattern, "2026-01-01", 3, window) == ["2026-03-27", "2027-03-26", "2028-03-31"]
    no_month = graph.client.post(MAILBOX + "/events", json=event_body(recurrence={
        "pattern": {"type": "relativeYearly", "interval": 1, "daysOfWeek": ["friday"]},
        "range": {"type": "noEnd", "startDate": "2026-01-01"}}))
    assert no_month.status_code == 400 and "month" in no_month.json()["error"]["message"]


# -- bodies ---------------------------------------------------------------------------------------
def test_bodies_are_html_unless_the_text_prefer_is_sent(graph: Graph) -> None:
    graph.user()
    created = graph.client.post(MAILBOX + "/events", json=event_body(
        body={"contentType": "text", "content": "Line one\nR&D <team>"})).json()
    url = f"{MAILBOX}/events/{created['id']}"
    plain = graph.client.get(url).json()["body"]
    assert plain["contentType"] == "html" and "R&amp;D &lt;team&gt;" in plain["content"]
    asked = graph.client.get(url, headers=TEXT)
    assert asked.json()["body"] == {"contentType": "text", "content": "Line one\nR&D <team>"}
    assert 'outlook.body-content-type="text"' in asked.headers["Preference-Applied"]
    listed = graph.client.get(MAILBOX + "/calendarView", params=WINDOW).json()["value"]
    assert listed[0]["body"]["contentType"] == "html"
    items, _, _ = full_round(graph, params=WINDOW)
    assert items[0]["body"]["contentType"] == "html"
    items, _, _ = full_round(graph, params=WINDOW, headers=TEXT)
    assert items[0]["body"] == {"contentType": "text", "content": "Line one\nR&D <team>"}


def test_knob_ignoring_the_text_prefer_answers_html(own_graph: Graph) -> None:
    own_graph.user()
    set_knobs(own_graph, honour_body_content_type=False)
    created = own_graph.client.post(MAILBOX + "/events", json=event_body(
        body={"contentType": "text", "content": "Bring the ladder"})).json()
    answer = own_graph.client.get(f"{MAILBOX}/events/{created['id']}", headers=TEXT)
    assert answer.json()["body"]["contentType"] == "html" and "Bring the ladder" in answer.json()["body"]["content"]
    assert "body-content-type" not in answer.headers.get("Preference-Applied", "")
    items, _, _ = full_round(own_graph, params=WINDOW, headers=TEXT)
    assert items[0]["body"]["contentType"] == "html"


# -- mailbox settings and all-day items -----------------------------------------------------------
def test_mailbox_settings_time_zone_can_be_read_and_changed(graph: Graph) -> None:
    user_id = graph.user()
    url = f"/v1.0/users/{user_id}/mailboxSettings"
    assert graph.client.get(url).json()["timeZone"] == "UTC"
    changed = graph.client.patch(url, json={"timeZone": "Pacific Standard Time"})
    assert changed.status_code == 200 and changed.json()["timeZone"] == "Pacific Standard Time"
    bad = graph.client.patch(url, json={"timeZone": "Mars Standard Time"})
    assert bad.status_code == 400 and "Mars Standard Time" in bad.json()["error"]["message"]
    assert graph.client.patch(url, json={"colour": "red"}).status_code == 400
    assert graph.client.get(url).json()["timeZone"] == "Pacific Standard Time"
    assert graph.stats()["requests"]["GET /v1.0/users/{id}/mailboxSettings"] == 2


@pytest.mark.parametrize(("zone", "starts_utc", "before", "after"), [
    ("UTC", "2026-01-05T00:00:00Z", "2026-01-04T23:59:00Z", "2026-01-06T00:01:00Z"),
    ("W. Europe Standard Time", "2026-01-04T23:00:00Z", "2026-01-04T22:59:00Z", "2026-01-05T23:01:00Z"),
    ("Pacific Standard Time", "2026-01-05T08:00:00Z", "2026-01-05T07:59:00Z", "2026-01-06T08:01:00Z"),
])
def test_all_day_items_are_stored_at_local_midnight_and_read_back_as_dates(
        graph: Graph, zone: str, starts_utc: str, before: str, after: str) -> None:
    graph.user()
    created = graph.client.post(MAILBOX + "/events", json=event_body(
        "Holiday", start="2026-01-05T00:00:00", end="2026-01-06T00:00:00", zone=zone, isAllDay=True))
    assert created.status_code == 201, created.text
    utc = graph.client.get(f"{MAILBOX}/events/{created.json()['id']}", headers={"Prefer": 'outlook.timezone="UTC"'})
    assert utc.json()["start"] == {"dateTime": "2026-01-05T00:00:00.0000000", "timeZone": "UTC"}
    assert utc.json()["end"] == {"dateTime": "2026-01-06T00:00:00.0000000", "timeZone": "UTC"}

    def seen(start: str, end: str) -> bool:
        items = graph.client.get(MAILBOX + "/calendarView", params={"startDateTime": start, "endDateTime": end})
        return created.json()["id"] in {i["id"] for i in items.json()["value"]}

    # The stored instants are the zone's midnights: a minute before the start and after the end sees nothing.
    assert seen(starts_utc, after.replace(":01:", ":00:"))
    assert not seen(before.replace(":59:", ":58:"), before)
    assert not seen(after.replace(":01:", ":00:"), after)
