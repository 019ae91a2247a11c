"""Planning changes that gave up after every attempt met a fault, kept for the poll to try once more
(rows `given-up` / `<appointment guid>|<restored resource>` in the `cursors` table).

A change parked after `WORK_MAX_ATTEMPTS` faults (an hour of Graph or Dime.Scheduler trouble) is on
the monitor, and most such changes the poll would find again by itself: the copies still differ from
the board. A restore does not: the technician deleted or edited the planner's event, the copy still
matches the board, and the delta round that saw it has moved on, so the event would stay missing
until the next full round (up to a day). So every change that gave up on faults is remembered here
and the next `poll_planning` enqueues it again with a fresh attempt counter (seed 99339). A change
refused as permanent (a 4xx) is not: trying it every five minutes would only park it again.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

from connector.messages import InvalidMessage, PlanningChange
from connector.stores.repositories import ConcurrencyConflict, TableRepository, safe_key

PARTITION = "given-up"


@dataclass(frozen=True)
class GivenUp:
    message: PlanningChange  # as it was first sent: a fresh attempt counter, no snapshot
    key: str
    etag: str


def remember(cursors: TableRepository, message: PlanningChange) -> None:
    """Keep a change that gave up on faults (the webhook's snapshot is left out: the worker reads the
    appointment anyway, and a row's text has a smaller limit than a queue message)."""
    again = replace(message, attempt=0, throttled=0, appointment=None)
    cursors.upsert(PARTITION, safe_key(f"{message.appointment_guid.lower()}|{message.restore_resource}"),
                   {"Message": again.to_json()})


def waiting(cursors: TableRepository) -> list[GivenUp]:
    """Every remembered change (an unreadable row is dropped: it can never be sent)."""
    found = []
    for row in cursors.partition(PARTITION):
        try:
            found.append(GivenUp(PlanningChange.from_json(str(row.data.get("Message") or "")), row.row_key, row.etag))
        except InvalidMessage:
            forget(cursors, row.row_key, row.etag)
    return found


def forget(cursors: TableRepository, key: str, etag: str) -> None:
    """Sent again: the row goes, unless the change gave up once more meanwhile (a newer row)."""
    with contextlib.suppress(ConcurrencyConflict):
        cursors.delete(PARTITION, key, etag)
