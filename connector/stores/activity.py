"""The activity log operators read: one entry per applied, skipped, rejected or failed change.

Rows in the `activity` table:
- `d|<yyyymmdd>` / `<inverted ticks>-<id>`: the day's entries, newest first (the monitor's list).
- `i|<item key>` / `<inverted ticks>-<id>`: the same entry under the item it concerns (an appointment
  GUID or an Outlook event), so an item's history is one partition read.
Entries never hold private content: ids, actions, outcomes, reasons and errors only; an error is kept
as `error_summary` makes it (bounded, no quoted values or echoed payload: upstream messages can carry
an item's subject or body), whoever built the entry. Retention goes
by day partition: `purge()` (run hourly by the `renew_subscriptions` timer) reads only the day
partitions older than the retention (a PartitionKey range, so its cost is what it deletes, never the
whole log) and deletes each entry with its item twin (same RowKey, partition named in the entry).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.errors import error_summary
from connector.stores.repositories import TableRepository, safe_key

_MAX_TICKS = 10**19


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ActivityEntry:
    direction: str  # to_outlook | to_planning | system
    action: str  # create | update | delete | skip | subscribe | resync | ...
    outcome: str  # applied | skipped | rejected | failed | retrying | poisoned
    resource_no: str = ""
    appointment_guid: str = ""
    event_id: str = ""
    correlation_id: str = ""
    detail: str = ""
    error: str = ""
    latency_ms: int | None = None
    at: datetime = field(default_factory=_now)
    entry_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def __post_init__(self) -> None:
        # Here, not where entries are built: every entry (and the log line made of it) gets the same bound.
        object.__setattr__(self, "error", error_summary(self.error))

    @property
    def item_key(self) -> str:
        return self.appointment_guid.lower() or self.event_id

    def to_row(self) -> dict[str, Any]:
        row = {k: v for k, v in asdict(self).items() if v is not None}
        row["at"] = self.at.isoformat()
        return row

    @classmethod
    def from_row(cls, data: dict[str, Any]) -> ActivityEntry:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["at"] = datetime.fromisoformat(str(data["at"]))
        return cls(**values)


def _row_key(entry: ActivityEntry) -> str:
    ticks = int(entry.at.timestamp() * 1_000_000)
    return f"{_MAX_TICKS - ticks:020d}-{entry.entry_id}"


def _day(moment: datetime) -> str:
    return "d|" + moment.astimezone(UTC).strftime("%Y%m%d")


class ActivityLog:
    """The log itself. Listeners (telemetry's metrics and log line) hear every entry as it is recorded:
    they subscribe to the log, the log knows nothing of them."""

    def __init__(self, table: TableRepository, retention_days: int = 30,
                 listeners: Sequence[Callable[[ActivityEntry], None]] = ()) -> None:
        self._table = table
        self._retention = retention_days
        self._listeners = tuple(listeners)

    def record(self, entry: ActivityEntry) -> ActivityEntry:
        for listener in self._listeners:
            listener(entry)
        self._table.upsert(_day(entry.at), _row_key(entry), entry.to_row())
        self.record_twin(entry)
        return entry

    def record_days(self, entries: Sequence[ActivityEntry]) -> None:
        """Many entries' day rows, one transaction per day and 100 entries; their item twins are
        written with `record_twin` (each its own partition, so the caller may write them side by side)."""
        for entry in entries:
            for listener in self._listeners:
                listener(entry)
        days: dict[str, dict[str, dict[str, Any]]] = {}
        for entry in entries:
            days.setdefault(_day(entry.at), {})[_row_key(entry)] = entry.to_row()
        for day, rows in days.items():
            self._table.upsert_many(day, rows)

    def record_twin(self, entry: ActivityEntry) -> None:
        if entry.item_key:
            self._table.upsert("i|" + safe_key(entry.item_key), _row_key(entry), entry.to_row())

    def recent(self, days: int = 1, now: datetime | None = None) -> Iterator[ActivityEntry]:
        """Entries of the last `days` days, newest first."""
        moment = now or _now()
        for offset in range(days):
            for row in self._table.partition(_day(moment - timedelta(days=offset))):
                yield ActivityEntry.from_row(row.data)

    def history(self, item_key: str) -> list[ActivityEntry]:
        """Every entry about one item (a lower-case appointment GUID, or an event id), newest first."""
        return [ActivityEntry.from_row(r.data) for r in self._table.partition("i|" + safe_key(item_key))]

    def purge(self, now: datetime | None = None) -> int:
        """Delete the days that ended before the retention began; returns how many entries went.
        Entries of the retention's first day stay until that whole day has expired."""
        first_kept = _day((now or _now()) - timedelta(days=self._retention))
        removed = 0
        for row in self._table.query(f"PartitionKey ge 'd|' and PartitionKey lt '{first_kept}'"):
            item_key = ActivityEntry.from_row(row.data).item_key
            if item_key:  # the twin first: a purge cut short leaves the day row to find it again
                self._table.delete("i|" + safe_key(item_key), row.row_key)
            self._table.delete(row.partition_key, row.row_key)
            removed += 1
        return removed
