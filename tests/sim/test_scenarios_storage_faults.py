"""Hand-written situations for the holes the simulation's storage faults found (issue 19: Table and Queue
errors as the SDKs raise them after their own retries). Each failed before its fix with the violation
named in its docstring."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from connector.messages import ExchangeChange
from connector.stores.cursors import CursorStore
from devtools.sim.clock import EPOCH
from devtools.sim.storage import STORAGE_FAULTS, _mark, owner_process
from devtools.sim.world import Sim, run_scenario


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.disable(logging.CRITICAL)


def _server_busy(label: str) -> BaseException:
    """The SDK's 503 ServerBusy, marked as a fault the simulation drew (the host retries the message)."""
    make = next(make for when, make in STORAGE_FAULTS if when == "before" and "busy" in repr(make(label)))
    return _mark(make(label))


def _hidden_from_delta(sim: Sim, event_id: str) -> None:
    """Graph's delta never shows an event created and deleted between two rounds: only the deleted
    notification names it (the reason rounds look at single items)."""
    delta: Callable[..., Any] = sim.graph._delta

    def without(*args: Any, **kwargs: Any) -> Any:
        page = delta(*args, **kwargs)
        page.items[:] = [item for item in page.items if item.get("id") != event_id]
        return page

    sim.graph._delta = without  # type: ignore[method-assign]


def test_a_deleted_item_a_round_took_off_the_cursor_row_is_removed_although_the_round_then_failed() -> None:
    """A deleted notification that finds the mailbox busy leaves its event id on the cursor row; the next
    holder looks at it, takes it off the row (`items_done`) and keeps its removal for the round's end (the
    mass-change guard counts a round's removals together). A storage error after that (503 ServerBusy: the
    host retries the message, a follow-up that carries no items) lost the removal: the item was off the
    row and its removal in memory only. Found by seed 428 of `devtools.sim` with storage faults (there a
    crash between the two). Was: "ALICE: 1 board item(s) of Outlook item ... that is gone"."""
    failed: list[str] = []
    left: list[str] = []

    async def script(sim: Sim) -> None:
        user_id = sim.user_of("ALICE")
        start = EPOCH + timedelta(days=1, hours=9)
        event = sim.graph.new_event(user_id, {"subject": "Dentist", "showAs": "busy",
                                              "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                                              "end": {"dateTime": (start + timedelta(hours=1)).isoformat(),
                                                      "timeZone": "UTC"}})
        _hidden_from_delta(sim, event["id"])
        services = sim.processes[0].services
        services.work_queues.send_exchange_change(ExchangeChange(user_id, reason="notification",
                                                                 event_ids=[event["id"]]))
        await sim.drain()
        assert any(a.exchange_id == event["id"] for a in sim.planning.appointments_by_guid.values())
        # The mailbox is busy (another run holds it) when the person deletes the event.
        CursorStore(services.repositories.cursors).acquire(user_id, "another-run")
        sim.graph.remove_event(user_id, event["id"])
        sim.graph.outbox.clear()
        services.work_queues.send_exchange_change(ExchangeChange(user_id, reason="notification",
                                                                 event_ids=[event["id"]]))
        # The run that takes the lease (the follow-up, at the lease's expiry) looks at the item, then meets a
        # storage error at its round's end (reading the guard's holds), before any removal is applied.
        looked: list[str] = []
        get_event = sim.graph.get_event

        async def look(user: str, event_id: str, *args: Any, **kwargs: Any) -> Any:
            looked.append(event_id)
            return await get_event(user, event_id, *args, **kwargs)

        inner = sim.storage.hazard

        def hazard(label: str, effect: Callable[[], Any]) -> Any:
            if looked and not failed and label.startswith("cursors query") and owner_process(sim) is not None:
                failed.append(label)
                sim.trace(f"storage fault before {label}")
                raise _server_busy(label)
            return inner(label, effect)

        sim.graph.get_event = look  # type: ignore[method-assign,assignment]
        sim.storage.hazard = hazard
        try:
            await sim.drain()
        finally:
            sim.graph.get_event = get_event  # type: ignore[method-assign]
            sim.storage.hazard = inner
        # Before any timer (the daily full round would repair it): the messages alone must have removed it.
        left.extend(a.guid for a in sim.planning.appointments_by_guid.values() if a.exchange_id == event["id"])

    sim, violations = run_scenario(script)
    assert failed, "the round never reached its end"
    assert not left, f"board item(s) {left} of an Outlook item that is gone, before the timers ran"
    assert violations == [], "\n".join(violations + sim.log[-40:])


@pytest.mark.parametrize("sender", ["Dime.Scheduler", "Graph"])
def test_a_webhook_whose_enqueue_meets_a_storage_error_answers_503_and_the_sender_delivers_it_again(
        sender: str) -> None:
    """The webhooks only enqueue; when the queue cannot take the change (a storage error the SDK's retries
    did not get past), the change is not queued and the sender must post it again: both senders retry a
    5xx. Was: the error escaped the function (the host's 500, `scheduler_notifications` and
    `graph_notifications` did not answer it themselves), and the simulation's delivery raised it."""
    failed: list[str] = []

    async def script(sim: Sim) -> None:
        inner = sim.storage.hazard

        def hazard(label: str, effect: Callable[[], Any]) -> Any:
            if sim.current is not None and not failed and label.endswith(" send"):
                failed.append(label)
                sim.storage_faults += 1
                raise _server_busy(label)
            return inner(label, effect)

        sim.storage.hazard = hazard
        if sender == "Dime.Scheduler":
            start = EPOCH + timedelta(days=1, hours=9)
            from devtools.sim.planning import BoardAppointment

            sim._planned(BoardAppointment("5a1e0000-0000-4000-8000-000000000001", "Boiler", start,
                                          start + timedelta(hours=1), ["ALICE"]), "created")
        else:
            start = EPOCH + timedelta(days=1, hours=11)
            sim.graph.new_event(sim.user_of("ALICE"), {
                "subject": "Dentist", "showAs": "busy", "start": {"dateTime": start.isoformat(), "timeZone": "UTC"},
                "end": {"dateTime": (start + timedelta(hours=1)).isoformat(), "timeZone": "UTC"}})
        await sim.drain()
        sim.storage.hazard = inner
        # Before any timer (the poll would find it too): delivered again, the change is applied.
        applied.append(bool(sim.graph.mailboxes[sim.user_of("ALICE")].events) if sender == "Dime.Scheduler"
                       else any(a.from_outlook for a in sim.planning.appointments_by_guid.values()))

    applied: list[bool] = []
    sim, violations = run_scenario(script)
    assert failed, "no webhook enqueued anything"
    assert applied == [True]
    assert any("answered 503 after a storage fault" in line for line in sim.log)
    assert violations == [], "\n".join(violations)
