"""Hand-written situations in the simulated world, one per hole the seeded runs found: each arranges the
exact moment that went wrong, lets the real workers run, and checks the world's invariants. Before the
fixes each of these broke the invariant named in its docstring."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

import connector.workers.poll as poll
import connector.workers.to_outlook as to_outlook
from connector.errors import PlanningError
from connector.messages import ExchangeChange, PollSlice
from connector.model import Appointment
from connector.stores.cursors import PARTITION, CursorState
from connector.stores.registry import Status
from connector.stores.repositories import WINDOW_TABLE, safe_key
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE, poison_queue_name
from connector.sync.status import TAG_PROPERTY_ID, OutlookCopy
from connector.sync.to_outlook import desired_event
from connector.workers.poll import INDEXED_ROW
from connector.workers.to_outlook import LEASE_PARTITION
from devtools.sim.clock import EPOCH
from devtools.sim.planning import BoardAppointment
from devtools.sim.world import Sim, run_scenario
from tests.sim.scenes import event_subjects as _event_subjects
from tests.sim.scenes import new_appointment as _appointment


def test_a_retried_create_brings_the_first_attempts_event_up_to_date() -> None:
    """Was: "event of <guid> is 'Job' instead of 'Job v2'": the first POST created the event but its
    answer was lost; the planner retitled; the retry (same transactionId) got the old event back and the
    connector recorded the new title as written."""
    appointment = _appointment("Job", ["ALICE"])

    async def script(sim: Sim) -> None:
        services = sim.processes[0].services
        user = sim.user_of("ALICE")
        sim.planning.plan(appointment, "created")
        sim.planning.outbox.clear()  # the first delivery's attempt is what we arrange by hand:
        transaction = f"dsx-{appointment.guid}-ALICE-first"
        services.mappings.save_outlook_copy(OutlookCopy(appointment.guid, "ALICE", user, transaction))
        first = desired_event(Appointment.from_payload(sim.planning.payload(appointment)), "UTC")
        sim.graph.new_event(user, {**first, "transactionId": transaction,
                                   "singleValueExtendedProperties": [{"id": TAG_PROPERTY_ID, "value": appointment.guid}]})
        appointment.subject = "Job v2"
        sim.planning.plan(appointment, "updated")

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Job v2"]


def test_a_retried_create_whose_first_event_a_person_deleted_meanwhile_makes_the_event_again() -> None:
    """Was: "planning-changes: 1 message(s) parked on the poison queue" (seed 1454): the retry (same
    transactionId) got the first attempt's event back, the person deleted it just then, and bringing it up
    to date answered 404, taken as a permanent failure; the planner's appointment had no event."""
    appointment = _appointment("Job", ["ALICE"])

    async def script(sim: Sim) -> None:
        services = sim.processes[0].services
        user = sim.user_of("ALICE")
        sim.planning.plan(appointment, "created")
        sim.planning.outbox.clear()
        transaction = f"dsx-{appointment.guid}-ALICE-first"
        services.mappings.save_outlook_copy(OutlookCopy(appointment.guid, "ALICE", user, transaction))
        first = desired_event(Appointment.from_payload(sim.planning.payload(appointment)), "UTC")
        sim.graph.new_event(user, {**first, "transactionId": transaction,
                                   "singleValueExtendedProperties": [{"id": TAG_PROPERTY_ID, "value": appointment.guid}]})
        request = sim.graph._request

        def deleted_right_after_the_repeat(method: str, user_id: str, event_id: str | None, body: Any,
                                           condition: str | None = None) -> dict[str, Any]:
            answer = request(method, user_id, event_id, body, condition)
            if method == "POST" and event_id is None and (body or {}).get("transactionId") == transaction:
                sim.graph.remove_event(user_id, answer["body"]["id"])  # the technician deletes it just then
            return answer

        sim.graph._request = deleted_right_after_the_repeat  # type: ignore[method-assign]
        appointment.subject = "Job v2"
        sim.planning.plan(appointment, "updated")

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Job v2"]


