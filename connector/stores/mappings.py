"""The `mappings` table: which planner appointment and which Outlook event are the same thing.

Rows (every look-up is a point read or one partition):
- `a|<appointment guid>` / `<resource no>`: an `OutlookCopy`, the event the connector wrote to that
  resource's calendar for the appointment (event id, transactionId, per-field hashes, changeKey).
- `a|<appointment guid>` / `~exchange`: marks a board appointment that mirrors an Outlook item, so the
  planning worker never writes it back to Outlook. It is written *before* the item is imported: the
  import's own webhook (whose payload does not say the item came from Outlook) finds it already.
- `a|<appointment guid>` / `~id`: the appointment's numeric Dime.Scheduler id, which
  `GET /appointment/{id}` may require instead of the GUID.
- `e|<user id>` / `<hash of event id>`: the reverse index from an Outlook event to its mapping. For
  the connector's own events it points at the `OutlookCopy` and repeats it (hashes, changeKey, span); the
  primary row stays the truth (written first, read again before any work). For Outlook items it *is*
  the `BoardCopy` (appointment guid, content hash, changeKey).
- in the `window` table, `w|<user id>` / `<hash of event id>`: the same row as the index's for each of
  the connector's events that ends in or after the poll's window. The poll reads a mailbox's partition
  and drops what has aged out, so its cost follows the window, never the history (`live_copies`).
  A *pending* copy (saved before its create's POST, no event id yet) has a row there too,
  `p<hash of transactionId>`, so the poll sees a create whose answer was lost; the next poll read drops
  it once the copy has its event's row (`live_copies`).
- `s|<user id>|<hash of series master id>` / `<hash of event id>`: the series index, one row per
  occurrence or exception of that series on the board, so a changed master finds its board items
  with one partition query (no scan).
Event ids are hashed into row keys because they may hold characters Table Storage forbids in keys.

Crash safety: a copy's rows live in three partitions (no one transaction), so the primary row is written
**last** and deleted last: it is the commit point. A run that dies before it leaves the primary row as
it was, its change is retried and planned on it again, and every path of that retry writes (or deletes)
all the rows anew. Rows written ahead of a primary row that is still pending with the same transactionId
belong to the event that create made: `by_event` and `heal_index` keep them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from connector.stores.repositories import ConcurrencyConflict, Row, TableRepository, safe_key
from connector.sync.status import BoardCopy, OutlookCopy

EXCHANGE_MARK = "~exchange"
ID_ROW = "~id"
_NOT_COPIES = frozenset({EXCHANGE_MARK, ID_ROW})  # rows of an appointment's partition that are no OutlookCopy


def event_key(event_id: str) -> str:
    return hashlib.sha256(event_id.encode()).hexdigest()[:40]


def _appointment_pk(guid: str) -> str:
    return "a|" + safe_key(guid.lower())


def _event_pk(user_id: str) -> str:
    return "e|" + safe_key(user_id)


def _window_pk(user_id: str) -> str:
    return "w|" + safe_key(user_id)


def _copy_from(row: Row) -> OutlookCopy:
    d = row.data
    return OutlookCopy(
        appointment_guid=str(d["AppointmentGuid"]), resource_no=str(d["ResourceNo"]), user_id=str(d["UserId"]),
        transaction_id=str(d["TransactionId"]), event_id=d.get("EventId") or None,
        field_hashes=json.loads(d.get("FieldHashes") or "{}"), change_key=d.get("ChangeKey") or None,
        starts_at=str(d.get("StartsAt") or ""), ends_at=str(d.get("EndsAt") or ""),
    )


def _numeric_id(row: Row) -> str | None:
    value = str(row.data.get("AppointmentId") or "")
    return value if value.isdigit() else None


def _pending_key(transaction_id: str) -> str:
    """The `window` row key of a pending copy (no event id yet): apart from every event's hex key."""
    return "p" + event_key(transaction_id)


def _window_key(copy: OutlookCopy) -> str:
    return event_key(copy.event_id) if copy.event_id else _pending_key(copy.transaction_id)


def _ahead(copy: OutlookCopy, truth: OutlookCopy | None) -> bool:
    """An index row of an event whose create's primary row is not written yet (or never was: the run
    died in between, and the retry finds that event by its transactionId): not stale."""
    return truth is not None and truth.event_id is None and bool(copy.event_id) \
        and truth.transaction_id == copy.transaction_id and truth.user_id == copy.user_id


def _moved_on(copy: OutlookCopy, truth: OutlookCopy) -> bool:
    """The copy has another event (or mailbox) now, or a pending copy another create."""
    return truth.event_id != copy.event_id or truth.user_id != copy.user_id \
        or (copy.event_id is None and truth.transaction_id != copy.transaction_id)


