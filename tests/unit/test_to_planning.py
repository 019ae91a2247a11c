"""Outlook → planning decisions: filters, private items, echoes of the connector's own events."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connector.model import CalendarEvent, Importance, Sensitivity, ShowAs
from connector.sync.status import BoardCopy, OutlookCopy, TrackedResource, hashes_of
from connector.sync.to_outlook import desired_event
from connector.sync.to_planning import (
    PRIVATE_SUBJECT,
    OutlookEditPolicy,
    PrivateItems,
    RemoveFromBoard,
    ResourceSettings,
    RestoreOutlook,
    Unchanged,
    UpdatePlanning,
    UpsertOnBoard,
    board_guid,
    plan_full_resync,
    plan_item,
)
from tests.unit.test_to_outlook import appointment

ALICE = TrackedResource("ALICE", "alice@x.example", "user-ALICE")
START = datetime(2026, 1, 5, 9, tzinfo=UTC)
EVENT = CalendarEvent(
    id="ev1", change_key="ck1", ical_uid="ical1", subject="Dentist", body="Bring card", start=START,
    end=START + timedelta(hours=1), show_as=ShowAs.BUSY, sensitivity=Sensitivity.NORMAL, categories=("Red",),
    location="Clinic",
)
DEFAULTS = ResourceSettings()
RESTORE = OutlookEditPolicy.RESTORE_OUTLOOK


def decide(event: CalendarEvent, settings: ResourceSettings = DEFAULTS, board: BoardCopy | None = None,
           own: OutlookCopy | None = None, policy: OutlookEditPolicy = RESTORE) -> object:
    return plan_item(event, ALICE, settings, board, own, policy)


def test_new_outlook_item_goes_to_the_board_with_a_stable_guid() -> None:
    action = decide(EVENT)
    assert isinstance(action, UpsertOnBoard)
    assert action.appointment_guid == board_guid("user-ALICE", "ev1") == board_guid("user-ALICE", "ev1")
    assert action.item["Subject"] == "Dentist" and action.item["ShowAs"] == 3 and action.item["Sensitivity"] == 1
    assert action.item["Start"] == START


def test_private_items_are_masked_by_default_and_follow_the_setting() -> None:
    private = replace(EVENT, sensitivity=Sensitivity.PRIVATE)
    masked = decide(private)
    assert isinstance(masked, UpsertOnBoard)
    assert (masked.item["Subject"], masked.item["Body"], masked.item["Location"], masked.item["Categories"]) == (
        PRIVATE_SUBJECT, "", "", [])
    shown = decide(private, replace(DEFAULTS, private_items=PrivateItems.SHOWN))
    assert isinstance(shown, UpsertOnBoard) and shown.item["Subject"] == "Dentist"
    assert isinstance(decide(private, replace(DEFAULTS, private_items=PrivateItems.HIDDEN)), Unchanged)


def test_setting_change_updates_or_removes_what_is_already_on_the_board() -> None:
    private = replace(EVENT, sensitivity=Sensitivity.CONFIDENTIAL)
    first = decide(private)
    assert isinstance(first, UpsertOnBoard)
    copy = BoardCopy("user-ALICE", "ev1", first.appointment_guid, first.content_hash, "ck1")
    assert isinstance(decide(private, board=copy), Unchanged)
    shown = decide(private, replace(DEFAULTS, private_items=PrivateItems.SHOWN), board=copy)
    assert isinstance(shown, UpsertOnBoard) and shown.item["Subject"] == "Dentist"
    hidden = decide(private, replace(DEFAULTS, private_items=PrivateItems.HIDDEN), board=copy)
    assert isinstance(hidden, RemoveFromBoard) and hidden.reason == "private items are hidden"


@pytest.mark.parametrize(
    ("change", "settings"),
    [
        ({"show_as": ShowAs.FREE}, DEFAULTS),
        ({"sensitivity": Sensitivity.PERSONAL}, replace(DEFAULTS, sensitivity=frozenset({Sensitivity.NORMAL}))),
        ({"is_cancelled": True}, DEFAULTS),
        ({}, replace(DEFAULTS, sync_to_planning=False)),
    ],
)
def test_filtered_items_do_not_flow(change: dict[str, object], settings: ResourceSettings) -> None:
    assert isinstance(decide(replace(EVENT, **change), settings), Unchanged)  # type: ignore[arg-type]


def test_edit_to_a_field_the_board_shows_updates_and_a_touch_does_not() -> None:
    first = decide(EVENT)
    assert isinstance(first, UpsertOnBoard)
    copy = BoardCopy("user-ALICE", "ev1", first.appointment_guid, first.content_hash, "ck1")
    assert isinstance(decide(replace(EVENT, change_key="ck2"), board=copy), Unchanged)
    moved = decide(replace(EVENT, change_key="ck3", start=START + timedelta(hours=1), end=START + timedelta(hours=2)),
                   board=copy)
    assert isinstance(moved, UpsertOnBoard) and moved.appointment_guid == copy.appointment_guid
    removed = decide(CalendarEvent(id="ev1", removed=True), board=copy)
    assert isinstance(removed, RemoveFromBoard)


def own_copy() -> tuple[CalendarEvent, OutlookCopy]:
    body = desired_event(appointment(), "UTC")
    copy = OutlookCopy("a1", "ALICE", "user-ALICE", "dsx-a1-ALICE-n", "ev9", hashes_of(body), "ck1")
    event = CalendarEvent(id="ev9", change_key="ck1", subject=body["subject"], body=body["body"]["content"] + "\r\n",
                          start=START, end=START + timedelta(hours=2), show_as=ShowAs.BUSY,
                          importance=Importance.HIGH, categories=("Maintenance",), transaction_id="dsx-a1-ALICE-n")
    return event, copy


def test_the_connectors_own_events_are_echoes_not_new_items() -> None:
    event, copy = own_copy()
    assert isinstance(decide(event, own=copy), Unchanged)
    # A new changeKey with the same content (Exchange touched it) is still nothing.
    assert isinstance(decide(replace(event, change_key="ck2"), own=copy), Unchanged)
    # Mapping lost but transactionId says it is ours: never imported as an Outlook item.
    assert isinstance(decide(event), Unchanged)


def test_outlook_edit_of_a_planner_event_follows_the_policy() -> None:
    event, copy = own_copy()
    moved = replace(event, change_key="ck2", start=START + timedelta(days=1), end=START + timedelta(days=1, hours=2))
    assert isinstance(decide(moved, own=copy), RestoreOutlook)
    assert isinstance(decide(moved, own=copy, policy=OutlookEditPolicy.UPDATE_PLANNING), UpdatePlanning)
    assert isinstance(decide(moved, own=copy, policy=OutlookEditPolicy.IGNORE), Unchanged)
    deleted = CalendarEvent(id="ev9", removed=True)
    restored = decide(deleted, own=copy)
    assert isinstance(restored, RestoreOutlook) and restored.deleted


def test_full_resync_removes_board_items_gone_from_outlook() -> None:
    copies = [BoardCopy("u", "ev1", "g1", "h"), BoardCopy("u", "ev2", "g2", "h")]
    [removal] = plan_full_resync({"ev1"}, copies)
    assert removal.copy.event_id == "ev2"


def _copy_of(action: object) -> BoardCopy:
    assert isinstance(action, UpsertOnBoard)
    return BoardCopy("user-ALICE", "ev1", action.appointment_guid, action.content_hash, "ck1", filled=action.filled)


def test_a_field_emptied_replaces_the_board_item_and_a_plain_edit_does_not() -> None:
    """Dime.Scheduler may take a blank as "not given" (`blank_parameter=keeps`): an emptied Subject, Body or
    category list cannot be cleared by an upsert, so the item is deleted and imported again (`replace`)."""
    first = decide(EVENT)
    assert isinstance(first, UpsertOnBoard) and not first.replace and first.widened is None
    assert first.filled == {"Subject", "Body", "Categories"}
    copy = _copy_of(first)
    moved = decide(replace(EVENT, start=START + timedelta(hours=2), end=START + timedelta(hours=3)), board=copy)
    assert isinstance(moved, UpsertOnBoard) and not moved.replace and moved.widened is None
    for change in ({"categories": ()}, {"body": ""}, {"subject": ""}):
        emptied = decide(replace(EVENT, **change), board=copy)  # type: ignore[arg-type]
        assert isinstance(emptied, UpsertOnBoard) and emptied.replace, change
    masked = decide(replace(EVENT, sensitivity=Sensitivity.PRIVATE), board=copy)
    assert isinstance(masked, UpsertOnBoard) and masked.replace and masked.filled == {"Subject"}
    # Cleared once, an item without categories is a plain upsert from then on.
    bare = decide(replace(EVENT, categories=()), board=copy)
    assert isinstance(bare, UpsertOnBoard)
    retitled = decide(replace(EVENT, categories=(), subject="Dentist (late)"), board=_copy_of(bare))
    assert isinstance(retitled, UpsertOnBoard) and not retitled.replace


def test_a_field_filled_widens_the_copy_before_the_import_and_an_old_copy_is_taken_as_filled() -> None:
    bare = decide(replace(EVENT, categories=()))
    copy = _copy_of(bare)
    filled = decide(EVENT, board=copy)
    assert isinstance(filled, UpsertOnBoard) and not filled.replace
    # Saved before the import: its answer may be lost after it took effect, and the copy must still know.
    assert filled.widened == replace(copy, filled=frozenset({"Subject", "Body", "Categories"}))
    assert filled.widened.content_hash == copy.content_hash
    legacy = replace(copy, filled=None)  # saved before the fields were kept: any may hold a value
    assert isinstance(again := decide(replace(EVENT, categories=(), subject="x"), board=legacy), UpsertOnBoard)
    assert again.replace and again.widened is None