def test_a_retried_create_answered_409_whose_first_event_was_deleted_makes_the_event_again() -> None:
    """Graph's answer to a repeated transactionId is not documented; where it is a 409 and the first
    event is gone (a person deleted it, its transactionId stays taken), the tag search finds nothing. Was:
    "planning-changes: 1 message(s) parked on the poison queue" (the 409 was raised as permanent)."""
    appointment = _appointment("Job", ["ALICE"])

    async def script(sim: Sim) -> None:
        services = sim.processes[0].services
        user = sim.user_of("ALICE")
        sim.graph.repeated_transaction = "conflict"
        sim.planning.plan(appointment, "created")
        sim.planning.outbox.clear()
        transaction = f"dsx-{appointment.guid}-ALICE-first"
        services.mappings.save_outlook_copy(OutlookCopy(appointment.guid, "ALICE", user, transaction))
        first = desired_event(Appointment.from_payload(sim.planning.payload(appointment)), "UTC")
        event = sim.graph.new_event(user, {**first, "transactionId": transaction, "singleValueExtendedProperties": [
            {"id": TAG_PROPERTY_ID, "value": appointment.guid}]})
        sim.graph._taken.add((user, transaction))  # the first attempt's POST took the transactionId
        sim.graph.remove_event(user, event["id"])  # and the technician deleted its event
        appointment.subject = "Job v2"
        sim.planning.plan(appointment, "updated")

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Job v2"]


def test_a_change_waiting_for_a_crashed_workers_appointment_lease_is_applied_not_parked() -> None:
    """Was: "planning-changes: 1 message(s) parked on the poison queue": the lease of a worker that died
    holds for 120 s; every retry of the waiting change counted as a failed attempt."""
    appointment = _appointment("Inspection", ["BOB"])

    async def script(sim: Sim) -> None:
        cursors = sim.processes[0].services.repositories.cursors
        expires = (EPOCH + timedelta(seconds=sim.loop.time() + 115)).isoformat()
        cursors.insert(LEASE_PARTITION, appointment.guid, {"Owner": "crashed-worker", "Expires": expires})
        sim.planning.plan(appointment, "created")

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "BOB") == ["Inspection"]
    assert sim.loop.time() > 115  # it waited for the lease to expire