def _copy_from_index(row: Row) -> OutlookCopy:
    """The copy as its index row repeats it (a row written before it repeated the hashes has none)."""
    d = row.data
    return OutlookCopy(
        appointment_guid=str(d["AppointmentGuid"]), resource_no=str(d["ResourceNo"]), user_id=str(d["UserId"]),
        transaction_id=str(d.get("TransactionId") or ""), event_id=str(d.get("EventId") or "") or None,
        field_hashes=json.loads(d.get("FieldHashes") or "{}"), change_key=d.get("ChangeKey") or None,
        starts_at=str(d.get("StartsAt") or ""), ends_at=str(d.get("EndsAt") or ""),
    )


@dataclass(frozen=True)
class AppointmentStatus:
    """All an appointment's partition says, from one read: its copies, whether it mirrors an Outlook
    item, and its remembered numeric id."""

    copies: dict[str, OutlookCopy]
    outlook_item: bool = False
    appointment_id: str | None = None


@dataclass(frozen=True)
class IndexedCopy:
    """A copy read from a mailbox's index, with what is needed to drop or refresh that row."""

    copy: OutlookCopy
    etag: str


def _copy_row(copy: OutlookCopy) -> dict[str, Any]:
    return {
        "AppointmentGuid": copy.appointment_guid.lower(), "ResourceNo": copy.resource_no, "UserId": copy.user_id,
        "TransactionId": copy.transaction_id, "EventId": copy.event_id or "",
        "FieldHashes": json.dumps(dict(copy.field_hashes), sort_keys=True), "ChangeKey": copy.change_key or "",
        "StartsAt": copy.starts_at, "EndsAt": copy.ends_at,
    }


def _index_row(copy: OutlookCopy) -> dict[str, Any]:
    return {"Kind": "planning", **_copy_row(copy)}


def _board_row(copy: BoardCopy) -> dict[str, Any]:
    return {"Kind": "exchange", "AppointmentGuid": copy.appointment_guid, "UserId": copy.user_id,
            "EventId": copy.event_id, "ContentHash": copy.content_hash, "ChangeKey": copy.change_key or "",
            "SeriesMasterId": copy.series_master_id or "",
            **({"Filled": "v1:" + ",".join(sorted(copy.filled))} if copy.filled is not None else {})}


def _series_row(copy: BoardCopy) -> dict[str, Any]:
    return {"EventId": copy.event_id, "SeriesMasterId": copy.series_master_id}


def _series_pk(user_id: str, master_id: str) -> str:
    return f"s|{safe_key(user_id)}|{event_key(master_id)}"


def _board_from(row: Row) -> BoardCopy:
    d = row.data
    return BoardCopy(user_id=str(d["UserId"]), event_id=str(d["EventId"]), appointment_guid=str(d["AppointmentGuid"]),
                     content_hash=str(d.get("ContentHash", "")), change_key=d.get("ChangeKey") or None,
                     series_master_id=d.get("SeriesMasterId") or None, filled=_filled(d.get("Filled")))


def _filled(value: Any) -> frozenset[str] | None:
    """`BoardCopy.filled` as saved; None for a row saved before it was kept (or unreadable)."""
    if not isinstance(value, str) or not value.startswith("v1:"):
        return None
    return frozenset(name for name in value[3:].split(",") if name)


