"""Retry policy: transient failures come back later with Retry-After, permanent ones are parked visibly."""

from __future__ import annotations

import time
import uuid

import pytest

from connector.config import load_settings
from connector.errors import GraphError, PlanningError
from connector.messages import PlanningChange
from connector.stores import given_up
from connector.stores.activity import ActivityEntry, ActivityLog
from connector.stores.repositories import TableRepository
from connector.stores.storage import StorageClients, poison_queue_name
from connector.workers.retry import (
    MAX_THROTTLED_WAITS,
    Transient,
    backoff_seconds,
    classify,
    gives_up_on_faults,
    handle_failure,
)
from devtools.local_settings import local_values


@pytest.fixture()
def clients(storage_connection_string: str) -> StorageClients:
    return StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)


@pytest.fixture()
def queue(clients: StorageClients) -> str:
    name = "work" + uuid.uuid4().hex[:10]
    clients.queue(name).create_queue()
    clients.queue(poison_queue_name(name)).create_queue()
    return name


@pytest.fixture()
def activity(clients: StorageClients) -> ActivityLog:
    table = TableRepository(clients.table("act" + uuid.uuid4().hex[:10]))
    table.ensure()
    return ActivityLog(table)


def entry() -> ActivityEntry:
    return ActivityEntry("to_outlook", "create", "applied", resource_no="ALICE", appointment_guid="g1")


def test_throttled_change_comes_back_after_retry_after(clients: StorageClients, queue: str, activity: ActivityLog) -> None:
    failure = classify(GraphError(429, "TooManyRequests", "slow down", retry_after=3))
    assert failure is not None and failure.transient
    outcome = handle_failure(clients, activity, queue, PlanningChange("g1", "created"), failure, 8, entry())
    assert outcome.outcome == "retrying" and outcome.delay_seconds == 3
    assert clients.queue(queue).peek_messages() == []  # hidden for Retry-After
    [logged] = activity.history("g1")
    assert logged.outcome == "retrying" and "429" in logged.error and "attempt 1 of 8" in logged.detail


def test_permanent_failure_is_parked_on_the_poison_queue_and_logged(clients: StorageClients, queue: str,
                                                                    activity: ActivityLog) -> None:
    failure = classify(GraphError(400, "ErrorInvalidRequest", "bad body"))
    assert failure is not None and not failure.transient
    outcome = handle_failure(clients, activity, queue, PlanningChange("g1", "created"), failure, 8, entry())
    assert outcome.outcome == "poisoned"
    [parked] = clients.queue(poison_queue_name(queue)).peek_messages()
    assert PlanningChange.from_json(parked.content).appointment_guid == "g1"
    [logged] = activity.history("g1")
    assert logged.outcome == "failed" and "cannot be applied" in logged.detail


def test_transient_failure_gives_up_after_the_last_attempt(clients: StorageClients, queue: str,
                                                           activity: ActivityLog) -> None:
    failure = classify(PlanningError(503, "down"))
    assert failure is not None
    outcome = handle_failure(clients, activity, queue, PlanningChange("g1", "created", attempt=7), failure, 8, entry())
    assert outcome.outcome == "poisoned"
    assert "gave up after 8 attempts" in activity.history("g1")[0].detail


def test_waiting_out_throttling_does_not_spend_attempts(clients: StorageClients, queue: str,
                                                        activity: ActivityLog) -> None:
    """A busy mailbox answering 429 on the last attempt is waited out, not parked; only when it stays
    throttled for MAX_THROTTLED_WAITS rounds does the change count attempts again and end visibly."""
    failure = classify(GraphError(429, "ApplicationThrottled", "MailboxConcurrency", retry_after=0))
    assert failure is not None and failure.throttled
    outcome = handle_failure(clients, activity, queue, PlanningChange("g1", "created", attempt=7), failure, 8, entry())
    assert outcome.outcome == "retrying" and outcome.delay_seconds == 1
    assert clients.queue(poison_queue_name(queue)).peek_messages() == []
    time.sleep(1.5)  # hidden for the one second the 429 asked for
    [again] = list(clients.queue(queue).receive_messages(max_messages=1))
    resent = PlanningChange.from_json(again.content)
    assert (resent.attempt, resent.throttled) == (7, 1)
    worn_out = PlanningChange("g1", "created", attempt=7, throttled=MAX_THROTTLED_WAITS)
    assert handle_failure(clients, activity, queue, worn_out, failure, 8, entry()).outcome == "poisoned"
    assert not classify(GraphError(503, "ServiceUnavailable", "down")).throttled  # type: ignore[union-attr]


