"""Changes the mass-change guard held for an admin (README, Mass-change guard), in the `cursors` table.

Rows:
- `hold` / `<id>` (16 hex digits): one held change: its kind (`untrack`, `calendar`, `board`), the
  resource(s), one line an admin reads (`What`), how many items it would remove, since when, its state
  (`held`; `released` while the removals an admin released are being applied), who released it and
  when, and for an untrack the resources with their mailbox and why (`Entries`, JSON).
- `hold|calendar|<resource no>` / `<appointment guid>`: one per deletion of a planner's event in that
  resource's calendar that a hold covers (`HoldId`, `State`, `ReleasedBy`). The planning → Outlook
  worker reads it (a point read) before it deletes an event, so a held deletion stays held whichever
  message asks for it; `poll_planning` keeps the rows of an open hold equal to what it would delete.
- `hold|board|<user id>` / `<event key>`: one per Outlook item held on that mailbox's board
  (`EventId`, `AppointmentGuid`), written by the Outlook → planning worker (the mailbox's single writer).

A *released* item row is an allowance: the removal it names may now happen. It is deleted once used
or no longer needed, and a released hold with no rows left is deleted. Item rows are written before
their hold row and deleted before it, so a crash in between leaves rows whose hold is gone: they still
hold (the safe side) until the next decision about that calendar or board drops them. Hold rows are
replaced and deleted with their ETag: a run updating a hold can meet an admin releasing or discarding it.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from connector.stores.repositories import ConcurrencyConflict, Row, TableRepository, safe_key


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


def new_hold_id() -> str:
    return secrets.token_hex(8)


def _items_partition(kind: str, subject: str) -> str:
    return f"hold|{kind}|{safe_key(subject)}"


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
        """Whose items the hold's rows are filed under: the resource (calendar) or the mailbox (board)."""
        return self.user_id if self.kind == HoldKind.BOARD else (self.resource_nos[0] if self.resource_nos else "")

    def to_row(self) -> dict[str, Any]:
        return {"Kind": self.kind, "What": self.what, "Resources": json.dumps(list(self.resource_nos)),
                "Items": self.items, "Since": self.since.isoformat(), "State": self.state, "UserId": self.user_id,
                "Entries": json.dumps([asdict(e) for e in self.entries]), "ReleasedBy": self.released_by,
                "ReleasedAt": self.released_at.isoformat() if self.released_at else ""}

    @classmethod
    def from_row(cls, row: Row) -> Hold:
        d = row.data
        released_at = str(d.get("ReleasedAt") or "")
        return cls(hold_id=row.row_key, kind=str(d["Kind"]), what=str(d.get("What") or ""),
                   resource_nos=tuple(json.loads(d.get("Resources") or "[]")), items=int(d.get("Items") or 0),
                   since=datetime.fromisoformat(str(d["Since"])), state=str(d.get("State") or HELD),
                   user_id=str(d.get("UserId") or ""),
                   entries=tuple(UntrackEntry(**e) for e in json.loads(d.get("Entries") or "[]")),
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

    def to_row(self, subject: str) -> dict[str, Any]:
        return {"Subject": subject, "HoldId": self.hold_id, "State": self.state, "ReleasedBy": self.released_by,
                "EventId": self.event_id, "AppointmentGuid": self.appointment_guid}

    @classmethod
    def from_row(cls, row: Row) -> HeldItem:
        d = row.data
        return cls(row.row_key, str(d.get("HoldId") or ""), str(d.get("State") or HELD), str(d.get("ReleasedBy") or ""),
                   str(d.get("EventId") or ""), str(d.get("AppointmentGuid") or ""))


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
    def all(self) -> list[Hold]:
        return sorted((Hold.from_row(r) for r in self._table.partition(HOLD_PARTITION)), key=lambda h: h.since)

    def held(self, kind: str | None = None) -> list[Hold]:
        """The open holds (waiting for an admin), oldest first."""
        return [h for h in self.all() if h.state == HELD and (kind is None or h.kind == kind)]

    def get(self, hold_id: str) -> Hold | None:
        if not is_hold_id(hold_id):
            return None
        row = self._table.get(HOLD_PARTITION, hold_id)
        return Hold.from_row(row) if row else None

    def create(self, hold: Hold) -> Hold:
        etag = self._table.insert(HOLD_PARTITION, hold.hold_id, hold.to_row())
        return replace(hold, etag=etag)

    def save(self, hold: Hold) -> Hold:
        """Replace the hold as read (`ConcurrencyConflict` if it changed or went meanwhile)."""
        etag = self._table.replace(HOLD_PARTITION, hold.hold_id, hold.to_row(), hold.etag)
        return replace(hold, etag=etag)

    def remove(self, hold: Hold) -> None:
        """Delete the hold's item rows, then the hold (`ConcurrencyConflict` if it changed meanwhile)."""
        if hold.kind != HoldKind.UNTRACK:
            for item in self.items(hold.kind, hold.subject).values():
                if item.hold_id == hold.hold_id:
                    self.delete_item(hold.kind, hold.subject, item.key)
        self._table.delete(HOLD_PARTITION, hold.hold_id, hold.etag or None)

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
            for key in rest:
                if key not in held_rows:
                    self.put_item(kind, subject, replace(wanted[key], hold_id=open_hold.hold_id, state=HELD))
            if complete:
                for key in set(held_rows) - set(rest):
                    self.delete_item(kind, subject, key)
            count = len(rest) if complete else len(set(held_rows) | set(rest))
            if count == 0:
                self.delete_quietly(open_hold)
                decision.resolved = open_hold
                return decision
            if count != open_hold.items:
                open_hold = self.save_quietly(replace(open_hold, items=count, what=describe(count)))
            decision.hold, decision.held = open_hold, set(rest)
            return decision
        if len(rest) > limit:
            hold = Hold(new_hold_id(), kind, describe(len(rest)), (resource_no,), len(rest), now, user_id=user_id)
            for key in rest:  # the rows first: a crash before the hold row leaves rows that still hold
                self.put_item(kind, subject, replace(wanted[key], hold_id=hold.hold_id, state=HELD))
            decision.hold, decision.held, decision.created = self.create(hold), set(rest), True
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
        for hold in self.all():
            if hold.state == RELEASED and hold.kind in kinds and hold.hold_id not in referenced \
                    and (among is None or hold.subject in among):
                self.delete_quietly(hold)

    def delete_quietly(self, hold: Hold) -> None:
        with contextlib.suppress(ConcurrencyConflict):  # an admin acted on it meanwhile: theirs stands
            self._table.delete(HOLD_PARTITION, hold.hold_id, hold.etag or None)

    def save_quietly(self, hold: Hold) -> Hold:
        try:
            return self.save(hold)
        except ConcurrencyConflict:
            return hold  # an admin acted on it meanwhile: theirs stands, the next run looks again
