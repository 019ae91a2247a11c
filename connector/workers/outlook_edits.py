"""A person's edit of a planner's event taken onto the planning board (both directions use it).

The Outlook → planning worker does it under `OUTLOOK_EDIT_POLICY=update_planning`; the planning →
Outlook worker does it when both sides changed and `CONFLICT_POLICY=outlook` (see
`connector.sync.conflicts`). Either way the appointment is read as it is now, moved/retitled with
`mboc_upsertAppointment`, and the pair's `OutlookCopy` then records the event as it is, so neither
direction writes it again. The copy belongs to the planning → Outlook worker: another writer saves it
only if the row still holds what it read (`MappingStore.save_outlook_copy_if`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from connector.model import Appointment, CalendarEvent
from connector.sync.conflicts import ConflictPolicy, changed_fields, conflict_detail
from connector.sync.status import OutlookCopy, event_span, hashes_of
from connector.sync.to_outlook import desired_event
from connector.sync.to_planning import outlook_fields
from connector.workers.appointment_reads import read_appointment

if TYPE_CHECKING:
    from connector.services import Services


async def planner_appointment(services: Services, copy: OutlookCopy) -> tuple[dict[str, Any], Appointment] | None:
    """The planner's appointment behind a copy as it is now (payload and parsed), or None when it is gone,
    no longer this resource's, or an Outlook item."""
    appointment_id = await asyncio.to_thread(services.mappings.appointment_id, copy.appointment_guid)
    payload = await asyncio.to_thread(read_appointment, services.planning, copy.appointment_guid, appointment_id,
                                      [copy])
    if not payload:
        return None
    appointment = Appointment.from_payload(payload)
    if copy.resource_no not in appointment.resource_nos or appointment.created_by_exchange:
        return None
    return payload, appointment


def planner_changed(appointment: Appointment, copy: OutlookCopy, time_zone: str) -> bool:
    """The planner changed the appointment since the last sync: what it should show no longer hashes
    to what was written."""
    return hashes_of(desired_event(appointment, time_zone)) != dict(copy.field_hashes)


def conflict_account(policy: ConflictPolicy, appointment: Appointment, copy: OutlookCopy, time_zone: str,
                     seen: Mapping[str, str], seen_change_key: str | None) -> str:
    """The activity log's account of a conflict on this pair: each side's changed fields since the last
    sync (the planner's from the appointment, the person's from the event's hashes `seen`) and versions."""
    planned = hashes_of(desired_event(appointment, time_zone))
    return conflict_detail(policy, changed_fields(copy.field_hashes, planned), changed_fields(copy.field_hashes, seen),
                           appointment.last_modified or "", (copy.change_key, seen_change_key))


async def take_outlook_edit(services: Services, payload: dict[str, Any], copy: OutlookCopy, event: CalendarEvent,
                            time_zone: str, owner: bool) -> bool:
    """Move/retitle the appointment as the event shows it and record the event in the copy (`owner`:
    the caller holds the appointment's lease; otherwise the copy is written only if unchanged).
    False when the event has no times (nothing to take)."""
    if event.start is None or event.end is None:
        return False
    # The planner's all-day days are UTC dates (as `desired_event` reads them): the event's dates.
    # Named by its numeric id as well (the payload's, else the one remembered from Dime.Scheduler; see
    # `id_for_update`): without one, `mboc_upsertAppointment` inserts a second appointment rather than update it.
    appointment_id = Appointment.from_payload(payload).appointment_id
    if not (appointment_id or "").isdigit():
        appointment_id = await asyncio.to_thread(services.mappings.appointment_id, copy.appointment_guid)
    await asyncio.to_thread(services.planning.update_planner_appointment, payload, event.subject, event.body,
                            event.start, event.end, event.all_day, appointment_id)
    fields = outlook_fields(event, time_zone)
    starts_at, ends_at = event_span(fields)
    saved = replace(copy, field_hashes=hashes_of(fields), change_key=event.change_key, starts_at=starts_at,
                    ends_at=ends_at)
    if owner:
        await asyncio.to_thread(services.mappings.save_outlook_copy, saved)
    else:
        await asyncio.to_thread(services.mappings.save_outlook_copy_if, copy, saved)
    return True