def test_outlook_changes_arriving_while_a_crashed_run_holds_the_mailbox_reach_the_board() -> None:
    """Was: "Outlook item ... is 0 board item(s)": a mailbox round died holding the lease; the rounds
    asked for meanwhile only set Pending and completed, and nothing came back for them."""

    async def script(sim: Sim) -> None:
        cursors = sim.processes[0].services.repositories.cursors
        user = sim.user_of("CAROL")
        row = cursors.get(PARTITION, safe_key(user))
        assert row is not None
        state = CursorState.from_row(row.data)
        held = CursorState(**{**state.__dict__, "lease_owner": "crashed-run",
                              "lease_until": datetime.fromtimestamp(EPOCH.timestamp() + sim.loop.time() + 240, UTC)})
        cursors.replace(PARTITION, safe_key(user), held.to_row(), row.etag)
        start = EPOCH + timedelta(days=2, hours=1)
        sim.graph.new_event(user, {"subject": "Dentist", "showAs": "busy",
                                   "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                                   "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"}})

    sim, violations = run_scenario(script)
    assert violations == []
    assert [a.subject for a in sim.planning.appointments_by_guid.values() if a.from_outlook] == ["Dentist"]
    assert sim.loop.time() > 240  # the round that found the lease held came back when it expired


def test_an_import_whose_answer_was_lost_is_still_taken_off_the_board_when_the_item_goes() -> None:
    """Was: "1 board item(s) of Outlook item ... that is gone": the import took effect but answered 503,
    so no copy was kept; the item was deleted in Outlook before the retry, and its removal found nothing
    to take off the board."""
    from connector.errors import PlanningError

    async def script(sim: Sim) -> None:
        user = sim.user_of("BOB")
        original = sim.planning.upsert_exchange_appointment
        calls: list[str] = []

        def lost_answer(*args: object, **kwargs: object) -> None:
            original(*args, **kwargs)  # type: ignore[arg-type]
            if not calls:
                calls.append("lost")
                raise PlanningError(503, "import: the answer was lost (simulated)")

        sim.planning.upsert_exchange_appointment = lost_answer  # type: ignore[method-assign]
        start = EPOCH + timedelta(days=1, hours=3)
        item = sim.graph.new_event(user, {"subject": "Dentist", "showAs": "busy",
                                          "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                                          "end": {"dateTime": (start + timedelta(hours=1)).isoformat(),
                                                  "timeZone": "UTC"}})
        while not calls:  # until the import has happened and its answer was lost
            await sim.step()
        sim.graph.remove_event(user, item["id"])

    sim, violations = run_scenario(script)
    assert violations == []
    assert [a for a in sim.planning.appointments_by_guid.values() if a.from_outlook] == []


def test_restoring_a_deleted_event_whose_create_answer_is_lost_makes_one_event() -> None:
    """Was: "ALICE: 2 connector event(s) of <guid>": the Outlook → planning direction restored a deleted
    event itself, with a fresh transactionId and no pending copy; Graph created the event but the answer
    was lost (503 after commit), and the retried round restored it a second time. Now the restore is a
    change for the planning → Outlook worker, whose create keeps its transactionId across retries."""
    appointment = _appointment("Boiler service", ["ALICE"])

    async def script(sim: Sim) -> None:
        user = sim.user_of("ALICE")
        sim.planning.plan(appointment, "created")
        while not sim.graph.mailboxes[user].events:  # until the planner's event is in Outlook
            await sim.step()
        original = sim.graph._request
        lost: list[str] = []

        def answer_lost(method: str, user_id: str, event_id: str | None, body: object,
                        condition: str | None = None) -> dict[str, object]:
            answer = original(method, user_id, event_id, body, condition)
            if method == "POST" and event_id is None and not lost:
                lost.append(str(answer["body"]["id"]))  # type: ignore[index]
                return {"status": 503, "body": {"error": {"code": "ServiceUnavailable", "message": "lost"}}}
            return answer

        sim.graph._request = answer_lost  # type: ignore[method-assign]
        [event_id] = list(sim.graph.mailboxes[user].events)
        sim.graph.remove_event(user, event_id)  # the technician deletes the planner's event
        while not lost:
            await sim.step()

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Boiler service"]
    restores = [e for e in sim.processes[0].services.activity.history(appointment.guid) if e.action == "restore"]
    assert restores and all(e.outcome == "applied" for e in restores)


def _conflict(policy: str) -> tuple[Sim, list[str], BoardAppointment]:
    """The planner retitles an appointment while the technician edits its event in Outlook: both sides
    changed since the last sync (before, the planner's PATCH overwrote the edit with no trace)."""
    appointment = _appointment("Boiler service", ["ALICE"])

    async def script(sim: Sim) -> None:
        user = sim.user_of("ALICE")
        sim.planning.plan(appointment, "created")
        await sim.drain()
        [event] = list(sim.graph.mailboxes[user].events.values())
        sim.graph.write_event(user, {**event, "subject": "Boiler service (gate code 4411)"})  # the technician
        appointment.subject = "Boiler service, hall B"  # the planner, at the same time
        sim.planning.plan(appointment, "updated")

    sim, violations = run_scenario(script, settings={"CONFLICT_POLICY": policy})
    return sim, violations, appointment


def _conflicts(sim: Sim, guid: str) -> list[str]:
    return [e.detail for p in sim.processes for e in p.services.activity.history(guid) if e.action == "conflict"]


def test_both_sides_changed_the_board_wins_by_default_and_the_conflict_is_logged_with_both_versions() -> None:
    sim, violations, appointment = _conflict("board")
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Boiler service, hall B"]
    assert appointment.subject == "Boiler service, hall B"
    [detail] = set(_conflicts(sim, appointment.guid))
    assert "planning board: subject" in detail and "Outlook: subject" in detail and "changeKey ck" in detail
    assert "CONFLICT_POLICY=board" in detail


def test_both_sides_changed_with_conflict_policy_outlook_the_edit_reaches_the_board() -> None:
    sim, violations, appointment = _conflict("outlook")
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Boiler service (gate code 4411)"]
    assert appointment.subject == "Boiler service (gate code 4411)"  # the board took the technician's edit
    [detail] = set(_conflicts(sim, appointment.guid))
    assert "CONFLICT_POLICY=outlook" in detail and "the Outlook edit was taken onto the planning board" in detail


def test_the_planners_event_deleted_while_no_notification_could_come_is_restored_by_the_next_full_round() -> None:
    """Was: "ALICE: appointment ... has 0 event(s) in Outlook" (seeds 341, 572, 874, 1173, 1455, 1693): the
    technician deleted the planner's event while their mailbox had no subscription (untracked for a while,
    or a notification lost); the full round after re-tracking only looked at Outlook items, never at the
    connector's own events, so the deletion went unseen for good."""
    appointment = _appointment("Pump check", ["ALICE"])

    async def script(sim: Sim) -> None:
        user = sim.user_of("ALICE")
        sim.planning.plan(appointment, "created")
        await sim.drain()
        [event_id] = list(sim.graph.mailboxes[user].events)
        sim.graph.subscriptions.clear()  # no notification can come
        sim.graph.remove_event(user, event_id)
        await sim.drain()
        assert sim.graph.mailboxes[user].events == {}  # unseen: nothing restored it
        sim.processes[0].services.work_queues.send_exchange_change(
            ExchangeChange(user, reason="resync", full_resync=True))

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Pump check"]


def test_sync_resources_fans_the_checks_of_tracked_resources_out_and_a_lost_user_is_untracked_two_runs_later() -> None:
    """The timer decides about the tenant; the Graph calls of each tracked resource's steady-state check
    run from the queue (one `resource-check` message each). A user Graph no longer knows is noted missing
    by its check and untracked by the next run (two runs in a row, under the mass-change guard)."""
    checks: list[int] = []

    async def script(sim: Sim) -> None:
        queue = sim.storage.queue(EXCHANGE_CHANGES_QUEUE)
        before = len(queue.sent)
        sim.run_timer("sync_resources")
        await sim.drain()
        checks.append(sum(1 for c in queue.sent[before:] if json.loads(c).get("kind") == "resource-check"))
        sim.graph.mailboxes[sim.user_of("BOB")].email = "robert@contoso.sim"  # Graph no longer knows bob@
        sim.run_timer("sync_resources")
        await sim.drain()
        bob = sim.processes[0].services.registry.get("BOB")
        assert bob is not None and bob.status == Status.TRACKED and bob.missing_since is not None
        sim.run_timer("sync_resources")
        await sim.drain()

    sim, violations = run_scenario(script)
    assert checks == [3]  # Alice, Bob and Carol; Dave has no Exchange integration
    assert violations == []
    bob = sim.processes[0].services.registry.get("BOB")
    assert bob is not None and bob.status != Status.TRACKED


def test_a_restore_that_gave_up_on_an_hour_of_faults_is_sent_again_by_the_next_poll() -> None:
    """Was: "ALICE: appointment ... has 0 event(s) in Outlook" and the restore parked (seed 99339 at
    0525e2c): the technician deleted the planner's event and every one of the restore's 12 attempts met a
    fault (66 minutes of back-off). Parked and on the monitor, but nothing brought the event back before
    the next full round: the poll compares the board with the copies, which still matched. Now the change
    that gave up is remembered and the next poll sends it again; the admin's Retry of the parked copy then
    writes nothing (`run_scenario` presses it)."""
    appointment = _appointment("Pump check", ["ALICE"])

    async def script(sim: Sim) -> None:
        user = sim.user_of("ALICE")
        services = sim.processes[0].services
        sim.planning.plan(appointment, "created")
        await sim.drain()
        [event_id] = list(sim.graph.mailboxes[user].events)
        read = sim.planning.get_appointment
        outage_ends = sim.loop.time() + 70 * 60  # Dime.Scheduler answers 503 for 70 minutes
        faults: list[str] = []

        def dime_scheduler_down(guid: str, appointment_id: str | None = None) -> dict[str, Any] | None:
            if sim.loop.time() < outage_ends:
                faults.append(guid)
                raise PlanningError(503, "Service Unavailable")
            return read(guid, appointment_id)

        sim.planning.get_appointment = dime_scheduler_down  # type: ignore[method-assign]
        sim.graph.remove_event(user, event_id)  # the technician deletes the planner's event
        await sim.drain()
        assert len(faults) >= 12 and sim.graph.mailboxes[user].events == {}
        parked = sim.storage.queue(poison_queue_name(PLANNING_CHANGES_QUEUE)).messages
        assert parked and all(json.loads(m.content)["event"] == "restore" for m in parked)
        failed = {e.detail for e in services.activity.history(appointment.guid) if e.outcome == "failed"}
        assert failed == {"gave up after 12 attempts; parked on planning-changes-poison"}
        await sim.drain()
        assert sim.graph.mailboxes[user].events == {}  # nothing but the poll brings it back (run_scenario runs it)

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == ["Pump check"]
    history = sim.processes[0].services.activity.history(appointment.guid)
    assert any(e.outcome == "retrying" and "sent once more by the poll" in e.detail for e in history)
    assert [e.outcome for e in history if e.action == "recreate" or e.action == "restore"][-1:] == ["applied"]
    assert sim.storage.queue(poison_queue_name(PLANNING_CHANGES_QUEUE)).messages == []  # the admin retried it


def test_the_poll_reads_copies_from_the_mailbox_index_and_finds_the_events_in_a_mailbox_the_resource_left() -> None:
    """The poll reads each mailbox's index, not every copy ever written. A resource whose email stops
    being a Graph user (a typo in Dime.Scheduler) leaves tracking after two runs; its planner events are
    still in its former mailbox, which no tracked resource names any more: the poll looks there too and
    takes them out (the resource is no longer tracked), even on a worker whose list of tracked resources
    (kept a few seconds) still names it: a poll's change reads the list afresh."""
    appointment = _appointment("Pump check", ["ALICE"])

    async def script(sim: Sim) -> None:
        services = sim.processes[0].services
        sim.planning.plan(appointment, "created")
        await sim.drain()
        # The first poll (sync_resources runs it once it tracked the resources) indexed every copy: later
        # runs read the index only.
        assert services.repositories.cursors.get(*INDEXED_ROW) is not None
        # Each planning worker knows the tracked resources from a moment ago.
        warm = [asyncio.ensure_future(to_outlook.runtime(p.services).tracked(p.services)) for p in sim.processes]
        while not all(task.done() for task in warm):  # each waits at its I/O point, resolved by the scheduler
            await (sim.step() if any(not w[0].done() for w in sim.waiting) else asyncio.sleep(0))
        sim.planning.resources["ALICE"].email = "alcie@contoso.sim"  # not a Graph user
        for _ in range(2):  # missing on two runs in a row: untracked
            sim.run_timer("sync_resources")
            await sim.drain()
        record = services.registry.get("ALICE")
        assert record is not None and (record.status, record.user_id) == (Status.UNKNOWN_EMAIL, "")
        assert record.former_user_id == sim.user_of("ALICE")
        # Still within those lists' lifetime when the poll's deletion reaches a worker: it must not trust them.
        assert sim.loop.time() < to_outlook.TRACKED_TTL_SECONDS

    sim, violations = run_scenario(script)
    assert violations == [f"ALICE: appointment {appointment.guid[:8]} has 0 event(s) in Outlook"]  # not tracked now
    assert _event_subjects(sim, "ALICE") == []
    deleted = [e for e in sim.processes[0].services.activity.history(appointment.guid) if e.action == "delete"]
    assert [e.outcome for e in deleted] == ["applied"] and "no longer tracked" in deleted[0].detail


def test_the_poll_fans_out_in_slices_and_an_appointment_across_two_slices_is_compared_in_each() -> None:
    """poll_planning sends one slice per POLL_SLICE_SIZE resources; each compares its own calendars only.
    The planner takes ALICE off an appointment she shared with BOB and the webhook is lost: ALICE's slice
    deletes her event, BOB's slice finds his in sync."""
    appointment = _appointment("Shared job", ["ALICE", "BOB"])
    before: list[int] = []

    async def script(sim: Sim) -> None:
        sim.planning.plan(appointment, "created")
        await sim.drain()
        before.append(len(sim.storage.queue(PLANNING_CHANGES_QUEUE).sent))
        poll.POLL_SLICE_SIZE = 1  # (restored when the scenario ends)
        appointment.resources = ["BOB"]
        sim.planning.plan(appointment, "updated")
        sim.planning.outbox.clear()  # the webhook is lost

    sim, violations = run_scenario(script)
    assert violations == []
    assert _event_subjects(sim, "ALICE") == [] and _event_subjects(sim, "BOB") == ["Shared job"]
    slices = [json.loads(m) for m in sim.storage.queue(PLANNING_CHANGES_QUEUE).sent[before[0]:]
              if json.loads(m).get("kind") == PollSlice.kind]
    assert [s["resource_nos"] for s in slices] == [["ALICE"], ["BOB"], ["CAROL"]]
    deleted = [e for e in sim.processes[0].services.activity.history(appointment.guid) if e.action == "delete"]
    assert [(e.resource_no, e.outcome) for e in deleted] == [("ALICE", "applied")]


@pytest.mark.parametrize("failed_batch", ["atomic", "partial"])
def test_a_page_of_outlook_items_is_imported_in_one_call_and_an_item_refused_in_it_is_parked_alone(
        failed_batch: str) -> None:
    """A delta page's items go to the board in one `/import`. Dime.Scheduler refuses one of them: the batch
    fails (with the items before it applied or not: undocumented, both run), the page goes again one item
    at a time, the two others reach the board and the refused one is parked as itself (monitor, Retry)."""
    imports: list[int] = []
    refused: dict[str, Any] = {}

    async def script(sim: Sim) -> None:
        sim.planning.failed_batch = failed_batch
        sim.planning.refused_subjects = {"Refused"}
        original = sim.planning.upsert_exchange_appointments

        def counted(items: Any) -> None:
            imports.append(len(items))
            original(items)

        sim.planning.upsert_exchange_appointments = counted  # type: ignore[method-assign]
        user = sim.user_of("BOB")
        start = EPOCH + timedelta(days=1, hours=3)
        for hour, subject in enumerate(["Dentist", "Refused", "Gym"]):
            item = sim.graph.new_event(user, {"subject": subject, "showAs": "busy", "start": {
                "dateTime": (start + timedelta(hours=hour)).isoformat(), "timeZone": "UTC"}, "end": {
                "dateTime": (start + timedelta(hours=hour, minutes=30)).isoformat(), "timeZone": "UTC"}})
            if subject == "Refused":
                refused.update(item)

    sim, violations = run_scenario(script)
    assert imports == [3]  # one call for the page, then the items one at a time
    board = sorted(a.subject for a in sim.planning.appointments_by_guid.values() if a.from_outlook)
    assert board == ["Dentist", "Gym"]
    parked = [json.loads(m.content) for m in sim.storage.queue(poison_queue_name(EXCHANGE_CHANGES_QUEUE)).messages]
    assert [p["event_ids"] for p in parked] == [["!" + refused["id"]]]
    expected = ("exchange-changes: 1 message(s) parked on the poison queue", refused["id"])
    assert [v for v in violations if not any(e in v for e in expected)] == []  # only the refused item is off


def test_the_first_poll_after_the_upgrade_to_the_window_table_indexes_the_copies_with_work_too() -> None:
    """A deployment that had only the index gets its `window` rows from the first poll's full read. A copy
    with work (here: its appointment is gone and the webhook never came) gets one too, before its change
    is sent: should that change never apply, the later polls, which read the `window` table only, must
    still see the copy."""
    appointment = _appointment("Gone quietly", ["ALICE"])

    async def script(sim: Sim) -> None:
        services = sim.processes[0].services
        sim.planning.plan(appointment, "created")
        await sim.drain()
        [copy] = services.mappings.outlook_copies(appointment.guid).values()
        sim.storage.table(WINDOW_TABLE).rows.clear()  # as before the window table existed
        services.repositories.cursors.delete(*INDEXED_ROW)
        del sim.planning.appointments_by_guid[appointment.guid]  # deleted on the board, no webhook
        first = poll.poll_planning(services)
        assert first.enqueued == [appointment.guid]
        live = services.mappings.live_copies(copy.user_id, "2000-01-01T00:00:00")
        assert [item.copy for item in live] == [copy]

    sim, violations = run_scenario(script)
    assert violations == [] and _event_subjects(sim, "ALICE") == []
