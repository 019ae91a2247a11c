"""Changes the mass-change guard held for an admin (README, Mass-change guard), in the `cursors` table.

Rows:
- `hold` / `<id>` (16 hex digits): one held change: its kind (`untrack`, `calendar`, `board`), the
  resource (calendar, board), one line an admin reads (`What`), how many items it would remove, since
  when, its state (`held`; `released` while the removals an admin released are being applied), who
  released it and when. Its ETag is the version an admin's release or discard names (`If-Match`).
  The id follows from what is held (`hold_id_for`: kind, calendar or mailbox, slot), and the row is
  inserted, never overwritten: two runs holding the same calendar at once meet on one hold.
- `hold|members|<id>` / `<resource no>`: one per resource an untrack hold would untrack, with its
  mailbox, why, and how many items it would remove (`UntrackEntry`): a hold of thousands of resources
  stays within Table Storage's 64 KiB per property and 1 MiB per row. Written before their hold row.
- `hold|calendar|<resource no>` / `<appointment guid>`: one per deletion of a planner's event in that
  resource's calendar that a hold covers (`HoldId`, `State`, `ReleasedBy`). The planning → Outlook
  worker reads it (a point read) before it deletes an event, so a held deletion stays held whichever
  message asks for it; `poll_planning` keeps the rows of an open hold equal to what it would delete.
- `hold|board|<user id>` / `<event key>`: one per Outlook item held on that mailbox's board
  (`EventId`, `AppointmentGuid`), written by the Outlook → planning worker (the mailbox's single writer).

A *released* item row is an allowance: the removal it names may now happen. It is deleted once used
or no longer needed, and a released hold with no rows left is deleted. Item rows are written before
their hold row and deleted after it (each only if unchanged since read: a run may be holding the same
calendar again under the same id), so a crash in between leaves rows whose hold is gone: they still hold
(the safe side) until the next decision about that calendar or board drops them. Hold rows are replaced
and deleted with their ETag: a run updating a hold can meet an admin releasing or discarding it, and a
refused delete removes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, Row, TableRepository, safe_key


class HoldKind:
    UNTRACK = "untrack"  # sync_resources would untrack resources
    CALENDAR = "calendar"  # the planner's events in one resource's calendar would be deleted
    BOARD = "board"  # one mailbox's Outlook items would leave the planning board


HELD = "held"
RELEASED = "released"
HOLD_PARTITION = "hold"
_ID = re.compile(r"[0-9a-f]{16}")


def is_hold_id(value: str) -> bool:
    return bool(_ID.fullmatch(value))


_SLOTS = 16  # ids per calendar, board or tenant (untrack): a released hold keeps its slot until applied


def new_hold_id() -> str:
    return secrets.token_hex(8)


def hold_id_for(kind: str, subject: str, slot: int) -> str:
    """The id of the `slot`th hold of one calendar or board (`subject`), or of the tenant's untracks
    (`subject` ""): every creator computes the same, so concurrent ones insert the same row."""
    return hashlib.sha256(f"{kind}|{subject}|{slot}".encode()).hexdigest()[:16]


def _items_partition(kind: str, subject: str) -> str:
    return f"hold|{kind}|{safe_key(subject)}"


def _members_partition(hold_id: str) -> str:
    return f"hold|members|{hold_id}"


@dataclass(frozen=True)
class UntrackEntry:
    """One resource an untrack hold would untrack."""

    resource_no: str
    user_id: str
    email: str
    why: str
    missing: bool = True  # missing from Dime.Scheduler / Graph (False: its mailbox changed)
    board_items: int = 0
    calendar_items: int = 0

    def to_row(self) -> dict[str, Any]:
        return {"ResourceNo": self.resource_no, "UserId": self.user_id, "Email": self.email, "Why": self.why,
                "Missing": self.missing, "BoardItems": self.board_items, "CalendarItems": self.calendar_items}

    @classmethod
    def from_row(cls, row: Row) -> UntrackEntry:
        d = row.data
        return cls(str(d["ResourceNo"]), str(d.get("UserId") or ""), str(d.get("Email") or ""), str(d.get("Why") or ""),
                   bool(d.get("Missing", True)), int(d.get("BoardItems") or 0), int(d.get("CalendarItems") or 0))


@dataclass(frozen=True)
class Hold:
    hold_id: str
    kind: str
    what: str
    resource_nos: tuple[str, ...]
    items: int
    since: datetime
    state: str = HELD
    user_id: str = ""  # the mailbox of a board hold
    entries: tuple[UntrackEntry, ...] = ()
    released_by: str = ""
    released_at: datetime | None = None
    etag: str = field(default="", compare=False)

    @property
    def subject(self) -> str:
        """Whose items the hold's rows are filed under: the resource (calendar) or the mailbox (board); an
        untrack's are the tenant's ("")."""
        if self.kind == HoldKind.UNTRACK:
            return ""
        return self.user_id if self.kind == HoldKind.BOARD else (self.resource_nos[0] if self.resource_nos else "")

    def to_row(self) -> dict[str, Any]:
        """The hold row; an untrack's resources are its member rows (unbounded in number)."""
        resources = [] if self.kind == HoldKind.UNTRACK else list(self.resource_nos)
        return {"Kind": self.kind, "What": self.what, "Resources": json.dumps(resources), "Items": self.items,
                "Since": self.since.isoformat(), "State": self.state, "UserId": self.user_id,
                "ReleasedBy": self.released_by,
                "ReleasedAt": self.released_at.isoformat() if self.released_at else ""}

    @classmethod
    def from_row(cls, row: Row, members: Iterable[UntrackEntry] = ()) -> Hold:
        d = row.data
        released_at = str(d.get("ReleasedAt") or "")
        # A hold written before members had rows keeps them in `Entries` (JSON).
        entries = tuple(members) or tuple(UntrackEntry(**e) for e in json.loads(d.get("Entries") or "[]"))
        resources = tuple(e.resource_no for e in entries) or tuple(json.loads(d.get("Resources") or "[]"))
        return cls(hold_id=row.row_key, kind=str(d["Kind"]), what=str(d.get("What") or ""),
                   resource_nos=resources, items=int(d.get("Items") or 0),
                   since=datetime.fromisoformat(str(d["Since"])), state=str(d.get("State") or HELD),
                   user_id=str(d.get("UserId") or ""), entries=entries,
                   released_by=str(d.get("ReleasedBy") or ""),
                   released_at=datetime.fromisoformat(released_at) if released_at else None, etag=row.etag)


