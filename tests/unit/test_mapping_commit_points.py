"""Each multi-row write of `MappingStore` cut short after any of its operations (the process dies there)
leaves nothing the next look cannot repair: the row whose presence says "done" is written last and
deleted last, so while it says "done" every other row is there (or gone)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from connector.stores.mappings import MappingStore, event_key
from connector.stores.repositories import TableRepository
from connector.sync.status import BoardCopy, OutlookCopy
from devtools.sim.storage import FakeStorage

COPY = OutlookCopy("g1", "ALICE", "user-1", "t1", "ev-1", {"subject": "h"}, "ck1",
                   "2026-03-10T09:00:00", "2026-03-10T10:00:00")
BOARD = BoardCopy("user-1", "ev-7", "g7", "hash", "ck", series_master_id="master-1")


class Died(BaseException):
    """The process died after this operation."""


class Cut:
    """The storage hazard: the process dies right after the `after`-th write from now."""

    def __init__(self) -> None:
        self.after: int | None = None
        self.writes = 0

    def __call__(self, label: str, effect: Callable[[], Any]) -> Any:
        result = effect()
        if self.after is not None and label.split()[1] in ("upsert", "delete", "transaction"):
            self.writes += 1
            if self.writes == self.after:
                raise Died(label)
        return result


def _cut_short(action: Callable[[MappingStore], None], cut_after: int,
               before: Callable[[MappingStore], None]) -> tuple[MappingStore, FakeStorage]:
    """`before` done in full, then `action` cut short after its `cut_after`-th write."""
    storage, cut = FakeStorage(lambda: 0.0), Cut()
    storage.hazard = cut
    store = MappingStore(TableRepository(storage.table("mappings")),  # type: ignore[arg-type]
                         TableRepository(storage.table("window")))  # type: ignore[arg-type]
    before(store)
    cut.after = cut.writes + cut_after
    with pytest.raises(Died):
        action(store)
    cut.after = None
    return store, storage


@pytest.mark.parametrize("cut_after", [1, 2])
def test_a_confirmed_copy_is_on_record_only_with_its_index_and_window_rows(cut_after: int) -> None:
    pending = OutlookCopy("g1", "ALICE", "user-1", "t1")
    store, _ = _cut_short(lambda s: s.save_outlook_copy(COPY), cut_after, lambda s: s.save_outlook_copy(pending))
    if store.outlook_copies("g1")["ALICE"] == COPY:  # on record: the retry finds the pair in sync
        assert store.by_event("user-1", "ev-1") == COPY
        assert [i.copy for i in store.live_copies("user-1", "2026-03-01T00:00:00")] == [COPY]
    else:  # still pending: the retry creates again (same transactionId) and writes every row
        assert store.outlook_copies("g1")["ALICE"] == pending


@pytest.mark.parametrize("cut_after", [1, 2])
def test_a_board_copy_is_on_record_only_with_its_mark_and_series_row(cut_after: int) -> None:
    store, _ = _cut_short(lambda s: s.save_board_copy(BOARD), cut_after, lambda s: None)
    if store.by_event("user-1", "ev-7") == BOARD:  # on record: the round finds the item unchanged
        assert store.is_outlook_item("g7")
        assert store.series_copies("user-1", "master-1") == [BOARD]
    else:  # unknown: the round imports it again
        assert store.by_event("user-1", "ev-7") is None


@pytest.mark.parametrize("cut_after", [1, 2])
def test_a_board_copy_is_off_record_only_once_its_mark_and_series_row_are_gone(cut_after: int) -> None:
    store, storage = _cut_short(lambda s: s.delete_board_copy(BOARD), cut_after, lambda s: s.save_board_copy(BOARD))
    if store.by_event("user-1", "ev-7") is None:  # off record: the round never removes it again
        assert not store.is_outlook_item("g7")
        assert ("s|user-1|" + event_key("master-1"), event_key("ev-7")) not in storage.table("mappings").rows
    else:  # still on record: the round's removal goes again
        assert store.by_event("user-1", "ev-7") == BOARD


@pytest.mark.parametrize("cut_after", [1, 2])
def test_a_copy_is_off_record_only_once_its_index_and_window_rows_are_gone(cut_after: int) -> None:
    store, storage = _cut_short(lambda s: s.delete_outlook_copy(COPY), cut_after, lambda s: s.save_outlook_copy(COPY))
    if store.outlook_copies("g1") == {}:  # off record: nothing deletes the event's rows again
        assert store.by_event("user-1", "ev-1") is None
        assert storage.table("window").rows == {}
    else:  # still on record: the retried deletion goes again
        assert store.outlook_copies("g1") == {"ALICE": COPY}
