"""The per-mailbox lease decisions (pure): take, finish, abandon, pause."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from connector.stores.cursors import (
    MAX_PENDING_ITEMS,
    CursorState,
    LeaseLost,
    abandon_state,
    finish_state,
    merge_items,
    pause_state,
    take,
)

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TTL = timedelta(minutes=5)


def test_a_free_mailbox_is_taken() -> None:
    state, taken = take(CursorState(full_required=False, link="d1"), "run-1", NOW, TTL, full=False)
    assert taken and state.lease_owner == "run-1" and state.lease_until == NOW + TTL
    assert state.link == "d1" and not state.full_required


def test_a_busy_mailbox_records_pending_work_instead() -> None:
    held, _ = take(CursorState(full_required=False), "run-1", NOW, TTL, full=False)
    state, taken = take(held, "run-2", NOW + timedelta(seconds=30), TTL, full=False)
    assert not taken and state.pending and not state.pending_full and state.lease_owner == "run-1"
    state, taken = take(state, "run-3", NOW + timedelta(seconds=31), TTL, full=True)
    assert not taken and state.pending and state.pending_full  # a full request is never downgraded


def test_an_expired_lease_is_taken_over() -> None:
    held, _ = take(CursorState(full_required=False), "crashed", NOW, TTL, full=False)
    state, taken = take(held, "run-2", NOW + TTL + timedelta(seconds=1), TTL, full=False)
    assert taken and state.lease_owner == "run-2"


def test_pending_work_at_the_end_of_a_round_means_one_more_round() -> None:
    held, _ = take(CursorState(full_required=False), "run-1", NOW, TTL, full=False)
    busy, _ = take(held, "run-2", NOW, TTL, full=True)
    state, again = finish_state(busy, "run-1", NOW + timedelta(seconds=5), TTL)
    assert again and state.lease_owner == "run-1" and not state.pending and state.full_required
    state, again = finish_state(state, "run-1", NOW + timedelta(seconds=9), TTL)
    assert not again and state.lease_owner == "" and state.lease_until is None


def test_finishing_a_lease_someone_else_took_over_is_refused() -> None:
    held, _ = take(CursorState(), "run-2", NOW, TTL, full=False)
    with pytest.raises(LeaseLost):
        finish_state(held, "run-1", NOW, TTL)


def test_abandoning_releases_the_lease_but_keeps_pending_work() -> None:
    held, _ = take(CursorState(full_required=False), "run-1", NOW, TTL, full=False)
    busy, _ = take(held, "run-2", NOW, TTL, full=False)
    state = abandon_state(busy, "run-1")
    assert state.lease_owner == "" and state.pending
    assert abandon_state(busy, "someone-else") == busy


def test_the_row_round_trips() -> None:
    state = CursorState(link="https://g/delta?$deltatoken=x", full_required=False, settings_hash="h",
                        lease_owner="o", lease_until=NOW, pending=True, pending_full=True, last_round_at=NOW,
                        last_full_at=NOW - timedelta(days=1), pending_items=("AAMk-1", "!AAMk-2"), round_id="r1",
                        round_full=True, round_pages=4, round_window="2026-01-01T00:00:00+00:00|2026-02-01T00:00:00+00:00",
                        round_hash="h")
    assert CursorState.from_row(state.to_row()) == state
    assert CursorState.from_row({}) == CursorState()


def test_items_named_while_the_mailbox_is_busy_wait_on_the_row_for_the_next_round() -> None:
    """A deleted notification's event id must not be lost when its message finds the mailbox busy:
    it waits on the row, and stays there until a round that looked at it finishes: a round that fails,
    or whose process dies, leaves it to the next holder."""
    held, _ = take(CursorState(full_required=False), "run-1", NOW, TTL, full=False)
    busy, taken = take(held, "run-2", NOW, TTL, full=False, items=["AAMk-1"])
    busy, _ = take(busy, "run-3", NOW, TTL, full=False, items=["AAMk-2", "AAMk-1"])
    assert not taken and busy.pending and busy.pending_items == ("AAMk-1", "AAMk-2")
    state, again = finish_state(busy, "run-1", NOW + timedelta(seconds=2), TTL)  # run-1 looked at none of them
    assert again and state.pending_items == ("AAMk-1", "AAMk-2")  # its next round does
    # That round's process dies: its lease expires with the items still on the row; the next taker has them.
    taken_over, taken = take(state, "run-4", NOW + TTL + timedelta(seconds=3), TTL, full=False)
    assert taken and taken_over.pending_items == ("AAMk-1", "AAMk-2")
    assert abandon_state(taken_over, "run-4").pending_items == ("AAMk-1", "AAMk-2")  # a failed round: kept
    # A round that looked at them and finishes clears them; one named meanwhile stays for one more round.
    meanwhile, _ = take(taken_over, "run-5", NOW + TTL + timedelta(seconds=4), TTL, full=False, items=["AAMk-3"])
    state, again = finish_state(meanwhile, "run-4", NOW + TTL + timedelta(seconds=5), TTL, done=("AAMk-1", "AAMk-2"))
    assert again and state.pending_items == ("AAMk-3",)
    state, again = finish_state(state, "run-4", NOW + TTL + timedelta(seconds=6), TTL, done=("AAMk-3",))
    assert not again and state.pending_items == () and state.lease_owner == ""
    assert len(merge_items([f"e{i}" for i in range(80)])) == MAX_PENDING_ITEMS


def test_a_run_that_spent_its_budget_leaves_the_mailbox_free_with_its_round_to_go_on() -> None:
    """A paused run releases the lease with Pending set (whichever message comes next goes on from the
    stored link), drops the items it looked at, keeps its round's place; a run that lost the lease writes
    nothing."""
    held, _ = take(CursorState(full_required=False, link="next-4", round_id="r1", round_pages=4), "run-1", NOW, TTL,
                   full=False, items=["AAMk-1"])
    held = replace(held, pending_items=("AAMk-1", "AAMk-2"))
    paused = pause_state(held, "run-1", done=["AAMk-1"])
    assert (paused.lease_owner, paused.lease_until, paused.pending, paused.pending_items) == ("", None, True, ("AAMk-2",))
    assert (paused.link, paused.round_id, paused.round_pages) == ("next-4", "r1", 4)
    with pytest.raises(LeaseLost):
        pause_state(held, "run-2")
