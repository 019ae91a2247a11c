"""The mass-change guard in the simulated world (hole 1 of issue 11), one hand-written situation each:
the real workers meet a partial resource list, a silent bulk cancellation on the board and a person
clearing their calendar. Each is held (nothing removed, whatever message asks), then released by an
admin and applied; `run_scenario` then checks every invariant with nothing excused."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

from connector.config import MassChangeGuard
from connector.messages import PlanningChange
from connector.stores.holds import HoldKind
from connector.stores.registry import Status
from connector.workers.holds import release_hold
from devtools.sim.clock import EPOCH
from devtools.sim.planning import BoardAppointment
from devtools.sim.world import Sim, _tag, run_scenario


def _limit(sim: Sim, max_items: int) -> None:
    """MASS_CHANGE_MAX_ITEMS for this world (every process, and those started after a crash)."""
    sim.settings = replace(sim.settings, mass_change=MassChangeGuard(max_items=max_items))
    for process in sim.processes:
        process.services.settings = sim.settings


async def _timer(sim: Sim, name: str) -> None:
    sim.run_timer(name)
    await sim.drain()


async def _release_all(sim: Sim) -> None:
    """An admin releases every held change (through the simulated I/O, like any other work)."""
    process = sim.processes[0]
    for hold in process.services.holds.held():
        sim._spawn(process, release_hold(process.services, hold, "Ada Admin"), None)
        await sim.drain()


def _events(sim: Sim, resource_no: str) -> list[dict[str, object]]:
    return [e for e in sim.graph.mailboxes[sim.user_of(resource_no)].events.values() if _tag(e)]


def _board(sim: Sim, resource_no: str) -> list[BoardAppointment]:
    return [a for a in sim.planning.appointments_by_guid.values() if a.from_outlook and resource_no in a.resources]


def _appointments(sim: Sim, resource_no: str, count: int) -> list[BoardAppointment]:
    made = []
    for i in range(count):
        start = EPOCH + timedelta(days=1, hours=i - EPOCH.hour + 8)
        appointment = BoardAppointment(str(uuid.UUID(int=i + 1)), f"Job {i}", start, start + timedelta(hours=1),
                                       [resource_no])
        sim.planning.plan(appointment, "created")
        made.append(appointment)
    return made


def test_a_partial_resource_list_on_two_runs_is_held_and_nothing_leaves() -> None:
    seen: dict[str, object] = {}

    async def script(sim: Sim) -> None:
        _appointments(sim, "ALICE", 2)
        await sim.drain()
        events = {r: len(_events(sim, r)) for r in ("ALICE", "BOB")}
        sim.planning.hidden = {"ALICE", "BOB"}  # two of three: more than 20 %, and at least 2
        await _timer(sim, "sync_resources")
        registry = sim.processes[0].services.registry
        seen["missing"] = sorted(r.resource_no for r in registry.all() if r.missing_since is not None)
        await _timer(sim, "sync_resources")
        holds = sim.processes[0].services.holds.held()
        seen["held"] = [(h.kind, sorted(h.resource_nos)) for h in holds]
        await _timer(sim, "poll_planning")
        seen["kept"] = all(registry.get(r).status == Status.TRACKED for r in ("ALICE", "BOB"))  # type: ignore[union-attr]
        seen["events"] = {r: len(_events(sim, r)) for r in ("ALICE", "BOB")} == events
        sim.planning.hidden = set()  # the list is whole again: the next run resolves the hold

    sim, violations = run_scenario(script)
    assert violations == []
    assert seen == {"missing": ["ALICE", "BOB"], "held": [(HoldKind.UNTRACK, ["ALICE", "BOB"])], "kept": True,
                    "events": True}
    assert sim.processes[0].services.holds.held() == []


def test_a_released_untrack_of_a_partial_list_is_applied_and_the_calendars_follow() -> None:
    seen: dict[str, object] = {}

    async def script(sim: Sim) -> None:
        _appointments(sim, "ALICE", 2)
        await sim.drain()
        sim.planning.hidden = {"ALICE", "BOB"}
        await _timer(sim, "sync_resources")
        await _timer(sim, "sync_resources")
        await _release_all(sim)
        registry = sim.processes[0].services.registry
        seen["untracked"] = sorted(r.resource_no for r in registry.all() if r.status == Status.UNTRACKED)
        seen["board"] = _board(sim, "ALICE") + _board(sim, "BOB")
        seen["events"] = _events(sim, "ALICE")  # the release enqueued their deletion: done after the drain
        sim.planning.hidden = set()  # back in Dime.Scheduler: the final run tracks them again

    _, violations = run_scenario(script)
    assert violations == []
    assert seen == {"untracked": ["ALICE", "BOB"], "board": [], "events": []}


def test_a_silent_bulk_cancellation_is_held_whichever_message_asks_until_released() -> None:
    seen: dict[str, object] = {}

    async def script(sim: Sim) -> None:
        _limit(sim, 2)
        cancelled = _appointments(sim, "CAROL", 4)
        await sim.drain()
        for appointment in cancelled:  # a back-office bulk delete: no webhooks
            sim.planning.appointments_by_guid.pop(appointment.guid)
        await _timer(sim, "poll_planning")
        [hold] = sim.processes[0].services.holds.held()
        seen["hold"] = (hold.kind, hold.resource_nos, hold.items)
        services = sim.processes[1].services
        services.work_queues.send_planning_change(PlanningChange(cancelled[0].guid, "deleted"))
        await sim.drain()
        seen["kept"] = len(_events(sim, "CAROL"))
        await _release_all(sim)
        seen["after"] = len(_events(sim, "CAROL"))

    sim, violations = run_scenario(script)
    assert violations == []
    assert seen == {"hold": (HoldKind.CALENDAR, ("CAROL",), 4), "kept": 4, "after": 0}
    deletes = [e for e in sim.processes[0].services.activity.recent(days=400) if e.action == "delete"
               and e.direction == "to_outlook"]
    assert any(e.outcome == "held" for e in deletes)
    assert len([e for e in deletes if e.outcome == "applied" and "released by Ada Admin" in e.detail]) == 4


def test_a_person_clearing_their_calendar_is_held_on_the_board_until_released() -> None:
    seen: dict[str, object] = {}

    async def script(sim: Sim) -> None:
        _limit(sim, 2)
        user = sim.user_of("BOB")
        items = []
        for i in range(4):
            start = EPOCH + timedelta(days=2, hours=i)
            items.append(sim.graph.new_event(user, {"subject": f"Visit {i}", "showAs": "busy",
                                                    "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                                                    "end": {"dateTime": (start + timedelta(minutes=30)).isoformat(),
                                                            "timeZone": "UTC"}}))
        await sim.drain()
        seen["before"] = len(_board(sim, "BOB"))
        sim.graph.outbox.clear()  # the notifications of the imports are not what this is about
        for item in items:
            sim.graph.remove_event(user, item["id"])
        await sim.drain()  # one round sees all four removals
        [hold] = sim.processes[0].services.holds.held()
        seen["hold"] = (hold.kind, hold.resource_nos, hold.items)
        seen["kept"] = len(_board(sim, "BOB"))
        await _timer(sim, "reconcile_exchange")  # a later round removes nothing either
        seen["still"] = len(_board(sim, "BOB"))
        await _release_all(sim)
        seen["after"] = len(_board(sim, "BOB"))

    _, violations = run_scenario(script)
    assert violations == []
    assert seen == {"before": 4, "hold": (HoldKind.BOARD, ("BOB",), 4), "kept": 4, "still": 4, "after": 0}