class MappingStore:
    """Typed access to the `mappings` table."""

    def __init__(self, table: TableRepository, window: TableRepository | None = None) -> None:
        self._table = table
        self._window = window or table  # the `window` table (tests may keep both in one table)

    # -- the connector's events (planning → Outlook) --------------------------------------------
    def outlook_copies(self, appointment_guid: str) -> dict[str, OutlookCopy]:
        """Every copy of one appointment, keyed by resource number."""
        return self.appointment_status(appointment_guid).copies

    def appointment_status(self, appointment_guid: str) -> AppointmentStatus:
        """The appointment's copies, Outlook-item mark and numeric id: one partition read (the planning
        worker's only read of this table per change, before and again under the lease)."""
        copies: dict[str, OutlookCopy] = {}
        outlook_item, appointment_id = False, None
        for row in self._table.partition(_appointment_pk(appointment_guid)):
            if row.row_key == EXCHANGE_MARK:
                outlook_item = True
            elif row.row_key == ID_ROW:
                appointment_id = _numeric_id(row)
            else:
                copy = _copy_from(row)
                copies[copy.resource_no] = copy
        return AppointmentStatus(copies, outlook_item, appointment_id)

    def save_outlook_copy(self, copy: OutlookCopy) -> None:
        """Write the copy's index and `window` rows, then the copy (last: the commit point, see the module
        docstring). Only the planning → Outlook worker, under the appointment's lease, writes copies this way."""
        self._save_index(copy)
        self._table.upsert(_appointment_pk(copy.appointment_guid), safe_key(copy.resource_no), _copy_row(copy))

    def save_outlook_copy_if(self, read: OutlookCopy, copy: OutlookCopy) -> bool:
        """Write the copy only if the row still holds what was `read` (its ETag): for a writer that
        does not own the row (the Outlook → planning worker recording what a person's edit made of
        it). False, and nothing written, when the owner moved on meanwhile: its write is the newer truth."""
        pk, rk = _appointment_pk(read.appointment_guid), safe_key(read.resource_no)
        row = self._table.get(pk, rk)
        if row is None or _copy_from(row) != read:
            return False
        try:
            self._table.replace(pk, rk, _copy_row(copy), row.etag)
        except ConcurrencyConflict:
            return False
        self._save_index(copy)
        return True

    def _save_index(self, copy: OutlookCopy) -> None:
        """The reverse index row (once the event id is known) and the `window` row (a pending copy's too)."""
        row = _index_row(copy)
        if copy.event_id:
            self._table.upsert(_event_pk(copy.user_id), event_key(copy.event_id), row)
        self._window.upsert(_window_pk(copy.user_id), _window_key(copy), row)

    def reindex(self, copy: OutlookCopy) -> None:
        """Write the index row of a copy as read from its primary row (the poll's first run)."""
        self._save_index(copy)

    def live_copies(self, user_id: str, ending_from: str) -> list[IndexedCopy]:
        """The connector's copies in one mailbox whose event ends at or after `ending_from` (a wall time as
        `event_span` writes it), and its pending copies (their span unknown), from the `window` table: one
        partition read, which also drops the rows that have aged out since (so the table holds the window,
        not the history) and the pending rows of creates whose event has its row now. A pending copy
        comes after the live ones (a caller keeping the last of a copy's rows decides on it)."""
        rows = list(self._window.partition(_window_pk(user_id)))
        created = {(c.appointment_guid, c.resource_no, c.transaction_id)
                   for c in (_copy_from_index(row) for row in rows) if c.event_id}
        live: list[IndexedCopy] = []
        pending: list[IndexedCopy] = []
        for row in rows:
            copy = _copy_from_index(row)
            if copy.event_id is None and (copy.appointment_guid, copy.resource_no, copy.transaction_id) not in created:
                pending.append(IndexedCopy(copy, row.etag))
            elif copy.event_id is not None and str(row.data.get("EndsAt") or "") >= ending_from:
                live.append(IndexedCopy(copy, row.etag))
            else:
                with contextlib.suppress(ConcurrencyConflict):  # rewritten meanwhile (moved into the window)
                    self._window.delete(row.partition_key, row.row_key, row.etag)
        return live + pending

    def heal_index(self, indexed: IndexedCopy, truth: OutlookCopy | None) -> None:
        """Bring one window row in line with its primary row as just read: dropped when the copy is gone or
        moved to another event or transactionId (with its index row: that event never comes back to this
        copy), rewritten when it repeats an older state (only if unchanged since read: the worker may be
        writing it now). A row ahead of its pending primary row (`_ahead`) is kept."""
        copy = indexed.copy
        if _ahead(copy, truth):
            return
        key = _window_key(copy)
        with contextlib.suppress(ConcurrencyConflict):
            if truth is None or _moved_on(copy, truth):
                self._window.delete(_window_pk(copy.user_id), key, indexed.etag)
                if copy.event_id:
                    self._table.delete(_event_pk(copy.user_id), key)
            elif truth != copy:
                self._window.replace(_window_pk(copy.user_id), key, _index_row(truth), indexed.etag)

    def delete_outlook_copy(self, copy: OutlookCopy) -> None:
        """The copy's `window` and index rows, then the copy itself (last: a run that dies in between leaves
        the copy, whose retried deletion goes again)."""
        self._window.delete(_window_pk(copy.user_id), _window_key(copy))
        if copy.event_id:
            self._table.delete(_event_pk(copy.user_id), event_key(copy.event_id))
        self._table.delete(_appointment_pk(copy.appointment_guid), safe_key(copy.resource_no))

    # -- Outlook items on the board (Outlook → planning) ----------------------------------------
    def board_copies(self, user_id: str) -> list[BoardCopy]:
        return [_board_from(r) for r in self._table.partition(_event_pk(user_id)) if r.data.get("Kind") == "exchange"]

    def planner_events(self, user_id: str) -> list[tuple[str, str, str]]:
        """The connector's events in one mailbox as (event id, starts at, ends at): one partition query,
        from the reverse index (a row older than the span columns has empty times)."""
        return [(str(r.data.get("EventId") or ""), str(r.data.get("StartsAt") or ""), str(r.data.get("EndsAt") or ""))
                for r in self._table.partition(_event_pk(user_id)) if r.data.get("Kind") == "planning"]

    def save_board_copy(self, copy: BoardCopy) -> None:
        """The board mark, (for an occurrence or exception) its row in the series index, then the copy
        (last: the round that dies before it finds the item unknown or unhashed and imports it again)."""
        self._table.upsert(_appointment_pk(copy.appointment_guid), EXCHANGE_MARK,
                           {"UserId": copy.user_id, "EventId": copy.event_id})
        if copy.series_master_id:
            self._table.upsert(_series_pk(copy.user_id, copy.series_master_id), event_key(copy.event_id),
                               _series_row(copy))
        self._table.upsert(_event_pk(copy.user_id), event_key(copy.event_id), _board_row(copy))

    def save_board_copies(self, user_id: str, copies: Sequence[BoardCopy]) -> None:
        """Copies of one mailbox whose board marks are written already (`mark_outlook_item`): one
        transaction per series they belong to, then one per 100 copies (last, as in `save_board_copy`)."""
        series: dict[str, dict[str, dict[str, Any]]] = {}
        for copy in copies:
            if copy.series_master_id:
                series.setdefault(copy.series_master_id, {})[event_key(copy.event_id)] = _series_row(copy)
        for master_id, rows in series.items():
            self._table.upsert_many(_series_pk(user_id, master_id), rows)
        self._table.upsert_many(_event_pk(user_id), {event_key(c.event_id): _board_row(c) for c in copies})

    def delete_board_copy(self, copy: BoardCopy) -> None:
        """The series row and the mark, then the copy (last: a round that dies before it reads the removal
        again, finds the copy and removes it again)."""
        if copy.series_master_id:
            self._table.delete(_series_pk(copy.user_id, copy.series_master_id), event_key(copy.event_id))
        self._table.delete(_appointment_pk(copy.appointment_guid), EXCHANGE_MARK)
        self._table.delete(_event_pk(copy.user_id), event_key(copy.event_id))

    def series_copies(self, user_id: str, master_id: str) -> list[BoardCopy]:
        """The board copies of one series' occurrences and exceptions (one partition of the index)."""
        copies = []
        for row in self._table.partition(_series_pk(user_id, master_id)):
            found = self.by_event(user_id, str(row.data["EventId"]))
            if isinstance(found, BoardCopy):
                copies.append(found)
            else:  # the copy went away after its index row was written: drop the stale row
                self._table.delete(row.partition_key, row.row_key)
        return copies

    def mark_outlook_item(self, appointment_guid: str, user_id: str, event_id: str) -> None:
        """Mark the board appointment as an Outlook item before it is imported (see the module docstring)."""
        self._table.upsert(_appointment_pk(appointment_guid), EXCHANGE_MARK, {"UserId": user_id, "EventId": event_id})

    def is_outlook_item(self, appointment_guid: str) -> bool:
        """True when the board appointment mirrors an Outlook item (never written back to Outlook)."""
        return self._table.get(_appointment_pk(appointment_guid), EXCHANGE_MARK) is not None

    # -- the numeric id ----------------------------------------------------------------------
    def appointment_id(self, appointment_guid: str) -> str | None:
        """The numeric Dime.Scheduler id remembered for the appointment, if any."""
        row = self._table.get(_appointment_pk(appointment_guid), ID_ROW)
        return _numeric_id(row) if row else None

    def remember_appointment_id(self, appointment_guid: str, appointment_id: str) -> None:
        self._table.upsert(_appointment_pk(appointment_guid), ID_ROW, {"AppointmentId": appointment_id})

    # -- by event ----------------------------------------------------------------------------
    def by_event(self, user_id: str, event_id: str) -> OutlookCopy | BoardCopy | None:
        """What an event in a mailbox maps to: the connector's copy, a board copy, or nothing (two point reads)."""
        row = self._table.get(_event_pk(user_id), event_key(event_id))
        if row is None:
            return None
        if row.data.get("Kind") == "exchange":
            return _board_from(row)
        primary = self._table.get(_appointment_pk(str(row.data["AppointmentGuid"])), safe_key(str(row.data["ResourceNo"])))
        if primary is not None and primary.data.get("EventId") == event_id:
            return _copy_from(primary)
        ahead = _copy_from_index(row)
        if _ahead(ahead, _copy_from(primary) if primary is not None else None):
            return ahead  # the create's event, its primary row not written yet (see the module docstring)
        return None  # a stale index row: the copy moved on

    def all_outlook_copies(self) -> Iterator[OutlookCopy]:
        """Every copy (the poll compares the planning window with them)."""
        for entity in self._table.query("PartitionKey ge 'a|' and PartitionKey lt 'a}'"):
            if entity.row_key not in _NOT_COPIES:
                yield _copy_from(entity)
