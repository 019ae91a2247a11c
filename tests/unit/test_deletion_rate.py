"""The mass-change guard's count of deletions per calendar (`connector.sync.deletion_rate`) and where an
appointment's events are (`known_span`): pure, no storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from connector.sync.deletion_rate import DeletionTally, counted, over_limit
from connector.sync.status import OutlookCopy, known_span

NOON = datetime(2026, 3, 2, 12, 10, tzinfo=UTC)


def test_deletions_count_within_the_hour_and_the_hour_before() -> None:
    tally = None
    for minutes in (0, 20, 40):
        tally = counted(tally, NOON + timedelta(minutes=minutes))
    assert tally == DeletionTally("2026-03-02T12:00:00+00:00", 3, 0)
    tally = counted(tally, NOON + timedelta(minutes=55))  # 13:05: a burst across the hour is one burst
    assert tally.count == 1 and tally.previous == 3 and tally.recent == 4
    assert over_limit(tally, 3) and not over_limit(tally, 4)


def test_a_stale_tally_is_forgotten() -> None:
    old = DeletionTally("2026-03-02T09:00:00+00:00", 40, 7)
    assert counted(old, NOON) == DeletionTally("2026-03-02T12:00:00+00:00", 1, 0)


def test_the_known_span_covers_the_copies_events_with_a_days_slack() -> None:
    copies = [OutlookCopy("g", "ALICE", "u1", "t", "e1", starts_at="2026-03-03T08:00:00", ends_at="2026-03-03T09:00:00"),
              OutlookCopy("g", "BOB", "u2", "t", "e2", starts_at="2026-03-04T00:00:00", ends_at="2026-03-05T00:00:00"),
              OutlookCopy("g", "CAROL", "u3", "t")]  # pending: no span
    span = known_span(copies)
    assert span is not None and span.resource_nos == ("ALICE", "BOB")
    assert span.start == datetime(2026, 3, 2, 8, tzinfo=UTC) and span.end == datetime(2026, 3, 6, tzinfo=UTC)
    assert known_span(copies[2:]) is None
