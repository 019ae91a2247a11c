"""Pure parts of the real-world semantics: occurrence stubs completed from their master, HTML bodies
made readable, and all-day items interpreted in the mailbox's time zone (both directions)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connector.model import CalendarEvent, Sensitivity, ShowAs, html_to_text
from connector.sync.rules import RuleSet
from connector.sync.series import complete_occurrence, is_stub
from connector.sync.status import OutlookCopy, TrackedResource, hashes_of
from connector.sync.timezones import mailbox_zone, zone_of
from connector.sync.to_outlook import CreateEvent, desired_event, plan
from connector.sync.to_planning import (
    OutlookEditPolicy,
    ResourceSettings,
    Unchanged,
    UpsertOnBoard,
    plan_item,
)
from tests.unit.test_to_outlook import appointment

MASTER = {
    "@odata.etag": 'W/"m1"', "id": "master-1", "type": "seriesMaster", "subject": "Stand-up", "showAs": "busy",
    "sensitivity": "private", "body": {"contentType": "text", "content": "Daily sync"}, "changeKey": "m1",
    "iCalUId": "ical-master", "isAllDay": False, "recurrence": {"pattern": {"type": "weekly"}},
    "transactionId": "tx", "start": {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-01-05T09:15:00.0000000", "timeZone": "UTC"},
}
STUB = {
    "@odata.type": "#microsoft.graph.event", "@odata.etag": 'W/"m1"', "id": "occ-2", "type": "occurrence",
    "seriesMasterId": "master-1", "start": {"dateTime": "2026-01-12T09:00:00.0000000", "timeZone": "UTC"},
    "end": {"dateTime": "2026-01-12T09:15:00.0000000", "timeZone": "UTC"},
}


# -- occurrence stubs ---------------------------------------------------------------------------
def test_a_stub_is_completed_from_its_master_at_its_own_id_and_times() -> None:
    assert is_stub(STUB) and not is_stub(MASTER)
    assert not is_stub({**STUB, "subject": "full"}) and not is_stub({"id": "occ-2", "type": "occurrence",
                                                                        "@removed": {"reason": "deleted"}})
    full = complete_occurrence(STUB, MASTER)
    event = CalendarEvent.from_graph(full)
    assert (event.id, event.type, event.series_master_id) == ("occ-2", "occurrence", "master-1")
    assert event.subject == "Stand-up" and event.show_as is ShowAs.BUSY and event.sensitivity is Sensitivity.PRIVATE
    assert event.start == datetime(2026, 1, 12, 9, tzinfo=UTC) and event.body == "Daily sync"
    assert "recurrence" not in full and "transactionId" not in full and "iCalUId" not in full


# -- HTML bodies --------------------------------------------------------------------------------
@pytest.mark.parametrize(("html", "text"), [
    ("<html><head><meta charset='utf-8'><style>p {margin:0}</style><title>x</title></head>"
     "<body><p>Bring the&nbsp;ladder</p><div>R&amp;D &lt;team&gt;<br>Room 4</div></body></html>",
     "Bring the ladder\nR&D <team>\nRoom 4"),
    ("<div class=PlainText>Line one<br/>\r\nLine two</div><script>alert('x')</script>", "Line one\nLine two"),
    ("<ul><li>one</li><li>two &#8364;</li></ul>", "one\ntwo €"),
    ("no markup at all", "no markup at all"),
])
def test_html_bodies_become_readable_text(html: str, text: str) -> None:
    assert html_to_text(html) == text


def test_an_html_body_reaches_the_board_as_text() -> None:
    raw = {**MASTER, "type": "singleInstance", "sensitivity": "normal",
           "body": {"contentType": "html", "content": "<html><body><p>Call&nbsp;first</p><p>Gate 2</p></body></html>"}}
    action = plan_item(CalendarEvent.from_graph(raw), TrackedResource("A", "a@x", "u"), ResourceSettings(), None,
                       None, OutlookEditPolicy.RESTORE_OUTLOOK)
    assert isinstance(action, UpsertOnBoard) and action.item["Body"] == "Call first\nGate 2"


# -- time zones ---------------------------------------------------------------------------------
def test_windows_and_iana_zone_names() -> None:
    assert zone_of("W. Europe Standard Time") is not None and zone_of("Pacific Standard Time") is not None
    assert zone_of("Europe/Brussels") is not None and zone_of("UTC") is UTC
    assert zone_of("Mars Standard Time") is None and zone_of("") is None
    assert mailbox_zone("Mars Standard Time") is UTC


ALL_DAY = CalendarEvent(id="hol", change_key="c1", subject="Holiday", all_day=True, show_as=ShowAs.OOF,
                        start=datetime(2026, 12, 3, tzinfo=UTC), end=datetime(2026, 12, 4, tzinfo=UTC))


@pytest.mark.parametrize(("zone", "start", "end"), [
    ("UTC", datetime(2026, 12, 3, tzinfo=UTC), datetime(2026, 12, 4, tzinfo=UTC)),
    ("Romance Standard Time", datetime(2026, 12, 2, 23, tzinfo=UTC), datetime(2026, 12, 3, 23, tzinfo=UTC)),
    ("Pacific Standard Time", datetime(2026, 12, 3, 8, tzinfo=UTC), datetime(2026, 12, 4, 8, tzinfo=UTC)),
])
def test_an_all_day_outlook_item_covers_the_mailboxs_local_day_on_the_board(
        zone: str, start: datetime, end: datetime) -> None:
    resource = TrackedResource("A", "a@x", "u", zone)
    action = plan_item(ALL_DAY, resource, ResourceSettings(), None, None, OutlookEditPolicy.RESTORE_OUTLOOK)
    assert isinstance(action, UpsertOnBoard)
    assert (action.item["Start"], action.item["End"], action.item["IsAllDayEvent"]) == (start, end, True)


@pytest.mark.parametrize("zone", ["UTC", "W. Europe Standard Time", "Pacific Standard Time"])
def test_a_planners_all_day_appointment_is_written_in_the_mailboxs_zone_and_its_echo_changes_nothing(
        zone: str) -> None:
    planned = appointment(all_day=True, start=datetime(2026, 12, 3, tzinfo=UTC),
                          end=datetime(2026, 12, 5, tzinfo=UTC))
    resource = TrackedResource("ALICE", "alice@x.example", "user-ALICE", zone)
    actions = plan(planned, {"ALICE": resource}, {}, RuleSet(), "n")
    assert len(actions) == 1 and isinstance(actions[0], CreateEvent)
    body = actions[0].payload
    assert body["start"] == {"dateTime": "2026-12-03T00:00:00.0000000", "timeZone": zone}
    assert body["end"] == {"dateTime": "2026-12-05T00:00:00.0000000", "timeZone": zone}
    # Graph reads it back as midnight-to-midnight dates in UTC: the connector recognises its own write.
    copy = OutlookCopy(planned.guid, "ALICE", "user-ALICE", "dsx-1", "ev", hashes_of(desired_event(planned, zone)), "c0")
    read_back = CalendarEvent(id="ev", change_key="c9", subject=planned.subject, body=planned.body, all_day=True,
                              start=datetime(2026, 12, 3, tzinfo=UTC), end=datetime(2026, 12, 5, tzinfo=UTC),
                              importance=planned.importance,
                              categories=(planned.category,) if planned.category else ())
    decision = plan_item(read_back, resource, ResourceSettings(), None, copy, OutlookEditPolicy.RESTORE_OUTLOOK)
    assert isinstance(decision, Unchanged) and "unchanged" in decision.reason


def test_each_assigned_mailbox_gets_the_all_day_event_in_its_own_zone() -> None:
    planned = appointment(all_day=True, start=datetime(2026, 12, 3, tzinfo=UTC),
                          end=datetime(2026, 12, 3, tzinfo=UTC) + timedelta(hours=5), resources=("ALICE", "BOB"))
    tracked = {"ALICE": TrackedResource("ALICE", "a@x", "ua", "Romance Standard Time"),
               "BOB": TrackedResource("BOB", "b@x", "ub", "Pacific Standard Time")}
    zones = {a.resource.resource_no: (a.payload["start"]["timeZone"], a.payload["end"]["dateTime"][:10])
             for a in plan(planned, tracked, {}, RuleSet(), "n") if isinstance(a, CreateEvent)}
    assert zones == {"ALICE": ("Romance Standard Time", "2026-12-04"), "BOB": ("Pacific Standard Time", "2026-12-04")}
