"""The deterministic simulation (`devtools/sim`): the real workers against in-memory Graph, Dime.Scheduler,
tables and queues, thousands of seeded schedules with faults at every I/O point, invariants over the
whole world after each. `SIM_SEEDS` sets how many seeds (default 2,000); a failing seed prints the
command that replays it with its trace."""

from __future__ import annotations

import logging
import os

import pytest

from devtools.sim.runner import kind, reproduction, run_many
from devtools.sim.world import Sim, check_invariants, run_seed

SEEDS = int(os.environ.get("SIM_SEEDS", "2000"))


@pytest.mark.timeout(1200)  # 2,000 seeds take about 6 minutes on two quiet cores; a loaded machine is slower
def test_thousands_of_faulted_schedules_keep_every_invariant() -> None:
    summary = run_many(range(SEEDS))
    report = [f"seed {seed}: {kind(v[0])}\n    {reproduction(seed)}" for seed, v in sorted(summary.failing.items())[:15]]
    assert not summary.failing, f"{len(summary.failing)} of {SEEDS} seeds broke an invariant:\n" + "\n".join(report)


def test_the_same_seed_replays_the_same_run() -> None:
    logging.disable(logging.CRITICAL)
    first, second = run_seed(4242, trace=True), run_seed(4242, trace=True)
    assert first.log == second.log and first.violations == second.violations
    assert len(first.log) > 100  # it did something: planners, people, deliveries, timers
    assert run_seed(4243, trace=True).log != first.log


def test_seeds_draw_faults_crashes_and_drops() -> None:
    """The schedules are hostile: across a few seeds, every kind of fault happens."""
    logging.disable(logging.CRITICAL)
    logs = "\n".join(line for seed in range(40) for line in run_seed(seed, trace=True).log)
    for what in ("fault before graph", "fault after graph", "CRASH process", "drop DS webhook", "drop Graph notification",
                 "429", "NetworkError", "Dime.Scheduler is unavailable", "ds list_resources leaves out",
                 "hold held", "missing skipped", "edits connector event", "deletes connector event",
                 "at the same time", "to_outlook conflict applied", "412, the changeKey moved",
                 "asks to reauthorize subscription", "graph removes subscription", "Graph lifecycle subscriptionRemoved",
                 "missed", "Graph lifecycle missed", "attacker posts a forged updated",
                 "storage fault before", "storage fault after", "invocation failed: HttpResponseError",
                 "invocation failed: ServiceRequestError", "invocation failed: ServiceResponseError"):
        assert what in logs, what


def test_the_invariants_see_what_a_user_would_see() -> None:
    """A checker that cannot fail proves nothing: break the world by hand and it must say so."""
    logging.disable(logging.CRITICAL)
    sim = Sim(7)

    async def settle() -> None:
        await sim.main()

    sim_run = run_seed(7)
    assert sim_run.violations == []
    # A quiet world, then one planner appointment whose event nobody wrote, and one stray connector event.
    from datetime import timedelta

    from devtools.sim.clock import EPOCH
    from devtools.sim.planning import BoardAppointment, FakeResource
    from devtools.sim.world import RESOURCES

    for number in RESOURCES:
        sim.planning.resources[number] = FakeResource(number, f"{number.lower()}@contoso.sim")
        sim.graph.add_user(sim.user_of(number), f"{number.lower()}@contoso.sim")
    assert check_invariants(sim) == []
    sim.planning.appointments_by_guid["a" * 32] = BoardAppointment("a" * 32, "Job", EPOCH, EPOCH + timedelta(hours=1),
                                                                   ["ALICE"])
    sim.graph.new_event(sim.user_of("BOB"), {"subject": "x", "start": {"dateTime": EPOCH.isoformat()},
                                             "end": {"dateTime": (EPOCH + timedelta(hours=1)).isoformat()},
                                             "singleValueExtendedProperties": [
                                                 {"id": __import__("connector.sync.status").sync.status.TAG_PROPERTY_ID,
                                                  "value": "b" * 32}]})
    found = check_invariants(sim)
    assert any("ALICE: appointment aaaaaaaa has 0 event(s)" in v for v in found), found
    assert any("BOB: 1 orphan connector event(s)" in v for v in found), found
    sim.storage.queue("planning-changes-poison").send_message("{}")
    assert any("parked on the poison queue" in v for v in check_invariants(sim))
    sim.loop.close()
