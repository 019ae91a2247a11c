"""The recent deletions of the planner's events per calendar (rows `deletions` / `<resource no>` in the
`cursors` table; the tally is `connector.sync.deletion_rate`). One row per resource, replaced by ETag:
two workers counting at once both count."""

from __future__ import annotations

from datetime import datetime

from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, Row, TableRepository, safe_key
from connector.sync.deletion_rate import DeletionTally, counted

PARTITION = "deletions"
_TRIES = 8  # concurrent counters of one calendar; past this the caller's change is retried as a whole


def _tally(row: Row | None) -> DeletionTally | None:
    if row is None:
        return None
    d = row.data
    return DeletionTally(str(d.get("Period") or ""), int(d.get("Count") or 0), int(d.get("Previous") or 0))


def count_deletion(cursors: TableRepository, resource_no: str, now: datetime) -> DeletionTally:
    """Count one deletion in the resource's calendar; the tally with it."""
    key = safe_key(resource_no)
    for attempt in range(_TRIES):
        row = cursors.get(PARTITION, key)
        tally = counted(_tally(row), now)
        data = {"Period": tally.period, "Count": tally.count, "Previous": tally.previous}
        try:
            if row is None:
                cursors.insert(PARTITION, key, data)
            else:
                cursors.replace(PARTITION, key, data, row.etag)
            return tally
        except (AlreadyExists, ConcurrencyConflict):
            if attempt == _TRIES - 1:
                raise
    raise AssertionError("unreachable")
