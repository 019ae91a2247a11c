"""A bulk re-plan through the whole stack, scaled: 200 appointments over 50 resources by default.

What a person would check on the emulators' counters: one Graph write per (appointment, resource)
change, fewer HTTP round trips than writes (JSON batching), and nothing written when Dime.Scheduler
delivers the same webhooks again. The full 1,000-appointment case takes about 4.5 minutes on the
2-core CI machine (everything but Azurite shares one Python process), so it runs in
`bench/planning_bulk.py` (JSON output); `BULK_APPOINTMENTS=1000 pytest ...` runs it here too.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from devtools.graph_emulator.config import GraphEmulatorConfig
from devtools.local_stack import wait_until
from devtools.planning_bulk import run_bulk
from devtools.planning_tenant import appointment, email, setup_tenant, tag_of
from tests.e2e.conftest import Stack

APPOINTMENTS = int(os.environ.get("BULK_APPOINTMENTS", "200"))
RESOURCES = int(os.environ.get("BULK_RESOURCES", "50"))
BUSY_APPOINTMENTS = 60


@pytest.mark.timeout(900)
def test_bulk_replan_writes_once_per_change_in_fewer_round_trips(start_stack: Callable[..., Stack]) -> None:
    result = run_bulk(start_stack(), APPOINTMENTS, RESOURCES)
    # Every appointment is in its resource's calendar, once.
    assert result.events_per_resource == {no: APPOINTMENTS // RESOURCES for no in result.resources}
    # One Graph write per (appointment, resource) change: creates, then the moves.
    assert result.create_writes == APPOINTMENTS
    assert result.move_writes == APPOINTMENTS
    # Batching: fewer HTTP round trips to Graph than writes.
    assert result.create_round_trips < result.create_writes
    assert result.move_round_trips < result.move_writes
    # Dime.Scheduler delivering the same webhooks again writes nothing.
    assert result.replay_writes == 0


@pytest.mark.timeout(300)
@pytest.mark.parametrize("all_at_once", [False, True], ids=["graph-runs-4-of-a-batch-at-a-time", "graph-runs-a-batch-at-once"])
def test_one_busy_mailbox_gets_full_batches_within_its_concurrency(start_stack: Callable[..., Stack],
                                                                   all_at_once: bool) -> None:
    """A planner fills one technician's weeks at once. Graph runs 4 of a batch's Outlook requests at a time,
    so the connector sends a busy mailbox's writes up to 20 to a batch, and never trips the mailbox's limit
    of 4 concurrent requests; where Graph runs a whole batch at once (as before 2022), the requests past 4
    are throttled, retried, and the mailbox's later batches hold 4: every appointment still lands once."""
    stack = start_stack(graph_config=GraphEmulatorConfig(batch_concurrency=20 if all_at_once else 4))
    tenant = setup_tenant(stack, ["BUSY"])
    try:
        # Each request holds its mailbox slot a while, as a real mailbox does, so the writes queue up.
        stack.graph_control("POST", "/faults", json={"user": email("BUSY"), "latencyMs": 150}).raise_for_status()
        stack.graph_control("POST", "/stats/reset").raise_for_status()
        base = (datetime.now(UTC) + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
        bodies = [appointment(f"Busy {i}", ["BUSY"], start=base + timedelta(days=i // 10, hours=i % 10), hours=1)
                  for i in range(BUSY_APPOINTMENTS)]
        with ThreadPoolExecutor(8) as pool:
            guids = set(pool.map(tenant.create, bodies))

        def subjects() -> list[str]:  # read from the emulator's store: the test's reads take no mailbox slot
            dump = stack.graph_control("GET", "/events", params={"user": email("BUSY")}).json()["value"]
            return sorted(e["subject"] for e in dump)

        wanted = sorted(b["Subject"] for b in bodies)
        wait_until(lambda: subjects() == wanted and tenant.queue_idle(), timeout=240, interval=0.5,
                   what="every appointment in the calendar, once")
        assert len(guids) == BUSY_APPOINTMENTS
        assert sorted(tag_of(e) for e in tenant.events("BUSY")) == sorted(guids)  # each its own appointment
        stats = stack.graph_control("GET", "/stats").json()
        if all_at_once:
            assert stats["throttled"] > 0  # the variant did bite: its throttled writes were retried
        else:
            assert stats["throttled"] == 0
            assert stats["roundTrips"] < BUSY_APPOINTMENTS / 4  # more than 4 writes to a round trip
    finally:
        tenant.close()
