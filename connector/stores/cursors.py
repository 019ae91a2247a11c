"""Per-mailbox cursor and lease on the `cursors` table: one writer per mailbox, nothing lost.

Row `mailbox` / `<user id>`:
- `Link`: where the next delta round starts (a deltaLink, or a nextLink while a round is part-way),
  written only after the changes of the page it follows were applied;
- `FullRequired`: the next round must be a full one (first sync, expired token, lifecycle, ...);
- `SettingsHash`: the hash of the settings the last full round applied; a different hash at the
  start of a run forces a full round, so a settings change reaches every item;
- `LeaseOwner` / `LeaseUntil`: the run that owns the mailbox now;
- `Pending` / `PendingFull`: work that arrived while the lease was held;
- `FollowUpAt` / `FollowUp`: when a message sent by a run that found the lease held will look again,
  and that message (the holder deletes it when it finishes: it is needed only if the holder died).
- `RoundId` / `RoundFull` / `RoundPages` / `RoundWindow` / `RoundHash`: the round `Link` is part-way
  through (a run that reached its budget, or died): which one, whether full, how many pages are applied,
  a full round's window and the settings it applies. What its end needs from those pages (the items a
  full round saw, the removals waiting for the guard) is in the rows `round|<user id>` /
  `<round id>-<page>`, one per page, written before the checkpoint that moves past it (`RoundLog`).

The lease protocol (every write is ETag-guarded, a conflict re-reads and decides again):
1. `acquire`: a free or expired lease is taken (a crashed run's lease expires after `ttl`); a held
   lease gets `Pending` set instead: the holder will go round once more. In case the holder died, the
   caller also sends a follow-up message for when the lease expires (one per lease period, `FollowUpAt`).
   A `full` request sets `PendingFull` / `FullRequired` so it is not downgraded.
2. `checkpoint`: the holder stores its progress and extends the lease; if the lease was taken over
   meanwhile (the run was slower than `ttl`) it raises `LeaseLost` and the run stops writing.
3. `finish`: if `Pending` was set, it is cleared and the holder keeps the lease for one more round;
   otherwise the lease is released. `abandon` (after a failure) releases the lease but keeps
   `Pending`, so the retried message picks everything up. `pause` (a run that used its budget, after it
   sent its follow-up message) releases the lease with `Pending` set: the round goes on from its link.
The decisions are the pure functions `take`, `finish_state`, `abandon_state` and `pause_state` (unit-tested); the
store applies them with optimistic concurrency.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, TableRepository, safe_key

PARTITION = "mailbox"
DEFAULT_TTL = timedelta(minutes=5)
MAX_PENDING_ITEMS = 50  # ~150-character ids: well inside a table property's 64 KiB


class LeaseLost(Exception):
    """Another run took over this mailbox (ours expired): stop writing, it carries on."""


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CursorState:
    """What the row holds (without its ETag)."""

    link: str = ""
    full_required: bool = True
    settings_hash: str = ""
    lease_owner: str = ""
    lease_until: datetime | None = None
    pending: bool = False
    pending_full: bool = False
    last_round_at: datetime | None = None
    last_full_at: datetime | None = None
    follow_up_at: datetime | None = None  # a waiting message will look again then (see `acquire_or_follow_up`)
    follow_up: str = ""  # that message ("<id> <pop receipt>"): the holder deletes it when it finishes well
    # Single Outlook items to look at (deleted ones named by notifications, a parked item retried): left
    # here by messages that found the mailbox busy, taken by whoever holds it next, like Pending.
    pending_items: tuple[str, ...] = ()
    # The round `link` is part-way through (see the module docstring); "" when none is.
    round_id: str = ""
    round_full: bool = False
    round_pages: int = 0
    round_window: str = ""  # a full round's "<start>|<end>" (ISO): fixed by its first request
    round_hash: str = ""  # the settings hash a full round applies

    def held_by_other(self, owner: str, now: datetime) -> bool:
        return bool(self.lease_owner) and self.lease_owner != owner and self.lease_until is not None \
            and self.lease_until > now

    def to_row(self) -> dict[str, Any]:
        def iso(moment: datetime | None) -> str:
            return moment.isoformat() if moment else ""

        return {"Link": self.link, "FullRequired": self.full_required, "SettingsHash": self.settings_hash,
                "LeaseOwner": self.lease_owner, "LeaseUntil": iso(self.lease_until), "Pending": self.pending,
                "PendingFull": self.pending_full, "LastRoundAt": iso(self.last_round_at),
                "LastFullAt": iso(self.last_full_at), "FollowUpAt": iso(self.follow_up_at),
                "FollowUp": self.follow_up, "PendingItems": json.dumps(list(self.pending_items)),
                "RoundId": self.round_id, "RoundFull": self.round_full, "RoundPages": self.round_pages,
                "RoundWindow": self.round_window, "RoundHash": self.round_hash}

    @classmethod
    def from_row(cls, data: dict[str, Any]) -> CursorState:
        def moment(name: str) -> datetime | None:
            value = data.get(name)
            return datetime.fromisoformat(value) if value else None

        return cls(link=str(data.get("Link") or ""), full_required=bool(data.get("FullRequired", True)),
                   settings_hash=str(data.get("SettingsHash") or ""), lease_owner=str(data.get("LeaseOwner") or ""),
                   lease_until=moment("LeaseUntil"), pending=bool(data.get("Pending")),
                   pending_full=bool(data.get("PendingFull")), last_round_at=moment("LastRoundAt"),
                   last_full_at=moment("LastFullAt"), follow_up_at=moment("FollowUpAt"),
                   follow_up=str(data.get("FollowUp") or ""), pending_items=_items(data.get("PendingItems")),
                   round_id=str(data.get("RoundId") or ""), round_full=bool(data.get("RoundFull")),
                   round_pages=int(data.get("RoundPages") or 0), round_window=str(data.get("RoundWindow") or ""),
                   round_hash=str(data.get("RoundHash") or ""))


def _items(text: Any) -> tuple[str, ...]:
    try:
        value = json.loads(text) if isinstance(text, str) and text else []
    except ValueError:
        return ()
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def merge_items(*groups: Sequence[str]) -> tuple[str, ...]:
    """Items in first-seen order, each once, at most `MAX_PENDING_ITEMS` (the newest kept: the oldest
    were most likely seen by a delta round meanwhile)."""
    merged = tuple(dict.fromkeys(item for group in groups for item in group))
    return merged[-MAX_PENDING_ITEMS:]


# -- the pure lease decisions ---------------------------------------------------------------------
def take(state: CursorState, owner: str, now: datetime, ttl: timedelta, full: bool,
         items: Sequence[str] = ()) -> tuple[CursorState, bool]:
    """Try to take the lease: (new state, True) when taken, (state with Pending set, False) when busy.
    The taker does what was pending, the items too (`new.pending_items`). They stay on the row until
    its round finishes (`finish_state`): a taker that dies mid-round leaves them to the next one."""
    merged = merge_items(state.pending_items, items)
    if state.held_by_other(owner, now):
        return replace(state, pending=True, pending_full=state.pending_full or full, pending_items=merged), False
    return replace(state, lease_owner=owner, lease_until=now + ttl, pending=False, pending_full=False,
                   full_required=state.full_required or full or state.pending_full, pending_items=merged), True


def follow_up_due(state: CursorState) -> datetime | None:
    """A busy mailbox whose holder may have died: when to look again (the lease's expiry), unless a
    follow-up is already noted for then. The holder, if alive, serves `Pending` long before and deletes
    the follow-up; if it died, the follow-up takes the expired lease and does the work."""
    if state.lease_until is None or (state.follow_up_at is not None and state.follow_up_at >= state.lease_until):
        return None
    return state.lease_until


def finish_state(state: CursorState, owner: str, now: datetime, ttl: timedelta,
                 done: Sequence[str] = ()) -> tuple[CursorState, bool]:
    """End of a round that looked at the items `done`: (state, True) = go round once more (work or
    items arrived meanwhile; the items left on the row are the next round's); False = released."""
    if state.lease_owner != owner:
        raise LeaseLost("the lease was taken over")
    left = tuple(item for item in state.pending_items if item not in done)
    if state.pending or left:
        return replace(state, pending=False, pending_full=False, lease_until=now + ttl, pending_items=left,
                       full_required=state.full_required or state.pending_full), True
    return replace(state, lease_owner="", lease_until=None, follow_up_at=None, follow_up="", pending_items=()), False


def abandon_state(state: CursorState, owner: str) -> CursorState:
    """After a failure: release the lease, keep Pending (the retried message will do the work); the
    items are still on the row (see `take`), so the next holder looks at them."""
    if state.lease_owner != owner:
        return state
    return replace(state, lease_owner="", lease_until=None, pending=state.pending or bool(state.pending_items))


def pause_state(state: CursorState, owner: str, done: Sequence[str] = ()) -> CursorState:
    """A run that used its budget mid-round (its follow-up message sent): release the lease with Pending
    set, so the round goes on from its stored link whichever message comes next; the items it looked
    at are off the row."""
    if state.lease_owner != owner:
        raise LeaseLost("the lease was taken over")
    return replace(state, lease_owner="", lease_until=None, pending=True,
                   pending_items=tuple(item for item in state.pending_items if item not in done))


NO_ROUND: dict[str, Any] = {"round_id": "", "round_full": False, "round_pages": 0, "round_window": "",
                            "round_hash": ""}  # `checkpoint` changes: no round part-way


@dataclass(frozen=True)
class Lease:
    """A held lease: the state as last written and its ETag."""

    user_id: str
    owner: str
    state: CursorState
    etag: str
    released_follow_up: str = ""  # set by `finish` when it released the lease: the follow-up to delete
    items: tuple[str, ...] = ()  # single items this round must look at (taken from the row and the message)


class CursorStore:
    def __init__(self, table: TableRepository, ttl: timedelta = DEFAULT_TTL,
                 clock: Callable[[], datetime] = _now) -> None:
        self._table = table
        self._ttl = ttl
        self._clock = clock

    def _read(self, user_id: str) -> tuple[CursorState, str | None]:
        row = self._table.get(PARTITION, safe_key(user_id))
        if row is None:
            return CursorState(), None
        return CursorState.from_row(row.data), row.etag

    def _write(self, user_id: str, state: CursorState, etag: str | None) -> str:
        if etag is None:
            return self._table.insert(PARTITION, safe_key(user_id), state.to_row())
        return self._table.replace(PARTITION, safe_key(user_id), state.to_row(), etag)

    def get(self, user_id: str) -> CursorState | None:
        row = self._table.get(PARTITION, safe_key(user_id))
        return CursorState.from_row(row.data) if row else None

    def acquire(self, user_id: str, owner: str, full: bool = False) -> Lease | None:
        """The lease, or None when another run holds it (that run will go round once more)."""
        return self.acquire_or_follow_up(user_id, owner, full)[0]

    def acquire_or_follow_up(self, user_id: str, owner: str, full: bool = False,
                             items: Sequence[str] = ()) -> tuple[Lease | None, datetime | None]:
        """`acquire`; when busy, also the moment a follow-up message should look again (None: one is due).
        `items` are looked at by this run when it takes the lease, else left for the holder's next round."""
        while True:
            state, etag = self._read(user_id)
            new, taken = take(state, owner, self._clock(), self._ttl, full, items)
            again = None if taken else follow_up_due(new)
            try:
                new_etag = self._write(user_id, new, etag)
            except (AlreadyExists, ConcurrencyConflict):
                continue
            if not taken:
                return None, again
            return Lease(user_id, owner, new, new_etag, items=new.pending_items), again

    def checkpoint(self, lease: Lease, **changes: Any) -> Lease:
        """Store progress (`link`, `full_required`, `settings_hash`, ...) and extend the lease."""
        etag, base = lease.etag, lease.state
        while True:
            new = replace(base, lease_until=self._clock() + self._ttl, **changes)
            try:
                return replace(lease, state=new, etag=self._write(lease.user_id, new, etag))
            except (AlreadyExists, ConcurrencyConflict):
                base, current_etag = self._read(lease.user_id)
                if base.lease_owner != lease.owner or current_etag is None:
                    raise LeaseLost(f"mailbox {lease.user_id}: the lease was taken over") from None
                etag = current_etag  # someone set Pending: keep it, write our progress on top

    def items_done(self, lease: Lease, keep: Sequence[str] = ()) -> Lease:
        """The round looked at its items: off the row (one write, the lease extended), so a later failure
        of the same round does not make the next one read them all again; but those in `keep` (a removal
        waiting for the round's end) stay until that end (`finish`), so a round that fails first leaves
        them to the next one."""
        etag, base = lease.etag, lease.state
        done = [item for item in lease.items if item not in keep]
        while True:
            new = replace(base, lease_until=self._clock() + self._ttl,
                          pending_items=tuple(i for i in base.pending_items if i not in done))
            try:
                return replace(lease, state=new, etag=self._write(lease.user_id, new, etag),
                               items=tuple(i for i in lease.items if i in keep))
            except (AlreadyExists, ConcurrencyConflict):
                base, current_etag = self._read(lease.user_id)
                if base.lease_owner != lease.owner or current_etag is None:
                    raise LeaseLost(f"mailbox {lease.user_id}: the lease was taken over") from None
                etag = current_etag

    def finish(self, lease: Lease) -> tuple[Lease, bool]:
        """Release the lease, or keep it and return True when work arrived during the round."""
        etag, state = lease.etag, lease.state
        while True:
            new, again = finish_state(state, lease.owner, self._clock(), self._ttl, lease.items)
            try:
                written = self._write(lease.user_id, new, etag)
            except (AlreadyExists, ConcurrencyConflict):
                state, current = self._read(lease.user_id)
                if current is None:
                    raise LeaseLost(f"mailbox {lease.user_id}: the cursor was deleted") from None
                etag = current
                continue
            released = "" if again else state.follow_up
            return replace(lease, state=new, etag=written, released_follow_up=released, items=new.pending_items), again

    def note_follow_up(self, user_id: str, at: datetime, follow_up: str) -> tuple[bool, str]:
        """Remember the follow-up message a waiting run sent for `at` (sent first, noted second: a run
        that dies in between leaves an extra follow-up, never none). Returns (noted, replaced): not noted
        when it is not needed after all (the lease was released meanwhile, or another follow-up is noted
        for `at`): the caller deletes its own; `replaced` is the follow-up noted for an earlier expiry
        of a lease extended since, now moot: the caller deletes it, so no message lingers to the old expiry."""
        for _ in range(5):
            state, etag = self._read(user_id)
            if etag is None or follow_up_due(state) is None or state.lease_until != at:
                return False, ""
            try:
                self._write(user_id, replace(state, follow_up_at=at, follow_up=follow_up), etag)
                return True, state.follow_up
            except ConcurrencyConflict:
                continue
        return False, ""


    def pause(self, lease: Lease) -> None:
        """Release the lease mid-round, Pending set (see `pause_state`)."""
        etag, state = lease.etag, lease.state
        while True:
            try:
                self._write(lease.user_id, pause_state(state, lease.owner, lease.items), etag)
                return
            except (AlreadyExists, ConcurrencyConflict):
                state, current = self._read(lease.user_id)
                if current is None:
                    raise LeaseLost(f"mailbox {lease.user_id}: the cursor was deleted") from None
                etag = current

    def abandon(self, lease: Lease) -> None:
        """Best effort after a failure: release the lease (keep Pending)."""
        for _ in range(5):
            state, etag = self._read(lease.user_id)
            if etag is None:
                return
            try:
                self._write(lease.user_id, abandon_state(state, lease.owner), etag)
                return
            except ConcurrencyConflict:
                continue

    def request_full(self, user_id: str) -> None:
        """Make the next round of this mailbox a full one (settings changed, token lost, ...)."""
        while True:
            state, etag = self._read(user_id)
            try:
                self._write(user_id, replace(state, full_required=True, pending=True, pending_full=True), etag)
                return
            except (AlreadyExists, ConcurrencyConflict):
                continue

    def delete(self, user_id: str) -> None:
        self._table.delete(PARTITION, safe_key(user_id))


ROUND_PARTITION = "round"


@dataclass(frozen=True)
class RoundPages:
    """What a round's applied pages left for its end: the live items a full round saw, and the
    removals (event id → why) waiting for the mass-change guard."""

    seen: frozenset[str] = frozenset()
    removals: dict[str, str] = field(default_factory=dict)


class RoundLog:
    """The pages of a part-way round, one row each (`round|<user id>` / `<round id>-<page>`): a page's row
    is written before the checkpoint that moves the link past it (so a crash in between writes it again,
    the same row), read at the round's end, and dropped after the round's last checkpoint."""

    def __init__(self, table: TableRepository) -> None:
        self._table = table

    @staticmethod
    def _partition(user_id: str) -> str:
        return f"{ROUND_PARTITION}|{safe_key(user_id)}"

    def save_page(self, user_id: str, round_id: str, page: int, seen: Sequence[str], removals: dict[str, str]) -> None:
        self._table.upsert(self._partition(user_id), f"{round_id}-{page:06d}",
                           {"Seen": json.dumps(sorted(seen)), "Removals": json.dumps(removals, sort_keys=True)})

    def pages(self, user_id: str, round_id: str) -> RoundPages:
        seen: set[str] = set()
        removals: dict[str, str] = {}
        for row in self._table.partition(self._partition(user_id)):
            if row.row_key.startswith(f"{round_id}-"):
                seen.update(_items(row.data.get("Seen")))
                removals.update(_reasons(row.data.get("Removals")))
        return RoundPages(frozenset(seen), removals)

    def drop(self, user_id: str) -> None:
        """Every page row of the mailbox (this round's, and those of a round that was given up)."""
        for row in self._table.partition(self._partition(user_id)):
            self._table.delete(row.partition_key, row.row_key)


def _reasons(text: Any) -> dict[str, str]:
    try:
        value = json.loads(text) if isinstance(text, str) and text else {}
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
