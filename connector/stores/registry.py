"""Tracked resources and their Graph subscriptions (the `subscriptions` table).

Rows:
- `resource` / `<resource no>`: one per resource Dime.Scheduler marks for Exchange integration:
  email, Graph user id, the mailbox's time zone, status, subscription id and expiry, sync
  timestamps, last error, and since when a tracked resource is missing (`missing_since`).
- `subscription` / `<subscription id>`: the index a notification is checked against: the resource,
  the mailbox, and the SHA-256 of the subscription's clientState (the secret itself is never stored).
- `user` / `<user id>`: mailbox → resource number. When a resource's mailbox changes, the old
  index row goes with it, and `by_user` checks the record still names that mailbox, so two resources
  (or two writers) can never meet on one mailbox through a stale index row.

Several writers touch a resource row (sync_resources owns its status; the workers note their last
sync; subscription upkeep and lifecycle work write the subscription fields), so every read-modify-write
is conditional on the ETag it read and re-reads on a conflict; `update(..., only_if=...)` re-checks the
writer's premise on the fresh row (e.g. "still tracked"), so a late writer cannot resurrect what an
untrack just dropped.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, Row, TableRepository, safe_key
from connector.sync.status import TrackedResource

NOTE_EVERY = timedelta(minutes=1)  # how often the monitor's last-sync time moves (and a last error is cleared)
_WRITE_TRIES = 8  # conflicting writers are few (a timer, two workers): a handful of re-reads settles it


class Status:
    TRACKED = "tracked"
    UNKNOWN_EMAIL = "unknown_email"  # Dime.Scheduler's email is not a Graph user: shown on the monitor
    UNTRACKED = "untracked"  # integration switched off in Dime.Scheduler


def client_state_hash(client_state: str) -> str:
    return hashlib.sha256(client_state.encode()).hexdigest()


@dataclass(frozen=True)
class ResourceRecord:
    resource_no: str
    email: str
    display_name: str = ""
    user_id: str = ""
    status: str = Status.TRACKED
    subscription_id: str = ""
    subscription_expiry: datetime | None = None
    last_sync_to_planning: datetime | None = None
    last_sync_to_outlook: datetime | None = None
    last_error: str = ""
    error_count: int = 0
    time_zone: str = ""  # the mailbox's mailboxSettings.timeZone, read on tracking and on each run
    # A tracked resource sync_resources did not find (gone, switched off, no Graph user) on its last run:
    # it is untracked only if it is still missing on the next run (README, Mass-change guard).
    missing_since: datetime | None = None
    # The mailbox the resource had before (its email changed to another user, or to none Graph knows):
    # the connector's events may still be there, so the poll keeps looking at it.
    former_user_id: str = ""

    def moved_from(self, previous: ResourceRecord | None) -> ResourceRecord:
        """This record, remembering `previous`'s mailbox when this one is another (or none)."""
        if previous is None:
            return self
        former = previous.user_id if previous.user_id and previous.user_id != self.user_id else previous.former_user_id
        return replace(self, former_user_id="" if former == self.user_id else former)

    @property
    def mailboxes(self) -> tuple[str, ...]:
        """Every mailbox the connector may have written events of this resource to."""
        return tuple(u for u in (self.user_id, self.former_user_id) if u)

    @property
    def tracked(self) -> TrackedResource:
        return TrackedResource(self.resource_no, self.email, self.user_id, self.time_zone or "UTC")

    def to_row(self) -> dict[str, Any]:
        row: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            row[name] = value.isoformat() if isinstance(value, datetime) else ("" if value is None else value)
        return row

    @classmethod
    def from_row(cls, data: dict[str, Any]) -> ResourceRecord:
        values: dict[str, Any] = {}
        for name, spec in cls.__dataclass_fields__.items():
            if name not in data:
                continue
            value = data[name]
            if "datetime" in str(spec.type):
                value = datetime.fromisoformat(value) if value else None
            values[name] = value
        return cls(**values)


@dataclass(frozen=True)
class SubscriptionIndex:
    subscription_id: str
    resource_no: str
    user_id: str
    client_state_hash: str

    def accepts(self, client_state: str | None) -> bool:
        """Constant-time check of a notification's clientState."""
        return client_state is not None and hmac.compare_digest(client_state_hash(client_state), self.client_state_hash)


