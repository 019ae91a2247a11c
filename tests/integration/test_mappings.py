"""The mappings table against Azurite: both look-up directions are point reads and stay consistent."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from connector.config import load_settings
from connector.stores.mappings import MappingStore
from connector.stores.repositories import TableRepository, safe_key
from connector.stores.storage import StorageClients
from connector.sync.status import BoardCopy, OutlookCopy
from devtools.local_settings import local_values


@pytest.fixture()
def window(storage_connection_string: str) -> TableRepository:
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    table = TableRepository(clients.table("w" + uuid.uuid4().hex[:12]))
    table.ensure()
    return table


@pytest.fixture()
def store(storage_connection_string: str, window: TableRepository) -> MappingStore:
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    table = TableRepository(clients.table("m" + uuid.uuid4().hex[:12]))
    table.ensure()
    return MappingStore(table, window)


def test_outlook_copy_round_trip_and_reverse_lookup(store: MappingStore) -> None:
    pending = OutlookCopy("a1b2", "ALICE/01", "user-1", "dsx-a1b2-ALICE-n")
    store.save_outlook_copy(pending)
    assert store.outlook_copies("A1B2") == {"ALICE/01": pending}  # GUIDs are case-insensitive
    done = OutlookCopy("a1b2", "ALICE/01", "user-1", "dsx-a1b2-ALICE-n", "AAk/ev+1==", {"subject": "h1"}, "ck1")
    store.save_outlook_copy(done)
    assert store.by_event("user-1", "AAk/ev+1==") == done
    assert store.by_event("user-2", "AAk/ev+1==") is None
    assert list(store.all_outlook_copies()) == [done]
    store.delete_outlook_copy(done)
    assert store.outlook_copies("a1b2") == {} and store.by_event("user-1", "AAk/ev+1==") is None


def test_stale_index_row_is_not_trusted(store: MappingStore) -> None:
    first = OutlookCopy("g", "BOB", "user-1", "t", "ev-old", {}, "ck")
    store.save_outlook_copy(first)
    store.save_outlook_copy(OutlookCopy("g", "BOB", "user-1", "t2", "ev-new", {}, "ck2"))
    assert store.by_event("user-1", "ev-old") is None
    assert isinstance(store.by_event("user-1", "ev-new"), OutlookCopy)


def test_board_copies_mark_their_appointment_as_outlook_item(store: MappingStore) -> None:
    copy = BoardCopy("user-1", "ev-7", "guid-7", "hash", "ck")
    store.save_board_copy(copy)
    assert store.by_event("user-1", "ev-7") == copy
    assert store.is_outlook_item("GUID-7") and not store.is_outlook_item("guid-8")
    assert store.board_copies("user-1") == [copy]
    assert store.outlook_copies("guid-7") == {}
    store.delete_board_copy(copy)
    assert store.board_copies("user-1") == [] and not store.is_outlook_item("guid-7")


def test_a_board_copy_keeps_which_fields_the_board_item_may_hold(store: MappingStore) -> None:
    """`BoardCopy.filled` (what a blank may not clear on the board) round-trips, the empty set included; a row
    saved before it was kept reads as None (any field may hold a value)."""
    for filled in (frozenset({"Subject", "Categories"}), frozenset()):
        copy = BoardCopy("user-1", "ev-f", "guid-f", "hash", "ck", filled=filled)
        store.save_board_copy(copy)
        assert store.by_event("user-1", "ev-f") == copy
    store.save_board_copy(BoardCopy("user-1", "ev-f", "guid-f", "hash", "ck"))
    found = store.by_event("user-1", "ev-f")
    assert isinstance(found, BoardCopy) and found.filled is None


def test_one_partition_read_gives_an_appointments_copies_mark_and_id(store: MappingStore) -> None:
    copy = OutlookCopy("guid-9", "ALICE", "user-1", "t", "ev-9", {"subject": "h"}, "ck")
    store.save_outlook_copy(copy)
    store.remember_appointment_id("GUID-9", "4711")
    status = store.appointment_status("Guid-9")
    assert (status.copies, status.outlook_item, status.appointment_id) == ({"ALICE": copy}, False, "4711")
    store.mark_outlook_item("guid-9", "user-1", "ev-x")
    assert store.appointment_status("guid-9").outlook_item
    empty = store.appointment_status("guid-10")
    assert (empty.copies, empty.outlook_item, empty.appointment_id) == ({}, False, None)


def test_safe_key_encodes_forbidden_characters() -> None:
    assert safe_key("a/b#c?d\\e\n") == "a%2Fb%23c%3Fd%5Ce%0A"


def test_a_copy_is_written_by_another_worker_only_if_it_still_holds_what_that_worker_read(store: MappingStore) -> None:
    """The Outlook → planning worker records a changeKey or a person's edit in a copy the planning →
    Outlook worker owns: a copy the owner rewrote meanwhile (a planner's newer version) is left alone,
    where a blind upsert used to put the older content back (and the next change was diffed against it)."""
    read = OutlookCopy("g7", "ALICE", "user-1", "t", "ev-1", {"subject": "h1"}, "ck1")
    store.save_outlook_copy(read)
    owners = OutlookCopy("g7", "ALICE", "user-1", "t", "ev-1", {"subject": "h2"}, "ck2")
    store.save_outlook_copy(owners)  # the planning worker wrote the planner's new title meanwhile
    assert not store.save_outlook_copy_if(read, OutlookCopy("g7", "ALICE", "user-1", "t", "ev-1", {"subject": "h1"}, "ck3"))
    assert store.by_event("user-1", "ev-1") == owners
    followed = OutlookCopy("g7", "ALICE", "user-1", "t", "ev-1", {"subject": "h2"}, "ck4")
    assert store.save_outlook_copy_if(owners, followed)  # still as read: written
    assert store.by_event("user-1", "ev-1") == followed


def test_a_mailboxs_live_copies_come_from_its_index_with_history_left_out(store: MappingStore) -> None:
    """The poll's read: one query per mailbox returns the copies whose events end on or after a moment,
    each as written (hashes, changeKey, span), then the pending copies (span unknown: always in it); past
    events and other mailboxes are not in it."""
    live = OutlookCopy("g1", "ALICE", "user-1", "t1", "AAk/ev+1==", {"subject": "h1"}, "ck1",
                       "2026-03-10T09:00:00", "2026-03-10T10:00:00")
    past = replace(live, appointment_guid="g2", event_id="ev-2", starts_at="2025-01-10T09:00:00",
                   ends_at="2025-01-10T10:00:00")
    elsewhere = replace(live, appointment_guid="g3", user_id="user-2", event_id="ev-3")
    pending = OutlookCopy("g4", "ALICE", "user-1", "t4")
    for copy in (live, past, elsewhere, pending):
        store.save_outlook_copy(copy)
    store.save_board_copy(BoardCopy("user-1", "ev-own", "g5", "hash"))
    assert [i.copy for i in store.live_copies("user-1", "2026-03-01T00:00:00")] == [live, pending]
    assert [i.copy for i in store.live_copies("user-2", "2026-03-01T00:00:00")] == [elsewhere]
    assert [i.copy for i in store.live_copies("user-1", "2026-03-11T00:00:00")] == [pending]


def test_a_pending_copys_window_row_goes_once_its_event_has_one_and_rows_ahead_of_it_are_kept(
        store: MappingStore, window: TableRepository) -> None:
    """A create's rows are written before its primary row (the commit point). Its pending `window` row is
    dropped by the next read once the event's row is there; an index row written ahead of a primary row
    still pending with the same transactionId (the run died in between) is that create's event: `by_event`
    finds it and the poll's healing keeps it; one of an older create is stale and goes."""
    pending = OutlookCopy("g1", "ALICE", "user-1", "t1")
    store.save_outlook_copy(pending)
    created = replace(pending, event_id="ev-1", field_hashes={"subject": "h"}, change_key="ck1",
                      starts_at="2026-03-10T09:00:00", ends_at="2026-03-10T10:00:00")
    store._save_index(created)  # the rows ahead of the primary row; the run dies here
    assert store.by_event("user-1", "ev-1") == created
    assert len(list(window.partition("w|user-1"))) == 2
    [ahead] = store.live_copies("user-1", "2026-03-01T00:00:00")  # the event's row is there: pending dropped
    assert ahead.copy == created and len(list(window.partition("w|user-1"))) == 1
    store.heal_index(ahead, pending)
    assert store.by_event("user-1", "ev-1") == created  # kept
    store.save_outlook_copy(created)  # the retry's create finds that event and saves it
    assert [i.copy for i in store.live_copies("user-1", "2026-03-01T00:00:00")] == [created]
    recreated = OutlookCopy("g1", "ALICE", "user-1", "t2")  # deleted in Outlook: a new create intent
    store.delete_outlook_copy(created)
    store.save_outlook_copy(recreated)
    store._save_index(replace(created, event_id="ev-old"))  # a stale row of the first create
    stale = next(i for i in store.live_copies("user-1", "2026-03-01T00:00:00") if i.copy.event_id == "ev-old")
    store.heal_index(stale, recreated)
    assert store.by_event("user-1", "ev-old") is None
    assert [i.copy for i in store.live_copies("user-1", "2026-03-01T00:00:00")] == [recreated]


def test_the_window_table_keeps_the_window_and_the_history_stays_in_the_mappings(store: MappingStore,
                                                                                window: TableRepository) -> None:
    """Each read of a mailbox's window drops what has aged out of it: the table holds the window, so the
    poll's cost never grows with history; an aged copy is still found by its event (the mappings)."""
    copies = [OutlookCopy(f"g{n}", "ALICE", "user-1", f"t{n}", f"ev-{n}", {"subject": "h"}, "ck",
                          f"2026-03-{n:02d}T09:00:00", f"2026-03-{n:02d}T10:00:00") for n in range(1, 21)]
    for copy in copies:
        store.save_outlook_copy(copy)
    assert len(list(window.partition("w|user-1"))) == 20
    live = store.live_copies("user-1", "2026-03-16T00:00:00")
    assert sorted((i.copy for i in live), key=lambda c: c.ends_at) == copies[15:]
    assert len(list(window.partition("w|user-1"))) == 5
    assert store.by_event("user-1", "ev-3") == copies[2]
    moved = replace(copies[2], starts_at="2026-03-25T09:00:00", ends_at="2026-03-25T10:00:00")
    store.save_outlook_copy(moved)  # a planner moves a past appointment into the window: back in it
    assert moved in [i.copy for i in store.live_copies("user-1", "2026-03-16T00:00:00")]


def test_an_index_row_that_disagrees_with_its_copy_is_brought_in_line(store: MappingStore) -> None:
    old = OutlookCopy("g1", "ALICE", "user-1", "t1", "ev-1", {"subject": "h1"}, "ck1", "2026-03-10T09:00:00",
                      "2026-03-10T10:00:00")
    store.save_outlook_copy(old)
    [indexed] = store.live_copies("user-1", "2026-03-01T00:00:00")
    newer = replace(old, field_hashes={"subject": "h2"}, change_key="ck2")
    store.heal_index(indexed, newer)  # the primary row moved on: the index repeats it now
    [healed] = store.live_copies("user-1", "2026-03-01T00:00:00")
    assert healed.copy == newer
    store.heal_index(indexed, None)  # with the ETag of the first read: the row changed since, left alone
    assert [i.copy for i in store.live_copies("user-1", "2026-03-01T00:00:00")] == [newer]
    store.heal_index(healed, None)  # the copy is gone: so is its index row
    assert store.live_copies("user-1", "2026-03-01T00:00:00") == []
    assert store.by_event("user-1", "ev-1") is None


def test_a_pages_board_copies_are_saved_together_with_their_series_rows(store: MappingStore) -> None:
    copies = [BoardCopy("user-1", f"ev/{n}", f"guid-{n}", "hash", f"ck{n}", "master-1" if n % 2 else None)
              for n in range(130)]  # more than one transaction's 100 rows
    store.save_board_copies("user-1", copies)
    assert sorted(store.board_copies("user-1"), key=lambda c: c.event_id) == sorted(copies, key=lambda c: c.event_id)
    assert store.by_event("user-1", "ev/129") == copies[129]
    assert len(store.series_copies("user-1", "master-1")) == 65
