"""The activity log against Azurite: newest first, per-item history, retention."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connector.config import load_settings
from connector.stores.activity import ActivityEntry, ActivityLog
from connector.stores.repositories import TableRepository
from connector.stores.storage import StorageClients
from devtools.local_settings import local_values


@pytest.fixture()
def log(storage_connection_string: str) -> ActivityLog:
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    table = TableRepository(clients.table("act" + uuid.uuid4().hex[:12]))
    table.ensure()
    return ActivityLog(table, retention_days=7)


def test_entries_come_back_newest_first_with_item_history(log: ActivityLog) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for minute, action in enumerate(["create", "update", "delete"]):
        log.record(ActivityEntry("to_outlook", action, "applied", resource_no="ALICE", appointment_guid="G1",
                                 at=now + timedelta(minutes=minute), latency_ms=120))
    log.record(ActivityEntry("to_planning", "create", "failed", resource_no="BOB", event_id="Ev/1", error="Graph 503",
                             at=now + timedelta(minutes=5)))
    assert [e.action for e in log.recent(now=now + timedelta(minutes=10))] == ["create", "delete", "update", "create"]
    assert [e.action for e in log.history("g1")] == ["delete", "update", "create"]
    [failed] = log.history("Ev/1")
    assert failed.error == "Graph 503" and failed.outcome == "failed" and failed.at == now + timedelta(minutes=5)


def test_purge_removes_whole_expired_days_with_their_item_history(log: ActivityLog) -> None:
    now = datetime(2026, 11, 23, 12, tzinfo=UTC)
    for days_ago in (30, 8, 8):
        log.record(ActivityEntry("to_outlook", "update", "applied", appointment_guid="OLD",
                                 at=now - timedelta(days=days_ago)))
    log.record(ActivityEntry("to_outlook", "create", "applied", appointment_guid="OLD", at=now - timedelta(days=1)))
    log.record(ActivityEntry("system", "subscribe", "applied", at=now - timedelta(days=7, hours=1)))  # retention's first day
    assert log.purge(now=now) == 3
    assert [e.action for e in log.history("old")] == ["create"]  # the item's history lost only the expired entries
    assert sorted(e.action for e in log.recent(days=40, now=now)) == ["create", "subscribe"]
    assert log.purge(now=now) == 0  # nothing left to do: a second run deletes nothing


def test_many_entries_are_written_a_day_at_a_time_and_their_twins_one_by_one(log: ActivityLog) -> None:
    midnight = datetime(2026, 11, 23, tzinfo=UTC)
    entries = [ActivityEntry("to_planning", "create", "applied", resource_no="BOB", event_id=f"Ev/{n}",
                             at=midnight + timedelta(seconds=n - 60)) for n in range(150)]  # two days, 150 rows
    log.record_days(entries)
    for entry in entries:
        log.record_twin(entry)
    assert len(list(log.recent(days=2, now=midnight))) == 150
    assert [e.at for e in log.history("Ev/149")] == [midnight + timedelta(seconds=89)]