@dataclass(frozen=True)
class HeldItem:
    """One removal a hold covers (calendar: an appointment's event; board: an Outlook item)."""

    key: str  # the appointment GUID (calendar) or the event key (board)
    hold_id: str
    state: str = HELD
    released_by: str = ""
    event_id: str = ""
    appointment_guid: str = ""
    etag: str = field(default="", compare=False)

    def to_row(self, subject: str) -> dict[str, Any]:
        return {"Subject": subject, "HoldId": self.hold_id, "State": self.state, "ReleasedBy": self.released_by,
                "EventId": self.event_id, "AppointmentGuid": self.appointment_guid}

    @classmethod
    def from_row(cls, row: Row) -> HeldItem:
        d = row.data
        return cls(row.row_key, str(d.get("HoldId") or ""), str(d.get("State") or HELD), str(d.get("ReleasedBy") or ""),
                   str(d.get("EventId") or ""), str(d.get("AppointmentGuid") or ""), etag=row.etag)


@dataclass
class ItemDecision:
    """What may be removed from one calendar or board now, and what waits for an admin."""

    allowed: dict[str, str] = field(default_factory=dict)  # key → who released it ("" when nothing was held)
    held: set[str] = field(default_factory=set)
    hold: Hold | None = None  # the open hold covering `held`
    created: bool = False  # `hold` is new
    resolved: Hold | None = None  # an open hold nothing is left to hold for (deleted)


