"""Hand-written situations in the simulated world for the planning → Outlook holes a review found (issue 19:
holes 1 and 8). Each fails before its fix (the docstring says how), but the one that shows a real
deletion still goes through."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import timedelta
from typing import Any

import pytest

import connector.workers.poll as poll
from connector.errors import PlanningError
from connector.stores.holds import HoldKind
from connector.stores.mappings import ID_ROW, _appointment_pk
from connector.stores.storage import PLANNING_CHANGES_QUEUE, poison_queue_name
from connector.workers.holds import release_hold
from devtools.sim.clock import EPOCH
from devtools.sim.planning import BoardAppointment, Hook
from devtools.sim.world import Sim, run_scenario


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.disable(logging.CRITICAL)


def _appointment(subject: str, resources: list[str], hours: int = 10) -> BoardAppointment:
    start = EPOCH + timedelta(days=1, hours=hours - EPOCH.hour)
    return BoardAppointment(str(uuid.uuid4()), subject, start, start + timedelta(hours=1), resources)


def _event_subjects(sim: Sim, resource_no: str) -> list[str]:
    return sorted(str(e.get("subject")) for e in sim.graph.mailboxes[sim.user_of(resource_no)].events.values())


def _parked(sim: Sim) -> int:
    return len(sim.storage.queue(poison_queue_name(PLANNING_CHANGES_QUEUE)).messages)


async def _polls_for(sim: Sim, hours: int) -> None:
    """A day's worth of poll_planning runs (12 an hour), each drained to the end (its retries included)
    and followed by 5 quiet minutes."""
    for _ in range(hours * 12):
        sim.run_timer("poll_planning")
        await sim.drain()
        await asyncio.sleep(300)


# -- hole 8: a change that always fails is parked a bounded number of times --------------------------
def test_a_change_graph_refuses_for_good_is_parked_once_not_by_every_poll() -> None:
    """Was: parked 289 times over a day of polls (288 runs): Graph refuses the event's content (400), the change is parked
    (permanent), and every poll finds the missing event again and sends it once more, to be parked again.
    Now the refusal is remembered with the appointment's version: the poll leaves it alone until the
    planner changes the appointment; the parked change stays on the monitor."""
    refused = _appointment("Refused", ["ALICE"])

    async def script(sim: Sim) -> None:
        sim.graph.refused_subjects.add("Refused")
        sim.planning.plan(refused, "created")
        await sim.drain()
        assert _parked(sim) == 1
        await _polls_for(sim, 24)
        assert _parked(sim) == 1, f"parked {_parked(sim)} times over 288 polls"
        refused.subject = "Accepted"  # the planner fixes the content: the change goes through
        sim.planning.plan(refused, "updated")
        await sim.drain()
        assert _event_subjects(sim, "ALICE") == ["Accepted"] and _parked(sim) == 1  # still on the monitor
        writes = sim.graph.writes
        monitor = sim.processes[0].services.monitor
        for parked in list(sim.storage.queue(poison_queue_name(PLANNING_CHANGES_QUEUE)).messages):
            monitor.retry(PLANNING_CHANGES_QUEUE, parked.id)  # the admin's Retry
        await sim.drain()
        assert _parked(sim) == 0 and sim.graph.writes == writes  # applied already: nothing written twice

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Accepted"]


RESENDS = 3  # poll.POLL_RESENDS


def test_a_restore_that_keeps_giving_up_is_sent_again_by_the_poll_a_bounded_number_of_times() -> None:
    """Was: parked 289 times over a day of polls (288 runs): the technician deletes the planner's event, and every read of the
    appointment fails (Dime.Scheduler answers 503 for it all day); the restore gives up after an hour of
    faults, the poll sends it again, it gives up again, for ever. Now the poll sends it again at most
    `POLL_RESENDS` (3) times; the parked copy stays on the monitor, and the admin's Retry still applies it."""
    appointment = _appointment("Pump check", ["ALICE"])

    async def script(sim: Sim) -> None:
        user = sim.user_of("ALICE")
        sim.planning.plan(appointment, "created")
        await sim.drain()
        [event_id] = list(sim.graph.mailboxes[user].events)
        read = sim.planning.get_appointment

        def always_down(guid: str, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
            if guid == appointment.guid:
                raise PlanningError(503, "Service Unavailable")
            return read(guid, *args, **kwargs)

        sim.planning.get_appointment = always_down  # type: ignore[method-assign]
        sim.graph.remove_event(user, event_id)  # the technician deletes the planner's event
        await _polls_for(sim, 24)
        # The restore itself (sent by the notification and again by the recheck of the deleted id), then
        # the poll's resends of it: bounded, whatever the length of the outage.
        assert _parked(sim) <= 2 + RESENDS, f"parked {_parked(sim)} times over 288 polls"
        sim.planning.get_appointment = read  # type: ignore[method-assign]
        monitor = sim.processes[0].services.monitor
        for parked in list(sim.storage.queue(poison_queue_name(PLANNING_CHANGES_QUEUE)).messages):
            monitor.retry(PLANNING_CHANGES_QUEUE, parked.id)  # the admin's Retry, once the outage is over
        await sim.drain()
        assert _parked(sim) == 0 and _event_subjects(sim, "ALICE") == ["Pump check"]

    sim, violations = run_scenario(script)
    assert violations == []
    history = sim.processes[0].services.activity.history(appointment.guid)
    assert sum("sent once more by the poll" in e.detail for e in history) == RESENDS == poll.POLL_RESENDS
    assert any("not sent again by the poll" in e.detail for e in history)


# -- hole 1: only a confirmed absence deletes; webhook deletions count in the guard -------------------
def _plan_two(sim: Sim) -> tuple[BoardAppointment, BoardAppointment]:
    first, second = _appointment("Boiler A", ["ALICE"], 9), _appointment("Boiler B", ["ALICE"], 13)
    sim.planning.plan(first, "created")
    sim.planning.plan(second, "created")
    return first, second


def _forget_numeric_id(sim: Sim, guid: str) -> None:
    """As for events written before the numeric id was remembered beside them."""
    sim.processes[0].services.repositories.mappings.delete(_appointment_pk(guid), ID_ROW)


def _deletions(sim: Sim, guid: str) -> list[str]:
    return [e.detail for e in sim.processes[0].services.activity.history(guid) if e.action == "delete"]


@pytest.mark.parametrize("lookup", ["id", "id_or_guid"])
@pytest.mark.parametrize("remembered", [True, False])
def test_a_forged_deleted_webhook_with_another_appointments_id_deletes_nothing(lookup: str, remembered: bool) -> None:
    """Was: "ALICE: appointment <A> has 0 event(s) in Outlook": whoever holds the webhook secret sends
    `deleted` with appointment A's GUID and appointment B's numeric `id`; the read by B's id answered B,
    which counted as "A not found", and A's event was deleted. Now the read uses the id remembered from
    Dime.Scheduler itself, and an answer for another appointment is no answer: the window read over A's
    event finds A."""
    async def script(sim: Sim) -> None:
        sim.planning.lookup = lookup
        victim, other = _plan_two(sim)
        await sim.drain()
        if not remembered:
            _forget_numeric_id(sim, victim.guid)
        forged = {**sim.planning.payload(other), "AppointmentGuid": victim.guid}  # B's id, A's GUID
        sim.planning.outbox.append(Hook("deleted", victim.guid, forged))
        await sim.drain()
        assert _event_subjects(sim, "ALICE") == ["Boiler A", "Boiler B"]
        assert _deletions(sim, victim.guid) == [] and _parked(sim) == 0

    _, violations = run_scenario(script)
    assert violations == []


@pytest.mark.parametrize("lookup", ["id", "id_or_guid"])
def test_a_webhook_whose_id_is_not_the_appointments_neither_deletes_nor_recreates(lookup: str) -> None:
    """Was: each planner's change deleted the event (and the poll made it again): the payload's `id` is not
    the appointment's numeric id, the read by it answered 404, and 404 counted as deleted."""
    async def script(sim: Sim) -> None:
        sim.planning.lookup = lookup
        appointment = _appointment("Boiler", ["ALICE"])
        sim.planning.plan(appointment, "created")
        await sim.drain()
        _forget_numeric_id(sim, appointment.guid)
        appointment.subject = "Boiler service"
        sim.planning.plan(appointment, "updated")
        for hook in sim.planning.outbox:
            assert hook.payload is not None
            hook.payload["id"] = 987654  # an id of something else (no such appointment)
        await sim.drain()
        assert _event_subjects(sim, "ALICE") == ["Boiler service"]
        assert _deletions(sim, appointment.guid) == []

    _, violations = run_scenario(script)
    assert violations == []


@pytest.mark.parametrize("lookup", ["id", "id_or_guid"])
def test_a_real_deletion_by_the_planner_is_still_applied_by_its_webhook(lookup: str) -> None:
    """The confirmation costs a deletion nothing but reads: the planner deletes A, its webhook deletes
    A's event (before any poll), and B's stays."""
    async def script(sim: Sim) -> None:
        sim.planning.lookup = lookup
        gone, _ = _plan_two(sim)
        await sim.drain()
        sim.planning.remove(gone.guid)
        await sim.drain()
        assert _event_subjects(sim, "ALICE") == ["Boiler B"]
        assert len(_deletions(sim, gone.guid)) == 1

    _, violations = run_scenario(script)
    assert violations == []


def test_webhook_deletions_in_one_calendar_beyond_the_limit_are_held_for_an_admin() -> None:
    """Was: all six of ALICE's events deleted, no hold: the planner (or a bulk job) deletes six
    appointments, each with its own `deleted` webhook, and only the poll counted deletions. Now each
    deletion counts for its calendar: past MASS_CHANGE_MAX_ITEMS (3) within the hour the rest is held,
    the poll keeps the hold with whatever else it would delete there, and the admin's release applies it."""
    async def script(sim: Sim) -> None:
        made = [_appointment(f"Job {i}", ["ALICE"], 8 + i) for i in range(6)]
        for appointment in made:
            sim.planning.plan(appointment, "created")
        await sim.drain()
        for appointment in made:
            sim.planning.remove(appointment.guid)
        await sim.drain()
        holds = sim.processes[0].services.holds
        assert holds.held(), f"no hold; ALICE has {len(_event_subjects(sim, 'ALICE'))} of 6 events left"
        [hold] = holds.held()
        assert hold.kind == HoldKind.CALENDAR and hold.resource_nos == ("ALICE",) and hold.items == 3
        assert len(_event_subjects(sim, "ALICE")) == 3
        sim.run_timer("poll_planning")  # the poll keeps the hold as it is
        await sim.drain()
        assert [h.items for h in holds.held()] == [3] and len(_event_subjects(sim, "ALICE")) == 3
        process = sim.processes[0]
        sim._spawn(process, release_hold(process.services, hold, "Ada Admin"), None)
        await sim.drain()
        assert _event_subjects(sim, "ALICE") == [] and holds.held() == []

    _, violations = run_scenario(script, settings={"MASS_CHANGE_MAX_ITEMS": "3"})
    assert violations == []
