"""How many of the planner's events one calendar lost lately: the mass-change guard's count of the
deletions that arrive one change at a time (webhooks, retries), beside the poll's count per run.

The count is kept per hour with the hour before it, so "recent" covers the last one to two hours: a
burst that straddles the turn of an hour is still one burst. Pure: the store keeps the tally
(`connector.stores.deletion_rate`), the planning worker decides with it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

PERIOD = timedelta(hours=1)


@dataclass(frozen=True)
class DeletionTally:
    period: str  # the start of the current period (ISO, UTC)
    count: int  # deletions counted in it
    previous: int = 0  # deletions counted in the period before it

    @property
    def recent(self) -> int:
        return self.count + self.previous


def period_of(now: datetime) -> str:
    return now.replace(minute=0, second=0, microsecond=0).isoformat()


def counted(tally: DeletionTally | None, now: datetime) -> DeletionTally:
    """The tally with one more deletion now (an old period rolls over, a stale one is forgotten)."""
    current = period_of(now)
    if tally is not None and tally.period == current:
        return replace(tally, count=tally.count + 1)
    previous = tally.count if tally is not None and tally.period == period_of(now - PERIOD) else 0
    return DeletionTally(current, 1, previous)


def over_limit(tally: DeletionTally, limit: int) -> bool:
    """More than `limit` deletions lately (MASS_CHANGE_MAX_ITEMS): the rest waits for an admin."""
    return tally.recent > limit
