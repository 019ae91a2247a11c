"""Moments the simulation's oracle (`devtools/sim/model.py`) found once it checked every field and both
policies: each arranges the exact moment, lets the real workers run, and checks the world against the oracle
and against what a person would look at. Before the fix each broke what its docstring names."""

from __future__ import annotations

from datetime import timedelta

import pytest

from connector.messages import PlanningChange
from connector.model import Appointment
from connector.sync.status import TAG_PROPERTY_ID, hashes_of, stamp_property
from connector.sync.to_outlook import desired_event
from devtools.sim.clock import EPOCH
from devtools.sim.planning import BoardAppointment
from devtools.sim.world import Sim, _tag, run_scenario
from tests.sim.scenes import new_appointment as _appointment


def _events_of(sim: Sim, resource_no: str, guid: str) -> list[dict[str, object]]:
    return [e for e in sim.graph.mailboxes[sim.user_of(resource_no)].events.values() if _tag(e) == guid]


def _write_took_effect_unseen(sim: Sim, appointment: BoardAppointment) -> None:
    """What the connector's PATCH of the appointment as it is now does to ALICE's event when Graph applies it
    and the answer is lost (a 503 after the write): the event holds that version and its stamp, the copy row
    still the version before."""
    [event] = _events_of(sim, "ALICE", appointment.guid)
    body = desired_event(Appointment.from_payload(sim.planning.payload(appointment)), "UTC")
    sim.graph.write_event(sim.user_of("ALICE"), {**event, **body, "singleValueExtendedProperties": [
        {"id": TAG_PROPERTY_ID, "value": appointment.guid}, stamp_property(hashes_of(body))]})


async def _importance_raised_unseen(sim: Sim, appointment: BoardAppointment) -> None:
    """The appointment synced, then the planner raises its importance, and the connector's PATCH of that takes
    effect unseen (its webhook's delivery is that write)."""
    sim._planned(appointment, "created")
    await sim.drain()
    appointment.importance = 1
    sim._planned(appointment, "updated")
    sim.planning.outbox.clear()
    _write_took_effect_unseen(sim, appointment)


@pytest.mark.parametrize("edit_policy", ["restore_outlook", "update_planning"])
def test_a_write_of_ours_that_took_effect_unseen_is_not_a_persons_edit(edit_policy: str) -> None:
    """Was (seeds 186, 187): "board: appointment <guid> shows <the version before the planner's last change>":
    the planner changed the importance, the PATCH took effect but answered 503; the planner then moved the
    appointment; the next PATCH met a 412 (the changeKey had moved), the event read back differed from the
    copy, and the connector took its own earlier write for a technician's edit: with CONFLICT_POLICY=outlook
    it put the event's old times on the board, undoing the planner's move. The event's stamp now says which
    version the connector wrote into it."""
    appointment = _appointment("Boiler service", ["ALICE"], body="Replace the pump.")

    async def script(sim: Sim) -> None:
        await _importance_raised_unseen(sim, appointment)
        sim.graph.outbox.clear()  # and its notification is lost too (the worker's 412 must sort it out)
        appointment.start, appointment.end = appointment.start + timedelta(hours=2), appointment.end + timedelta(hours=2)
        sim._planned(appointment, "updated")

    sim, violations = run_scenario(script, settings={"CONFLICT_POLICY": "outlook", "OUTLOOK_EDIT_POLICY": edit_policy})
    assert violations == []
    assert appointment.start == EPOCH + timedelta(days=1, hours=12 - EPOCH.hour)  # the planner's move stands
    [event] = _events_of(sim, "ALICE", appointment.guid)
    assert event["start"]["dateTime"].startswith(f"{appointment.start:%Y-%m-%dT%H:%M}")  # type: ignore[index]
    assert event["importance"] == "high"


def test_the_echo_of_a_write_of_ours_that_took_effect_unseen_is_not_a_persons_edit() -> None:
    """The same moment seen from Outlook's side, under OUTLOOK_EDIT_POLICY=ignore: the notification of that
    write reached the Outlook → board worker first, which took it for a technician's edit and acknowledged the
    event's new changeKey on the copy; the planner then set the importance back and moved the appointment, and
    the next PATCH, computed against the copy, sent the times only: the event kept the high importance nobody
    wanted any more."""
    appointment = _appointment("Boiler service", ["ALICE"], body="Replace the pump.")

    async def script(sim: Sim) -> None:
        await _importance_raised_unseen(sim, appointment)
        await sim.drain()  # its notification: the Outlook → board worker looks at the event
        appointment.importance = 0
        appointment.start, appointment.end = appointment.start + timedelta(hours=2), appointment.end + timedelta(hours=2)
        sim._planned(appointment, "updated")

    sim, violations = run_scenario(script, settings={"OUTLOOK_EDIT_POLICY": "ignore"})
    assert violations == []
    [event] = _events_of(sim, "ALICE", appointment.guid)
    assert event["importance"] == "normal"
    assert not [line for line in sim.log if "edited in Outlook; OUTLOOK_EDIT_POLICY=ignore" in line]


def test_a_restore_that_comes_late_does_not_bring_back_an_event_the_person_deleted_since() -> None:
    """Was (seed 161): "replay wrote 1 Graph event(s)": under update_planning a restore (the board's version
    over a technician's edit, by CONFLICT_POLICY=board) was delivered again after the technician had deleted
    the event, and re-created it, although under this policy a person's deletion stands."""
    appointment = _appointment("Boiler service", ["ALICE"], body="Replace the pump.")

    async def script(sim: Sim) -> None:
        sim._planned(appointment, "created")
        await sim.drain()
        [event] = _events_of(sim, "ALICE", appointment.guid)
        sim.processes[0].services.work_queues.send_planning_change(PlanningChange(
            appointment.guid, "restore", restore_resource="ALICE", restore_event_id=str(event["id"])))
        sim.graph.remove_event(sim.user_of("ALICE"), str(event["id"]))
        sim._person_wrote("ALICE", event)  # deleted

    sim, violations = run_scenario(script, settings={"OUTLOOK_EDIT_POLICY": "update_planning"})
    assert violations == []
    assert _events_of(sim, "ALICE", appointment.guid) == []