class ResourceRegistry:
    def __init__(self, table: TableRepository) -> None:
        self._table = table
        # When this process last looked at a resource's last-sync field (note_sync): within NOTE_EVERY
        # it does not even read the row again. An error this process records forgets it at once.
        self._noted: dict[tuple[str, str], datetime] = {}

    def get(self, resource_no: str) -> ResourceRecord | None:
        row = self._table.get("resource", safe_key(resource_no))
        return ResourceRecord.from_row(row.data) if row else None

    def all(self) -> list[ResourceRecord]:
        return [ResourceRecord.from_row(r.data) for r in self._table.partition("resource")]

    def tracked(self) -> dict[str, TrackedResource]:
        """Resources the connector syncs now, keyed by resource number."""
        return {r.resource_no: r.tracked for r in self.all() if r.status == Status.TRACKED and r.user_id}

    def save(self, record: ResourceRecord) -> None:
        """Write the whole record (sync_resources, which owns the status); keeps the mailbox index right."""
        self._forget_noted(record.resource_no)
        for _ in range(_WRITE_TRIES):
            row = self._table.get("resource", safe_key(record.resource_no))
            if self._write(row, record):
                return
        raise ConcurrencyConflict(f"resource/{record.resource_no}: changed {_WRITE_TRIES} times while saving")

    def update(self, resource_no: str, only_if: Callable[[ResourceRecord], bool] | None = None,
               **changes: Any) -> ResourceRecord | None:
        """Change some fields of the current row, conditional on its ETag (re-read on a conflict).
        None when the resource is not there or `only_if` says the row no longer fits the change."""
        if changes.get("last_error"):
            self._forget_noted(resource_no)
        for _ in range(_WRITE_TRIES):
            row = self._table.get("resource", safe_key(resource_no))
            if row is None:
                return None
            record = ResourceRecord.from_row(row.data)
            if only_if is not None and not only_if(record):
                return None
            updated = replace(record, **changes)
            if self._write(row, updated):
                return updated
        raise ConcurrencyConflict(f"resource/{resource_no}: changed {_WRITE_TRIES} times while updating")

    def _write(self, row: Row | None, record: ResourceRecord) -> bool:
        """Write `record` over `row` as read (False: someone wrote in between), then its mailbox index."""
        key = safe_key(record.resource_no)
        try:
            if row is None:
                self._table.insert("resource", key, record.to_row())
            else:
                self._table.replace("resource", key, record.to_row(), row.etag)
        except (AlreadyExists, ConcurrencyConflict):
            return False
        previous = str(row.data.get("user_id") or "") if row else ""
        if previous and previous != record.user_id:
            index = self._table.get("user", safe_key(previous))
            if index is not None and index.data.get("resource_no") == record.resource_no:
                self._table.delete("user", safe_key(previous), index.etag)
        if record.user_id:
            self._table.upsert("user", safe_key(record.user_id), {"resource_no": record.resource_no})
        return True

    def note_sync(self, resource_no: str, direction: str, now: datetime) -> None:
        """Show the last sync of one direction on the monitor: rarely (once a minute at most) and only
        while the resource is tracked; a successful sync also clears the last error."""
        field = "last_sync_to_planning" if direction == "to_planning" else "last_sync_to_outlook"
        looked = self._noted.get((resource_no, field))
        if looked is not None and timedelta(0) <= now - looked <= NOTE_EVERY:
            return  # looked at less than a minute ago: no read per change (an error elsewhere clears within a minute)
        self._noted[(resource_no, field)] = now

        def due(current: ResourceRecord) -> bool:
            last = getattr(current, field)
            return current.status == Status.TRACKED and (
                last is None or now - last > NOTE_EVERY or bool(current.last_error))

        current = self.get(resource_no)
        if current is not None and due(current):
            self.update(resource_no, only_if=due, **{field: now, "last_error": ""})

    def _forget_noted(self, resource_no: str) -> None:
        for key in [k for k in self._noted if k[0] == resource_no]:
            self._noted.pop(key, None)

    def by_user(self, user_id: str) -> ResourceRecord | None:
        row = self._table.get("user", safe_key(user_id))
        record = self.get(str(row.data["resource_no"])) if row else None
        return record if record is not None and record.user_id == user_id else None

    def remember_subscription(self, index: SubscriptionIndex) -> None:
        self._table.upsert("subscription", safe_key(index.subscription_id), {
            "resource_no": index.resource_no, "user_id": index.user_id, "client_state_hash": index.client_state_hash,
        })

    def subscription(self, subscription_id: str) -> SubscriptionIndex | None:
        row = self._table.get("subscription", safe_key(subscription_id))
        if row is None:
            return None
        return SubscriptionIndex(subscription_id, str(row.data["resource_no"]), str(row.data["user_id"]),
                                 str(row.data["client_state_hash"]))

    def forget_subscription(self, subscription_id: str) -> None:
        self._table.delete("subscription", safe_key(subscription_id))
