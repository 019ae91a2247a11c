"""The activity log against Azurite: newest first, per-item history, retention."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connector.config import load_settings
from connector.errors import MAX_ERROR_CHARS, GraphError, PlanningError
from connector.gateways.planning import read_import_answer
from connector.stores.activity import ActivityEntry, ActivityLog
from connector.stores.repositories import TableRepository
from connector.stores.storage import StorageClients
from connector.telemetry import on_activity
from devtools.local_settings import local_values

SUBJECT = "Divorce lawyer, room 4"  # a private item's subject
BODY = "Bring the custody papers"


@pytest.fixture()
def log(storage_connection_string: str) -> ActivityLog:
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    table = TableRepository(clients.table("act" + uuid.uuid4().hex[:12]))
    table.ensure()
    return ActivityLog(table, retention_days=7, listeners=[on_activity])  # as the services wire it


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


def _echoing_errors() -> list[Exception]:
    """Upstream failures whose message quotes the item and echoes the whole request, 100 KB of it, and
    one that only quotes it (short enough for a table row as it is)."""
    request = {"Subject": SUBJECT, "Body": BODY * 4200, "Location": "Court"}
    answer = {"StatusCode": 400, "Content": {"Error": "Validation failed",
                                             "Description": f"appointment '{SUBJECT}' could not be saved, "
                                                            f"request was {json.dumps(request)}"}}
    errors: list[Exception] = []
    try:
        read_import_answer(200, answer)  # what the Dime.Scheduler gateway raises for such an answer
    except PlanningError as exc:
        errors.append(exc)
    errors.append(GraphError(400, "ErrorInvalidRequest", f'The value "{SUBJECT}" of subject is invalid.\n'
                                                         + json.dumps(request)))
    errors.append(PlanningError(409, f"import: appointment '{SUBJECT}' overlaps another"))  # a short one too
    return errors


def test_an_upstream_error_echoing_an_item_is_recorded_bounded_and_without_it(
        log: ActivityLog, caplog: pytest.LogCaptureFixture) -> None:
    for n, error in enumerate(_echoing_errors()):
        assert (len(str(error)) > 100_000 or n == 2) and SUBJECT in str(error)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="connector"):
            log.record(ActivityEntry("to_planning", "import", "failed", resource_no="ALICE", event_id=f"Ev/secret{n}",
                                     error=str(error)))
        [stored] = log.history(f"Ev/secret{n}")  # read back from the table
        [line] = [r.getMessage() for r in caplog.records if "import failed" in r.getMessage()]
        for recorded in (stored.error, line.split(" error=", 1)[1]):
            assert len(recorded) <= MAX_ERROR_CHARS, len(recorded)
            assert SUBJECT not in recorded and "Divorce" not in recorded and BODY not in recorded
            assert "\n" not in recorded
        assert stored.error.startswith(str(error)[:30])  # the status and code stay: what an operator acts on
