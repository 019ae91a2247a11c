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

import pytest

from devtools.planning_bulk import run_bulk
from tests.e2e.conftest import Stack

APPOINTMENTS = int(os.environ.get("BULK_APPOINTMENTS", "200"))
RESOURCES = int(os.environ.get("BULK_RESOURCES", "50"))


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
