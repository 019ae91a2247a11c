"""poll_planning: the safety net for missed Dime.Scheduler webhooks.

Reads the planning window (`SYNC_WINDOW_PAST_DAYS` .. `SYNC_WINDOW_FUTURE_DAYS` around now) for the
tracked resources and compares it with the `OutlookCopy` rows, using the same decision the worker
uses (`plan()`): an appointment whose plan is not empty (a copy missing, a field hash that moved,
a resource no longer assigned) is enqueued as `PlanningChange(event="poll")`. Copies whose
appointment did not come back in the window are checked one by one with `get_appointment` (it may
be gone, or merely outside the window or assigned to untracked resources only), by the numeric id
remembered in the mappings (`GET /appointment/{id}` may not take the GUID). Everything in sync
enqueues nothing. Each message carries the appointment's numeric id when it is known. The worker
re-reads the appointment, so a poll racing a webhook is harmless.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from connector.messages import PlanningChange
from connector.model import Appointment, InvalidPayload
from connector.services import Services
from connector.sync.status import OutlookCopy, TrackedResource
from connector.sync.to_outlook import plan

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    window_appointments: int = 0
    copies: int = 0
    enqueued: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)


def _needs_work(services: Services, appointment: Appointment | None, tracked: dict[str, TrackedResource],
                copies: dict[str, OutlookCopy]) -> bool:
    settings = services.settings
    return bool(plan(appointment, tracked, copies, settings.planning_rules, "poll", settings.sync_to_exchange_enabled))


def poll_planning(services: Services, now: datetime | None = None) -> PollResult:
    """Enqueue a change for every appointment whose Outlook events differ from the planning."""
    result = PollResult()
    settings = services.settings
    if not settings.sync_to_exchange_enabled:
        return result
    moment = now or datetime.now(UTC)
    tracked = services.registry.tracked()
    copies: dict[str, dict[str, OutlookCopy]] = defaultdict(dict)
    ids: dict[str, str] = {}  # guid -> numeric id, for the messages
    for copy in services.mappings.all_outlook_copies():
        copies[copy.appointment_guid.lower()][copy.resource_no] = copy
        result.copies += 1
    seen: set[str] = set()
    if tracked:
        start = moment - timedelta(days=settings.sync_window_past_days)
        end = moment + timedelta(days=settings.sync_window_future_days)
        for data in services.planning.appointments(start, end, sorted(tracked)):
            try:
                appointment = Appointment.from_payload(data)
            except InvalidPayload as exc:
                result.unreadable.append(str(exc))
                continue
            result.window_appointments += 1
            if appointment.guid in seen:
                continue
            seen.add(appointment.guid)
            if appointment.appointment_id:
                ids[appointment.guid] = appointment.appointment_id
            if not _needs_work(services, appointment, tracked, copies.get(appointment.guid, {})):
                continue
            if appointment.created_by_exchange or services.mappings.is_outlook_item(appointment.guid):
                continue  # an Outlook item on the board: the other direction's
            result.enqueued.append(appointment.guid)
    for guid, known in copies.items():
        if guid in seen:
            continue
        # Not in the window: deleted, moved out of it, or assigned to untracked resources only.
        current = services.planning.get_appointment(guid, services.mappings.appointment_id(guid))
        try:
            still: Appointment | None = None if current is None else Appointment.from_payload(current)
        except InvalidPayload as exc:
            result.unreadable.append(str(exc))
            continue
        if _needs_work(services, still, tracked, known):
            result.enqueued.append(guid)
    for guid in result.enqueued:
        services.work_queues.send_planning_change(PlanningChange(appointment_guid=guid, event="poll",
                                                                 appointment_id=ids.get(guid, "")))
    log.info("poll_planning: %d appointments in the window, %d copies, %d changes enqueued",
             result.window_appointments, result.copies, len(result.enqueued))
    return result