def test_unknown_exceptions_are_left_to_the_host() -> None:
    assert classify(ValueError("bug")) is None
    transient = classify(Transient("mailbox busy", retry_after=2))
    assert transient is not None and transient.transient and transient.retry_after == 2


def test_backoff_honours_retry_after_and_caps() -> None:
    assert backoff_seconds(0, None) == 5 and backoff_seconds(2, None) == 20
    assert backoff_seconds(0, 0.4) == 1 and backoff_seconds(0, 12.5) == 13
    assert backoff_seconds(30, None) == 900 and backoff_seconds(0, 10_000) == 900


def test_parking_creates_a_missing_poison_queue(clients: StorageClients, activity: ActivityLog) -> None:
    queue = "fresh" + uuid.uuid4().hex[:10]  # neither the queue nor its poison queue exists yet
    failure = classify(GraphError(400, "ErrorInvalidRequest", "bad body"))
    assert failure is not None
    assert handle_failure(clients, activity, queue, PlanningChange("g2", "created"), failure, 8, entry()).outcome == "poisoned"
    assert len(clients.queue(poison_queue_name(queue)).peek_messages()) == 1


def test_the_default_attempts_ride_out_an_hour_long_outage_before_parking() -> None:
    """A service down for an hour (maintenance, an incident) must not park every change made meanwhile:
    with the default WORK_MAX_ATTEMPTS the back-offs before the last attempt add up to more than an hour."""
    attempts = load_settings(local_values()).work_max_attempts
    waited = sum(backoff_seconds(attempt, None) for attempt in range(attempts - 1))
    assert waited >= 3600, f"{attempts} attempts wait only {waited} s"


def test_only_a_change_out_of_attempts_on_faults_counts_as_given_up() -> None:
    down, refused = classify(PlanningError(503, "down")), classify(GraphError(400, "ErrorInvalidRequest", "bad body"))
    throttled = classify(GraphError(429, "ApplicationThrottled", "busy", retry_after=1))
    assert down is not None and refused is not None and throttled is not None
    assert gives_up_on_faults(PlanningChange("g1", "restore", restore_resource="ALICE", attempt=11), down, 12)
    assert not gives_up_on_faults(PlanningChange("g1", "created", attempt=10), down, 12)  # one attempt left
    assert not gives_up_on_faults(PlanningChange("g1", "created", attempt=11), refused, 12)  # permanent: parked at once
    assert not gives_up_on_faults(PlanningChange("g1", "created", attempt=11), throttled, 12)  # waits the 429 out
    assert gives_up_on_faults(PlanningChange("g1", "created", attempt=11, throttled=MAX_THROTTLED_WAITS), throttled, 12)


def test_changes_that_gave_up_are_kept_per_appointment_and_resource_until_sent_again(clients: StorageClients) -> None:
    cursors = TableRepository(clients.table("cur" + uuid.uuid4().hex[:10]))
    cursors.ensure()
    snapshot = {"Id": "x" * 40_000}  # the webhook's snapshot is not kept (a row's text holds 32K characters)
    given_up.remember(cursors, PlanningChange("G1", "restore", appointment=snapshot, attempt=12, throttled=3,
                                              restore_resource="ALICE", restore_event_id="AAMk/1"))
    given_up.remember(cursors, PlanningChange("g1", "restore", attempt=12, restore_resource="BOB"))
    given_up.remember(cursors, PlanningChange("g2", "updated", attempt=12))
    given_up.remember(cursors, PlanningChange("g2", "updated", attempt=12))  # gave up again: still one row
    waiting = given_up.waiting(cursors)
    assert sorted((w.message.appointment_guid, w.message.restore_resource) for w in waiting) == [
        ("G1", "ALICE"), ("g1", "BOB"), ("g2", "")]
    alice = next(w for w in waiting if w.message.restore_resource == "ALICE")
    assert (alice.message.attempt, alice.message.throttled, alice.message.appointment) == (0, 0, None)
    assert alice.message.restore_event_id == "AAMk/1"
    given_up.remember(cursors, PlanningChange("G1", "restore", attempt=12, restore_resource="ALICE",
                                              restore_event_id="AAMk/2"))  # gave up once more meanwhile
    for item in waiting:
        given_up.forget(cursors, item.key, item.etag)
    [left] = given_up.waiting(cursors)
    assert left.message.restore_event_id == "AAMk/2"  # the newer row stays for the next poll
