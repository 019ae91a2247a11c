"""Tracked resources and their Graph subscriptions (the `subscriptions` table).

Rows:
- `resource` / `<resource no>`: one per resource Dime.Scheduler marks for Exchange integration:
  email, Graph user id, the mailbox's time zone, status, subscription id and expiry, sync
  timestamps, last error, and since when a tracked resource is missing (`missing_since`).
- `subscription` / `<subscription id>`: the index a notification is checked against: the resource,
  the mailbox, and the SHA-256 of the subscription's clientState (the secret itself is never stored).
- `user` / `<user id>`: mailbox → resource number.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from connector.stores.repositories import TableRepository, safe_key
from connector.sync.status import TrackedResource


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

    def get(self, resource_no: str) -> ResourceRecord | None:
        row = self._table.get("resource", safe_key(resource_no))
        return ResourceRecord.from_row(row.data) if row else None

    def all(self) -> list[ResourceRecord]:
        return [ResourceRecord.from_row(r.data) for r in self._table.partition("resource")]

    def tracked(self) -> dict[str, TrackedResource]:
        """Resources the connector syncs now, keyed by resource number."""
        return {r.resource_no: r.tracked for r in self.all() if r.status == Status.TRACKED and r.user_id}

    def save(self, record: ResourceRecord) -> None:
        self._table.upsert("resource", safe_key(record.resource_no), record.to_row())
        if record.user_id:
            self._table.upsert("user", safe_key(record.user_id), {"resource_no": record.resource_no})

    def update(self, resource_no: str, **changes: Any) -> ResourceRecord | None:
        record = self.get(resource_no)
        if record is None:
            return None
        updated = replace(record, **changes)
        self.save(updated)
        return updated

    def note_sync(self, resource_no: str, direction: str, now: datetime) -> None:
        """Show the last sync of one direction on the monitor. The row has no ETag guard and
        sync_resources owns its status, so write rarely (once a minute at most) and only while the
        resource is tracked; a successful sync also clears the last error."""
        field = "last_sync_to_planning" if direction == "to_planning" else "last_sync_to_outlook"
        current = self.get(resource_no)
        if current is None or current.status != Status.TRACKED:
            return
        last = getattr(current, field)
        if last is None or now - last > timedelta(minutes=1) or current.last_error:
            self.update(resource_no, **{field: now, "last_error": ""})

    def by_user(self, user_id: str) -> ResourceRecord | None:
        row = self._table.get("user", safe_key(user_id))
        return self.get(str(row.data["resource_no"])) if row else None

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
