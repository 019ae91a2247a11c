"""Planning → Outlook decisions: desired state, minimal writes, idempotence under any sequence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from connector.model import Appointment, Assignment, Importance
from connector.sync.rules import RuleSet, parse_rules
from connector.sync.status import (
    TAG_PROPERTY_ID,
    TRANSACTION_PREFIX,
    OutlookCopy,
    TrackedResource,
    stamp_property,
    written_stamp,
)
from connector.sync.to_outlook import CreateEvent, DeleteEvent, UpdateEvent, desired_event, plan

TRACKED = {no: TrackedResource(no, f"{no.lower()}@x.example", f"user-{no}") for no in ("ALICE", "BOB", "CAROL")}
START = datetime(2026, 1, 5, 9, tzinfo=UTC)


def appointment(resources: tuple[str, ...] = ("ALICE",), **changes: Any) -> Appointment:
    base = Appointment(
        guid="a1", subject="Boiler", body="Main St 12", start=START, end=START + timedelta(hours=2), all_day=False,
        importance=Importance.HIGH, category="Maintenance", time_marker=None, job_no="J1", task_no="T1",
        source_app="CRM", source_type="SVC", assignments=tuple(Assignment(r) for r in resources), last_modified=None,
        created_by_exchange=False,
    )
    return replace(base, **changes)


class FakeOutlook:
    """Applies actions the way the worker does, and remembers the copies (the mapping table)."""

    def __init__(self) -> None:
        self.calendars: dict[str, dict[str, dict[str, Any]]] = {}
        self.copies: dict[str, OutlookCopy] = {}
        self.writes = 0
        self._next = 0

    def apply(self, actions: list[Any]) -> None:
        for action in actions:
            self.writes += 1
            if isinstance(action, DeleteEvent):
                self.calendars.get(action.copy.user_id, {}).pop(action.copy.event_id or "", None)
                if self.copies.get(action.copy.resource_no) == action.copy:
                    del self.copies[action.copy.resource_no]
            elif isinstance(action, CreateEvent):
                self._next += 1
                event_id = f"e{self._next}"
                self.calendars.setdefault(action.resource.user_id, {})[event_id] = dict(action.payload)
                self.copies[action.resource.resource_no] = OutlookCopy(
                    "a1", action.resource.resource_no, action.resource.user_id, action.transaction_id, event_id,
                    action.field_hashes)
            elif isinstance(action, UpdateEvent):
                assert action.copy.event_id is not None
                self.calendars[action.copy.user_id][action.copy.event_id].update(action.changes)
                self.copies[action.resource.resource_no] = replace(action.copy, field_hashes=action.field_hashes)

    def sync(self, appt: Appointment | None, rules: RuleSet | None = None) -> list[Any]:
        actions = plan(appt, TRACKED, dict(self.copies), rules or RuleSet(), nonce=str(self.writes))
        self.apply(actions)
        return actions


def test_create_carries_fields_tag_and_recognisable_transaction_id() -> None:
    [action] = plan(appointment(), TRACKED, {}, RuleSet(), nonce="n1")
    assert isinstance(action, CreateEvent) and action.resource.resource_no == "ALICE"
    payload = action.payload
    assert payload["subject"] == "Boiler" and payload["showAs"] == "busy" and payload["importance"] == "high"
    assert payload["start"] == {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": "UTC"}
    assert payload["categories"] == ["Maintenance"]
    assert payload["singleValueExtendedProperties"] == [{"id": TAG_PROPERTY_ID, "value": "a1"},
                                                        stamp_property(action.field_hashes)]
    assert written_stamp(payload) == action.field_hashes  # the event itself says what the connector wrote
    assert payload["transactionId"].startswith(TRANSACTION_PREFIX) and payload["transactionId"] == action.transaction_id


def test_replay_writes_nothing_and_move_patches_only_times() -> None:
    outlook = FakeOutlook()
    outlook.sync(appointment())
    assert outlook.sync(appointment()) == []
    [update] = outlook.sync(appointment(start=START + timedelta(days=1), end=START + timedelta(days=1, hours=2)))
    assert isinstance(update, UpdateEvent) and set(update.changes) == {"start", "end", "isAllDay"}
    assert update.changes["isAllDay"] is False


def test_a_move_carries_the_all_day_flag_whatever_the_copy_remembers() -> None:
    """The event may be all-day although the copy says timed (a write of an all-day version committed but its
    answer was lost): a PATCH of new times alone would be refused by Graph (all-day events stay at midnight)."""
    outlook = FakeOutlook()
    outlook.sync(appointment())
    [update] = outlook.sync(appointment(start=START + timedelta(hours=1), end=START + timedelta(hours=3)))
    assert isinstance(update, UpdateEvent)
    assert update.changes["isAllDay"] is False and {"start", "end"} <= set(update.changes)
    [retitle] = outlook.sync(appointment(subject="Boiler, second visit", start=START + timedelta(hours=1),
                                         end=START + timedelta(hours=3)))
    assert isinstance(retitle, UpdateEvent) and set(retitle.changes) == {"subject"}


def test_reassignment_moves_the_event_and_unassign_deletes() -> None:
    outlook = FakeOutlook()
    outlook.sync(appointment(("ALICE",)))
    actions = outlook.sync(appointment(("BOB",)))
    assert {type(a).__name__ for a in actions} == {"CreateEvent", "DeleteEvent"}
    assert outlook.calendars["user-ALICE"] == {} and len(outlook.calendars["user-BOB"]) == 1
    outlook.sync(appointment(()))
    assert outlook.calendars["user-BOB"] == {} and outlook.copies == {}


def test_untracked_resources_get_nothing_and_exchange_items_never_bounce_back() -> None:
    assert plan(appointment(("DAVE",)), TRACKED, {}, RuleSet(), "n") == []
    assert plan(appointment(created_by_exchange=True), TRACKED, {}, RuleSet(), "n") == []


def test_rule_exclusion_removes_what_was_written_before() -> None:
    outlook = FakeOutlook()
    outlook.sync(appointment())
    [delete] = outlook.sync(appointment(), rules=parse_rules("exclude category = Maintenance"))
    assert isinstance(delete, DeleteEvent) and delete.reason == "excluded by PLANNING_RULES"


def test_pending_create_reuses_its_transaction_id() -> None:
    pending = OutlookCopy("a1", "ALICE", "user-ALICE", "dsx-a1-ALICE-first")
    [action] = plan(appointment(), TRACKED, {"ALICE": pending}, RuleSet(), nonce="second")
    assert isinstance(action, CreateEvent) and action.transaction_id == "dsx-a1-ALICE-first"


def test_switched_off_direction_writes_nothing() -> None:
    assert plan(appointment(), TRACKED, {}, RuleSet(), "n", direction_enabled=False) == []


def test_all_day_appointments_stay_all_day_on_midnight_bounds() -> None:
    body = desired_event(appointment(all_day=True, start=datetime(2026, 1, 5, tzinfo=UTC),
                                     end=datetime(2026, 1, 5, 23, 59, tzinfo=UTC)), "UTC")
    assert body["isAllDay"] is True
    assert body["start"]["dateTime"] == "2026-01-05T00:00:00.0000000"
    assert body["end"]["dateTime"] == "2026-01-06T00:00:00.0000000"


states = st.one_of(
    st.none(),
    st.builds(
        lambda resources, hours, subject, all_day: appointment(
            tuple(resources), subject=subject, all_day=all_day, end=START + timedelta(hours=hours)),
        st.lists(st.sampled_from(["ALICE", "BOB", "CAROL", "DAVE"]), max_size=4, unique=True),
        st.integers(min_value=1, max_value=30), st.sampled_from(["Boiler", "Pump"]), st.booleans(),
    ),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(states, min_size=1, max_size=8))
def test_any_sequence_converges_and_replays_are_free(sequence: list[Appointment | None]) -> None:
    outlook = FakeOutlook()
    for state in sequence:
        outlook.sync(state)
        # Idempotent: the same state again writes nothing.
        assert outlook.sync(state) == []
    final = sequence[-1]
    expected = set() if final is None else {f"user-{r}" for r in final.resource_nos if r in TRACKED}
    holders = {user for user, events in outlook.calendars.items() if events}
    assert holders == expected
    for user in expected:
        [event] = outlook.calendars[user].values()
        assert final is not None
        for name, value in desired_event(final, "UTC").items():
            assert event[name] == value
