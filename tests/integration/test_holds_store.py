"""The holds' rows against Azurite (issue 19, holes 2 and 5): an untrack hold of 2,000 resources, one
written before members had rows of their own; where two writers meet, two polls holding the same
calendar at once converge on one hold, and a discard refused because the hold changed removes nothing."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from connector.config import load_settings
from connector.stores.holds import HELD, HOLD_PARTITION, HeldItem, Hold, HoldKind, HoldStore, ItemDecision, UntrackEntry
from connector.stores.repositories import ConcurrencyConflict, TableRepository
from connector.stores.storage import StorageClients
from devtools.local_settings import local_values

LIMIT = 3


class MeetingTable(TableRepository):
    """Azurite, with the two creators of a hold made to meet: each waits at its insert of a hold row until
    the other got there too (the interleaving two polls at once can have)."""

    def __init__(self, table: TableRepository, creators: int) -> None:
        self.__dict__.update(table.__dict__)
        self._meet = threading.Barrier(creators, timeout=30)

    def insert(self, partition_key: str, row_key: str, data: Mapping[str, Any]) -> str:
        if partition_key == HOLD_PARTITION:
            self._meet.wait()
        return super().insert(partition_key, row_key, data)


@pytest.fixture()
def table(storage_connection_string: str) -> TableRepository:
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    created = TableRepository(clients.table("holds" + uuid.uuid4().hex[:10]))
    created.ensure()
    return created


def _deletions(guids: list[str]) -> dict[str, HeldItem]:
    return {g: HeldItem(g, "", appointment_guid=g) for g in guids}


def _guard(store: HoldStore, guids: list[str]) -> ItemDecision:
    """One poll's decision about the deletions `guids` from CAROL's calendar."""
    return store.guard_items(HoldKind.CALENDAR, "CAROL", "CAROL", _deletions(guids), LIMIT,
                             lambda n: f"Delete {n} of the planner's events from CAROL's calendar",
                             datetime.now(UTC), complete=True)


def test_two_polls_holding_one_calendar_at_once_leave_one_hold(table: TableRepository) -> None:
    guids = [str(uuid.uuid4()) for _ in range(5)]
    meeting = MeetingTable(table, 2)
    with ThreadPoolExecutor(2) as pool:
        decisions = list(pool.map(lambda _: _guard(HoldStore(meeting), guids), range(2)))
    store = HoldStore(table)
    [hold] = store.held()  # one hold on the monitor, not two
    assert sorted(d.created for d in decisions) == [False, True]  # one created it, the other joined
    assert {d.hold.hold_id for d in decisions if d.hold} == {hold.hold_id}
    items = store.items(HoldKind.CALENDAR, "CAROL")
    assert sorted(items) == sorted(guids) and {i.hold_id for i in items.values()} == {hold.hold_id}
    assert all(i.state == HELD for i in items.values())
    again = _guard(store, guids)  # the next poll finds that hold
    assert again.hold is not None and again.hold.hold_id == hold.hold_id and not again.created


def test_a_discard_refused_because_the_hold_grew_removes_nothing(table: TableRepository) -> None:
    store = HoldStore(table)
    guids = [str(uuid.uuid4()) for _ in range(5)]
    first = _guard(store, guids)
    assert first.hold is not None
    seen = first.hold  # what the admin looks at
    grown = _guard(store, [*guids, str(uuid.uuid4())])  # a poll finds one more deletion meanwhile
    assert grown.hold is not None and grown.hold.items == 6 and grown.hold.etag != seen.etag
    with pytest.raises(ConcurrencyConflict):
        store.remove(seen)
    [still] = store.held()
    assert still.items == 6 and still.etag == grown.hold.etag
    items = store.items(HoldKind.CALENDAR, "CAROL")
    assert len(items) == 6 and all(i.hold_id == still.hold_id and i.state == HELD for i in items.values())
    store.remove(still)  # the version as it is now: discarded, its rows with it
    assert store.held() == [] and store.items(HoldKind.CALENDAR, "CAROL") == {}


def _entry(n: int) -> UntrackEntry:
    return UntrackEntry(f"R{n:05d}", str(uuid.UUID(int=n + 1)), f"technician.{n:05d}@contoso.example",
                        "Exchange integration is off for this resource", board_items=3, calendar_items=7)


def test_an_untrack_hold_of_two_thousand_resources_is_stored_and_listed(table: TableRepository) -> None:
    store = HoldStore(table)
    entries = tuple(_entry(n) for n in range(2000))
    hold, created = store.create(Hold("", HoldKind.UNTRACK, "Untrack R00000 and 1999 more", (), 20000,
                                      datetime.now(UTC), entries=entries))
    assert created
    [listed] = store.held()
    assert listed.hold_id == hold.hold_id and set(listed.entries) == set(entries) and len(listed.resource_nos) == 2000
    fewer = store.save_members(replace(listed, entries=entries[:1500], items=15000))  # 500 came back
    assert fewer.etag != listed.etag
    [shrunk] = store.held()
    assert set(shrunk.entries) == set(entries[:1500]) and shrunk.items == 15000
    store.remove(shrunk)
    assert store.held() == [] and list(table.query("PartitionKey ge 'hold|members|' and PartitionKey lt 'hold|members}'")) == []


def test_an_untrack_hold_written_before_members_had_rows_is_read_as_it_was(table: TableRepository) -> None:
    entries = [_entry(1), _entry(2)]
    table.insert(HOLD_PARTITION, "0123456789abcdef", {
        "Kind": HoldKind.UNTRACK, "What": "Untrack R00001, R00002", "Resources": json.dumps(["R00001", "R00002"]),
        "Items": 20, "Since": datetime.now(UTC).isoformat(), "State": HELD, "UserId": "",
        "Entries": json.dumps([e.__dict__ for e in entries]), "ReleasedBy": "", "ReleasedAt": ""})
    [hold] = HoldStore(table).held()
    assert hold.entries == tuple(entries) and hold.resource_nos == ("R00001", "R00002")
