"""The per-mailbox lease and cursor against Azurite: one writer, nothing lost, takeover after a crash."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from connector.config import load_settings
from connector.messages import ExchangeChange
from connector.stores.cursors import NO_ROUND, CursorStore, LeaseLost, RoundLog, RoundPages
from connector.stores.queues import Sent, WorkQueues
from connector.stores.repositories import TableRepository
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, StorageClients
from devtools.local_settings import local_values


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture()
def table(storage_connection_string: str) -> TableRepository:
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    repo = TableRepository(clients.table("cur" + uuid.uuid4().hex[:12]))
    repo.ensure()
    return repo


def test_concurrent_messages_for_one_mailbox_make_one_writer_and_one_more_round(table: TableRepository) -> None:
    store = CursorStore(table)
    with ThreadPoolExecutor(8) as pool:
        leases = list(pool.map(lambda i: store.acquire("user-1", f"run-{i}"), range(8)))
    held = [lease for lease in leases if lease is not None]
    assert len(held) == 1  # the other seven set Pending and completed
    lease, again = store.finish(held[0])
    assert again  # work arrived during the round: go round once more
    lease, again = store.finish(lease)
    assert not again
    state = store.get("user-1")
    assert state is not None and state.lease_owner == "" and not state.pending


def test_a_checkpoint_keeps_pending_work_written_meanwhile(table: TableRepository) -> None:
    store = CursorStore(table)
    lease = store.acquire("user-2", "run-1", full=True)
    assert lease is not None and lease.state.full_required
    assert store.acquire("user-2", "run-2") is None  # sets Pending with its own ETag write
    lease = store.checkpoint(lease, link="next-1")  # the stale ETag conflicts, is re-read and merged
    assert lease.state.link == "next-1" and lease.state.pending
    lease = store.checkpoint(lease, link="delta-1", full_required=False)
    lease, again = store.finish(lease)
    assert again and not lease.state.full_required
    _, again = store.finish(lease)
    assert not again
    state = store.get("user-2")
    assert state is not None and state.link == "delta-1"


def test_a_crashed_runs_lease_expires_and_is_taken_over(table: TableRepository) -> None:
    clock = Clock()
    store = CursorStore(table, ttl=timedelta(minutes=5), clock=clock)
    crashed = store.acquire("user-3", "crashed")
    assert crashed is not None
    assert store.acquire("user-3", "run-2") is None
    clock.now += timedelta(minutes=6)
    taker = store.acquire("user-3", "run-3")
    assert taker is not None and taker.owner == "run-3"
    with pytest.raises(LeaseLost):
        store.checkpoint(crashed, link="stale")  # the slow run stops writing
    state = store.get("user-3")
    assert state is not None and state.link == "" and state.lease_owner == "run-3"


def test_abandon_releases_and_request_full_forces_the_next_round_full(table: TableRepository) -> None:
    store = CursorStore(table)
    lease = store.acquire("user-4", "run-1")
    assert lease is not None
    lease = store.checkpoint(lease, link="delta-0", full_required=False)
    store.abandon(lease)
    store.request_full("user-4")
    again = store.acquire("user-4", "run-2")
    assert again is not None and again.state.full_required and again.state.link == "delta-0"


def test_no_follow_up_lingers_when_the_holder_extends_its_lease_and_finishes(
        table: TableRepository, storage_connection_string: str) -> None:
    """Two messages wait on a busy mailbox, the holder checkpoints between them (its lease reaches further):
    each waiter sends a follow-up for the lease's expiry then. Once the holder finishes well, neither
    follow-up may be left in the queue (the first one, never cancelled, used to wait up to 5 minutes)."""
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    queues = WorkQueues(clients)
    queues.ensure()
    clients.queue(EXCHANGE_CHANGES_QUEUE).clear_messages()
    clock = Clock()
    store = CursorStore(table, ttl=timedelta(minutes=5), clock=clock)
    lease = store.acquire("user-5", "holder")
    assert lease is not None

    def wait(waiter: str) -> None:  # what the worker does for a message that finds the mailbox busy
        taken, again = store.acquire_or_follow_up("user-5", waiter)
        assert taken is None and again is not None
        sent = queues.send_exchange_change(ExchangeChange("user-5", reason="follow-up"), 300)
        noted, replaced = store.note_follow_up("user-5", again, f"{sent.message_id} {sent.pop_receipt}")
        assert noted
        if replaced:
            message_id, _, receipt = replaced.partition(" ")
            assert queues.cancel(Sent(EXCHANGE_CHANGES_QUEUE, message_id, receipt))

    wait("waiter-1")
    clock.now += timedelta(minutes=1)
    lease = store.checkpoint(lease, link="delta-1", full_required=False)  # the lease now ends a minute later
    wait("waiter-2")
    assert queues.depth(EXCHANGE_CHANGES_QUEUE) == 1  # only the follow-up for the current expiry
    lease, again = store.finish(lease)
    assert again  # the waiters' Pending: one more round
    lease, again = store.finish(lease)
    assert not again and lease.released_follow_up
    message_id, _, receipt = lease.released_follow_up.partition(" ")
    assert queues.cancel(Sent(EXCHANGE_CHANGES_QUEUE, message_id, receipt))
    assert queues.depth(EXCHANGE_CHANGES_QUEUE) == 0


def test_items_looked_at_leave_the_row_and_ones_named_meanwhile_stay(table: TableRepository) -> None:
    """A round's deleted items stay on the row while it reads them (a crash leaves them to the next
    holder); once read they leave it in one write, so a later failure of the round does not repeat them."""
    store = CursorStore(table)
    lease, _ = store.acquire_or_follow_up("user-6", "run-1", items=["AAMk-1", "!AAMk-2"])
    assert lease is not None and lease.items == ("AAMk-1", "!AAMk-2")
    state = store.get("user-6")
    assert state is not None and state.pending_items == ("AAMk-1", "!AAMk-2")  # still there while being read
    assert store.acquire_or_follow_up("user-6", "run-2", items=["AAMk-3"])[0] is None  # named meanwhile
    lease = store.items_done(lease)
    state = store.get("user-6")
    assert state is not None and state.pending_items == ("AAMk-3",) and lease.items == ()
    lease, again = store.finish(lease)
    assert again and lease.items == ("AAMk-3",)  # the next round reads it


def test_a_paused_round_keeps_its_place_and_its_pages_until_it_ends(table: TableRepository) -> None:
    """A run that spent its budget leaves the mailbox free with Pending set and its round's place on the
    row; the round's page rows (what its end needs) are read back by whoever goes on, and dropped when it
    ends, those of a round given up before too."""
    store, pages = CursorStore(table), RoundLog(table)
    lease = store.acquire("user-1", "run-1", full=True)
    assert lease is not None
    pages.save_page("user-1", "old", 1, ["AAMk-old"], {})  # a round given up before
    pages.save_page("user-1", "r1", 1, ["AAMk-1", "AAMk-2"], {})
    pages.save_page("user-1", "r1", 2, ["AAMk-3"], {"AAMk-9": "filtered out"})
    lease = store.checkpoint(lease, link="next-3", round_id="r1", round_full=True, round_pages=2)
    store.pause(lease)
    paused = store.get("user-1")
    assert paused is not None and paused.pending and not paused.lease_owner
    assert (paused.link, paused.round_id, paused.round_full, paused.round_pages) == ("next-3", "r1", True, 2)
    taken = store.acquire("user-1", "run-2")
    assert taken is not None and taken.state.round_id == "r1"
    found = pages.pages("user-1", "r1")
    assert found.seen == {"AAMk-1", "AAMk-2", "AAMk-3"} and found.removals == {"AAMk-9": "filtered out"}
    store.checkpoint(taken, link="delta-1", **NO_ROUND)
    pages.drop("user-1")
    assert pages.pages("user-1", "r1") == RoundPages() and pages.pages("user-1", "old") == RoundPages()
