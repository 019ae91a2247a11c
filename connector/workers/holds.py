"""An admin releases a change the mass-change guard held (`POST /api/admin/holds/{id}/release`).

Releasing applies the change now, from the current state, idempotently (a second release of the same
hold changes nothing):
- **untrack**: each listed resource still tracked on the same mailbox is untracked as sync_resources
  would (subscription dropped, its Outlook items taken off the board, activity "released by <admin>");
  one that came back meanwhile is left alone. The planner's events in those calendars that the poll
  deletes once a resource is untracked (the window's, `window_copies`; past events stay) are released
  with it: the poll does not hold them again, and their changes are enqueued now.
- **calendar**: the held deletions become allowances and their changes are enqueued now; the
  planning → Outlook worker deletes each event it still should (re-reading the appointment).
- **board**: the held removals become allowances and the mailbox gets a full round now, which takes
  off the board what is still gone from Outlook (an item that came back stays).
Discarding (`connector/web/monitor.py`) removes nothing; see README, Mass-change guard.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from connector.messages import ExchangeChange, PlanningChange
from connector.services import Services
from connector.stores.activity import ActivityEntry
from connector.stores.holds import RELEASED, HeldItem, Hold, HoldKind
from connector.stores.registry import ResourceRecord, Status
from connector.stores.repositories import ConcurrencyConflict
from connector.workers.poll import window_copies
from connector.workers.resources import ResourceReport, untrack
from connector.workers.to_outlook import TRACKED_TTL_SECONDS


class HoldConflict(Exception):
    """The hold changed while it was being released (another admin, or a run replacing it)."""


async def _io(fn: Any, *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


async def release_hold(services: Services, hold: Hold, by: str) -> dict[str, Any]:
    """Apply a held change (see the module docstring); the answer says what happened."""
    if hold.state == RELEASED:
        return _answer(hold, "already released; its removals are being applied")
    if hold.kind == HoldKind.UNTRACK:
        outcome = await _release_untrack(services, hold, by)
    elif hold.kind == HoldKind.CALENDAR:
        outcome = await _release_calendar(services, hold, by)
    else:
        outcome = await _release_board(services, hold, by)
    await _io(services.activity.record, ActivityEntry(
        "system", "release", "applied", resource_no=hold.resource_nos[0] if len(hold.resource_nos) == 1 else "",
        detail=f"hold {hold.hold_id} released by {by}: {hold.what}; {outcome}"))
    return _answer(hold, outcome)


def _answer(hold: Hold, outcome: str) -> dict[str, Any]:
    return {"id": hold.hold_id, "kind": hold.kind, "what": hold.what, "items": hold.items, "released": True,
            "outcome": outcome}


async def _mark_released(services: Services, hold: Hold, by: str) -> None:
    try:
        await _io(services.holds.save, replace(hold, state=RELEASED, released_by=by, released_at=datetime.now(UTC)))
    except ConcurrencyConflict:
        raise HoldConflict(f"hold {hold.hold_id} changed while it was being released: reload and try again") from None


async def _release_untrack(services: Services, hold: Hold, by: str) -> str:
    report = ResourceReport()
    skipped: dict[str, str] = {}
    untracked: list[ResourceRecord] = []
    for entry in hold.entries:
        record = await _io(services.registry.get, entry.resource_no)
        if record is None or record.user_id != entry.user_id:
            skipped[entry.resource_no] = "its mailbox changed meanwhile"
        elif record.status == Status.TRACKED and entry.missing and record.missing_since is None:
            skipped[entry.resource_no] = "back in Dime.Scheduler"
        else:  # tracked: untracked now; untracked already: what a part-way release left is finished
            await untrack(services, record, entry.why, report, released_by=by)
            untracked.append(record)
    # The planner's events in the calendars of the untracked resources go too, those the poll deletes
    # (the window's: past events stay, as without a hold): released with the untrack, so the poll does
    # not hold them again.
    def allowances() -> list[tuple[str, str]]:
        found = []
        for resource_no, copies in window_copies(services, untracked).items():
            for copy in copies:
                services.holds.put_item(HoldKind.CALENDAR, resource_no, HeldItem(
                    copy.appointment_guid, hold.hold_id, RELEASED, by, appointment_guid=copy.appointment_guid))
                found.append((copy.appointment_guid, resource_no))
        return found

    allowed = await _io(allowances)
    if allowed:
        await _mark_released(services, hold, by)
        # Once every worker's view of who is tracked has caught up (it is cached for a few seconds).
        await _enqueue_planning(services, {guid for guid, _ in allowed}, int(TRACKED_TTL_SECONDS) + 1)
    else:
        await _io(services.holds.delete_quietly, hold)
    outcome = f"{len(report.untracked)} resource(s) untracked"
    if allowed:
        outcome += f"; {len(allowed)} of the planner's event(s) in their calendars are being deleted"
    kept = ", ".join(f"{number} ({why})" for number, why in skipped.items())
    return outcome + (f"; kept: {kept}" if kept else "")


async def _enqueue_planning(services: Services, guids: set[str], delay_seconds: int | None = None) -> None:
    for guid in sorted(guids):
        await _io(services.work_queues.send_planning_change, PlanningChange(appointment_guid=guid, event="poll"),
                  delay_seconds)


async def _release_calendar(services: Services, hold: Hold, by: str) -> str:
    items = await _io(services.holds.release_items, hold, by)
    await _mark_released(services, hold, by)
    await _enqueue_planning(services, {item.key for item in items})
    return f"{len(items)} deletion(s) enqueued"


async def _release_board(services: Services, hold: Hold, by: str) -> str:
    items = await _io(services.holds.release_items, hold, by)
    record = await _io(services.registry.by_user, hold.user_id)
    if record is None or record.status != Status.TRACKED:
        # Untracked meanwhile: the untrack took its items off the board; nothing is left to release.
        await _io(services.holds.remove, hold)
        return "the mailbox is no longer tracked: its items already left the board"
    await _mark_released(services, hold, by)
    await _io(services.work_queues.send_exchange_change,
              ExchangeChange(hold.user_id, reason="resync", full_resync=True))
    return f"a full round of the mailbox takes the {len(items)} item(s) still gone from Outlook off the board"
