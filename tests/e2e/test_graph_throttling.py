"""End to end against Graph's spontaneous 412s and Outlook throttling (issue 10, points 7-8): a planner's
changes meet `412 ErrorIrresolvableConflict` on PATCH, or `429 ApplicationThrottled` / `TooManyRequests`
with (fractional) Retry-After, and still all reach Outlook: none dropped, none parked."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE, poison_queue_name
from devtools.graph_emulator import GraphEmulatorConfig
from devtools.planning_tenant import Tenant, appointment, setup_tenant
from tests.e2e.conftest import Stack, wait_until

PEOPLE = ["KIM", "LEO", "MIA", "NED"]
TIMEOUT = 90  # a poll bound for a busy shared machine, not a timing assertion
EVENT_PATCH = "/users/{id}/events/{id}"


@pytest.fixture(scope="module")
def tenant(start_stack: Callable[..., Stack]) -> Iterator[Tenant]:
    stack = start_stack(GraphEmulatorConfig(reauthorization_interval_seconds=None), WORK_MAX_ATTEMPTS="8")
    tenant = setup_tenant(stack, PEOPLE)
    yield tenant
    tenant.close()


@pytest.fixture(autouse=True)
def clean_graph(tenant: Tenant) -> Iterator[None]:
    yield
    control = tenant.stack.graph_control
    control("DELETE", "/faults")
    control("POST", "/throttle", json={"budget": 10_000, "windowSeconds": 600, "concurrencyRetryAfter": 0.5,
                                       "fractionalRetryAfter": True, "errorCode": "ApplicationThrottled"})


def parked(tenant: Tenant) -> int:
    queues = tenant.stack.services.work_queues
    return queues.depth(poison_queue_name(PLANNING_CHANGES_QUEUE)) + queues.depth(poison_queue_name(EXCHANGE_CHANGES_QUEUE))


def _utc_start(event: dict[str, Any]) -> str:
    return str(event["start"]["dateTime"])[:19]


def move(tenant: Tenant, guid: str, start: datetime) -> str:
    tenant.patch(guid, {"StartDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "EndDate": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    return start.strftime("%Y-%m-%dT%H:%M:%S")


def stored_subjects(tenant: Tenant, person: str) -> list[str]:
    """The subjects in a calendar as stored, read from the emulator's control plane: a person's own
    reading is not the connector's app, so it must not spend the app's throttling budget."""
    response = tenant.stack.graph_control("GET", "/events", params={"user": tenant.user_ids[person]})
    response.raise_for_status()
    return [str(e["subject"]) for e in response.json()["value"]]


def wait_subjects(tenant: Tenant, person: str, subjects: list[str]) -> None:
    wait_until(lambda: sorted(s for s in stored_subjects(tenant, person) if s in subjects) == sorted(subjects),
               TIMEOUT, interval=0.3, what=f"{len(subjects)} events in {person}'s calendar")


def graph_stats(tenant: Tenant) -> dict[str, Any]:
    return dict(tenant.stack.graph_control("GET", "/stats").json())


# -- 7. PATCH answers 412 ErrorIrresolvableConflict on its own ---------------------------------------------------------
@pytest.mark.parametrize("fault", [{"count": 4}, {"share": 0.5}], ids=["next-4-patches", "half-the-patches"])
def test_a_move_meets_irresolvable_conflicts_and_still_reaches_outlook(tenant: Tenant, fault: dict[str, Any]) -> None:
    start = (datetime.now(UTC) + timedelta(days=4)).replace(hour=8, minute=0, second=0, microsecond=0)
    guid = tenant.create(appointment("Pump overhaul", ["KIM", "LEO"], start=start))
    tenant.wait_events("KIM", guid, 1)
    tenant.wait_events("LEO", guid, 1)
    fired_before = graph_stats(tenant)["faultsInjected"]
    tenant.stack.graph_control("POST", "/faults", json={
        "method": "PATCH", "route": EVENT_PATCH, "status": 412, "code": "ErrorIrresolvableConflict", **fault,
    }).raise_for_status()
    for hours in (2, 4, 6):  # the planner moves it three times
        want = move(tenant, guid, start + timedelta(hours=hours))
        for person in ("KIM", "LEO"):
            tenant.wait_events(person, guid, 1, check=lambda e, w=want: _utc_start(e) == w, timeout=TIMEOUT,
                               what=f"the move to {want} in {person}'s calendar")
    assert graph_stats(tenant)["faultsInjected"] > fired_before  # the 412s did happen
    wait_until(tenant.queue_idle, TIMEOUT, what="the planning queue drained")
    assert parked(tenant) == 0
    failed = [e for e in tenant.stack.services.activity.history(guid) if e.outcome == "failed"]
    assert failed == []


# -- 8. Outlook throttling: ApplicationThrottled / TooManyRequests with Retry-After ----------------------------------------
@pytest.mark.parametrize("throttle", [
    {"errorCode": "ApplicationThrottled", "fractionalRetryAfter": True},
    {"errorCode": "TooManyRequests", "fractionalRetryAfter": False},
], ids=["application-throttled-fractional", "too-many-requests-whole-seconds"])
def test_a_burst_over_the_mailbox_budget_all_reaches_outlook(tenant: Tenant, throttle: dict[str, Any]) -> None:
    person = "MIA" if throttle["fractionalRetryAfter"] else "NED"
    # 10,000 per 10 minutes scaled down: 6 requests per 2 s for each mailbox.
    tenant.stack.graph_control("POST", "/throttle", json={"budget": 6, "windowSeconds": 2, **throttle}).raise_for_status()
    throttled_before = graph_stats(tenant)["throttled"]
    day = (datetime.now(UTC) + timedelta(days=6)).replace(hour=7, minute=0, second=0, microsecond=0)
    subjects = [f"Inspection {i}" for i in range(14)]
    guids = [tenant.create(appointment(subject, [person], start=day + timedelta(hours=i), hours=1))
             for i, subject in enumerate(subjects)]
    wait_subjects(tenant, person, subjects)
    assert graph_stats(tenant)["throttled"] > throttled_before  # the burst was throttled
    wait_until(tenant.queue_idle, TIMEOUT, what="the planning queue drained")
    assert parked(tenant) == 0
    retried = [e for g in guids for e in tenant.stack.services.activity.history(g) if e.outcome == "retrying"]
    assert retried and all("429" in e.error for e in retried)
    assert not [e for g in guids for e in tenant.stack.services.activity.history(g) if e.outcome == "failed"]


def test_concurrency_throttling_with_a_fractional_retry_after(tenant: Tenant) -> None:
    # Every request to KIM's mailbox is slow, so the connector's reads and the batch's writes meet
    # the 4-concurrent-requests limit: 429 ApplicationThrottled with Retry-After "0.5".
    tenant.stack.graph_control("POST", "/faults", json={"user": tenant.user_ids["KIM"], "latencyMs": 400}).raise_for_status()
    tenant.stack.graph_control("POST", "/throttle", json={"concurrency": 2}).raise_for_status()
    throttled_before = graph_stats(tenant)["throttled"]
    try:
        day = (datetime.now(UTC) + timedelta(days=8)).replace(hour=7, minute=0, second=0, microsecond=0)
        subjects = [f"Visit {i}" for i in range(8)]
        for i, subject in enumerate(subjects):
            tenant.create(appointment(subject, ["KIM"], start=day + timedelta(hours=i), hours=1))
        wait_subjects(tenant, "KIM", subjects)
    finally:
        tenant.stack.graph_control("POST", "/throttle", json={"concurrency": 4}).raise_for_status()
    assert graph_stats(tenant)["throttled"] > throttled_before  # $batch runs 4 at a time: 2 of them over the limit
    wait_until(tenant.queue_idle, TIMEOUT, what="the planning queue drained")
    assert parked(tenant) == 0