class HoldStore:
    def __init__(self, table: TableRepository) -> None:
        self._table = table

    # -- holds ------------------------------------------------------------------------------------
    def all(self, members: bool = True) -> list[Hold]:
        """Every hold, oldest first; an untrack's member rows are read only with `members`."""
        return sorted((self._hold(r, members) for r in self._table.partition(HOLD_PARTITION)), key=lambda h: h.since)

    def held(self, kind: str | None = None) -> list[Hold]:
        """The open holds (waiting for an admin), oldest first."""
        return [h for h in self.all() if h.state == HELD and (kind is None or h.kind == kind)]

    def get(self, hold_id: str) -> Hold | None:
        if not is_hold_id(hold_id):
            return None
        row = self._table.get(HOLD_PARTITION, hold_id)
        return self._hold(row) if row else None

    def _hold(self, row: Row, members: bool = True) -> Hold:
        if not members or row.data.get("Kind") != HoldKind.UNTRACK or row.data.get("Entries"):
            return Hold.from_row(row)
        return Hold.from_row(row, (UntrackEntry.from_row(r) for r in self._table.partition(_members_partition(row.row_key))))

    def create(self, hold: Hold, write_rows: Callable[[str], None] | None = None) -> tuple[Hold, bool]:
        """Store a new hold of `hold.kind` on `hold.subject` under the first of its ids (`hold_id_for`) that
        is free or names an open hold, so concurrent creators converge: (the hold stored, True) or (the
        open hold another creator stored first, False). `write_rows(id)` writes the item rows first (and
        again for a hold met under another id); an untrack's members are written first too."""
        for slot in range(_SLOTS):
            hold_id = hold_id_for(hold.kind, hold.subject, slot)
            found = self.get(hold_id)
            if found is None:
                if write_rows is not None:
                    write_rows(hold_id)
                self._write_members(hold_id, hold.entries)
                try:
                    etag = self._table.insert(HOLD_PARTITION, hold_id, replace(hold, hold_id=hold_id).to_row())
                    return replace(hold, hold_id=hold_id, etag=etag), True
                except AlreadyExists:  # another creator was first: its hold, if open, is ours too
                    found = self.get(hold_id)
            if found is not None and found.state == HELD:
                if write_rows is not None:
                    write_rows(found.hold_id)
                return found, False
            # released (its allowances still run) or gone again: the next slot
        stored = replace(hold, hold_id=new_hold_id())  # every slot taken by released holds: a one-off id
        if write_rows is not None:
            write_rows(stored.hold_id)
        self._write_members(stored.hold_id, stored.entries)
        return replace(stored, etag=self._table.insert(HOLD_PARTITION, stored.hold_id, stored.to_row())), True

    def save(self, hold: Hold) -> Hold:
        """Replace the hold row as read (`ConcurrencyConflict` if it changed or went meanwhile)."""
        etag = self._table.replace(HOLD_PARTITION, hold.hold_id, hold.to_row(), hold.etag)
        return replace(hold, etag=etag)

    def save_members(self, hold: Hold) -> Hold:
        """An untrack hold whose resources changed: its member rows, then the hold row as read (its version
        moves, so an admin's release or discard of what they saw before is refused)."""
        self._write_members(hold.hold_id, hold.entries)
        return self.save(hold)

    def _write_members(self, hold_id: str, entries: Iterable[UntrackEntry]) -> None:
        wanted = {safe_key(e.resource_no): e.to_row() for e in entries}
        if not wanted:
            return
        partition = _members_partition(hold_id)
        for row in self._table.partition(partition):
            if row.row_key not in wanted:
                self._table.delete(partition, row.row_key)
        self._table.upsert_many(partition, wanted)

    def remove(self, hold: Hold) -> None:
        """Delete the hold as read, then its item or member rows: `ConcurrencyConflict`, and nothing removed,
        if it changed meanwhile. A row rewritten since it was read (the same calendar held again) stays."""
        if hold.kind == HoldKind.UNTRACK:
            partition = _members_partition(hold.hold_id)
            rows = [(partition, r.row_key, r.etag) for r in self._table.partition(partition)]
        else:
            partition = _items_partition(hold.kind, hold.subject)
            rows = [(partition, item.key, item.etag) for item in self.items(hold.kind, hold.subject).values()
                    if item.hold_id == hold.hold_id]
        self._table.delete(HOLD_PARTITION, hold.hold_id, hold.etag or None)
        for partition, key, etag in rows:
            with contextlib.suppress(ConcurrencyConflict):
                self._table.delete(partition, key, etag or None)

    # -- held items ---------------------------------------------------------------------------------
    def items(self, kind: str, subject: str) -> dict[str, HeldItem]:
        return {r.row_key: HeldItem.from_row(r) for r in self._table.partition(_items_partition(kind, subject))}

    def item(self, kind: str, subject: str, key: str) -> HeldItem | None:
        row = self._table.get(_items_partition(kind, subject), key)
        return HeldItem.from_row(row) if row else None

    def all_items(self, kind: str) -> dict[str, dict[str, HeldItem]]:
        """Every item row of one kind, by subject (one range query)."""
        low, high = f"hold|{kind}|", f"hold|{kind}}}"
        found: dict[str, dict[str, HeldItem]] = {}
        for row in self._table.query(f"PartitionKey ge '{low}' and PartitionKey lt '{high}'"):
            found.setdefault(str(row.data.get("Subject") or ""), {})[row.row_key] = HeldItem.from_row(row)
        return found

    def put_item(self, kind: str, subject: str, item: HeldItem) -> None:
        self._table.upsert(_items_partition(kind, subject), item.key, item.to_row(subject))

    def delete_item(self, kind: str, subject: str, key: str) -> None:
        self._table.delete(_items_partition(kind, subject), key)

    def release_items(self, hold: Hold, by: str) -> list[HeldItem]:
        """Turn the hold's rows into allowances; returns them."""
        released = []
        for item in self.items(hold.kind, hold.subject).values():
            if item.hold_id == hold.hold_id:
                item = replace(item, state=RELEASED, released_by=by)
                self.put_item(hold.kind, hold.subject, item)
                released.append(item)
        return released

    # -- the guard for one calendar or board ---------------------------------------------------------
    def guard_items(self, kind: str, subject: str, resource_no: str, wanted: Mapping[str, HeldItem], limit: int,
                    describe: Callable[[int], str], now: datetime, complete: bool, user_id: str = "",
                    rows: Mapping[str, HeldItem] | None = None) -> ItemDecision:
        """Decide the removals `wanted` from one calendar (`subject` = resource) or board (`subject` = mailbox):
        - released by an admin → allowed;
        - an open hold exists here → the rest joins it (nothing leaves a calendar or board while a hold
          on it waits); with `complete` (the caller listed every removal it wants, not only new ones)
          the hold also lets go of what is no longer wanted, and is resolved when nothing is left;
        - else more than `limit` → a new hold with them; else → allowed.
        `wanted` maps each key to the item row to write if it is held (its `hold_id` is filled in here)."""
        current = dict(self.items(kind, subject) if rows is None else rows)
        decision = ItemDecision(allowed={k: current[k].released_by for k in wanted
                                         if k in current and current[k].state == RELEASED})
        rest = [k for k in wanted if k not in decision.allowed]
        held_rows = {k: item for k, item in current.items() if item.state == HELD}
        open_hold = None
        for hold_id in sorted({item.hold_id for item in held_rows.values()}):
            found = self.get(hold_id)
            if found is not None and found.state == HELD and open_hold is None:
                open_hold = found
            else:  # rows of a hold that is gone (discarded or resolved part-way) or a second one: dropped
                for key in [k for k, item in held_rows.items() if item.hold_id == hold_id]:
                    self.delete_item(kind, subject, key)
                    del held_rows[key]
        if open_hold is not None:
            added = [key for key in rest if key not in held_rows]
            for key in added:
                self.put_item(kind, subject, replace(wanted[key], hold_id=open_hold.hold_id, state=HELD))
            dropped = set(held_rows) - set(rest) if complete else set()
            for key in dropped:
                self.delete_item(kind, subject, key)
            count = len(rest) if complete else len(set(held_rows) | set(rest))
            if count == 0:
                self.delete_quietly(open_hold)
                decision.resolved = open_hold
                return decision
            if added or dropped or count != open_hold.items:  # a new version: an admin's stale If-Match fails
                open_hold = self.save_quietly(replace(open_hold, items=count, what=describe(count)))
            decision.hold, decision.held = open_hold, set(rest)
            return decision
        if len(rest) > limit:
            hold = Hold("", kind, describe(len(rest)), (resource_no,), len(rest), now, user_id=user_id)

            def write_rows(hold_id: str) -> None:  # the rows first: a crash before the hold row leaves rows that hold
                for key in rest:
                    self.put_item(kind, subject, replace(wanted[key], hold_id=hold_id, state=HELD))

            decision.hold, decision.created = self.create(hold, write_rows)
            decision.held = set(rest)
            return decision
        decision.allowed.update({k: "" for k in rest})
        return decision

    def consume(self, kind: str, subject: str, keys: Iterable[str]) -> None:
        """Allowances used up (or no longer needed): their rows go."""
        for key in keys:
            self.delete_item(kind, subject, key)

    def forget_released(self, kinds: tuple[str, ...], referenced: set[str],
                        subjects: str | Collection[str] | None = None) -> None:
        """Released holds of these kinds (and these subjects) that no item row refers to any more are done: deleted."""
        among = {subjects} if isinstance(subjects, str) else subjects
        for hold in self.all(members=False):
            if hold.state == RELEASED and hold.kind in kinds and hold.hold_id not in referenced \
                    and (among is None or hold.subject in among):
                self.delete_quietly(hold)

    def delete_quietly(self, hold: Hold) -> None:
        with contextlib.suppress(ConcurrencyConflict):  # an admin acted on it meanwhile: theirs stands
            self.remove(hold)

    def save_quietly(self, hold: Hold) -> Hold:
        try:
            return self.save(hold)
        except ConcurrencyConflict:
            return hold  # an admin acted on it meanwhile: theirs stands, the next run looks again
