"""Planning → Outlook: what each resource's calendar should hold for one appointment, and the writes.

Algorithm (after vdirsyncer's status-based sync, one side authoritative):
1. The *desired* state: for an appointment that exists, passes the rule filter, is not itself an
   Outlook item mirrored on the board, and while the direction is on: one event per assigned,
   tracked resource, with the fields `desired_event()` derives. Otherwise: nothing.
2. The *known* state: the `OutlookCopy` rows the connector wrote earlier, one per resource, each
   remembering the event id and a hash per field of what it last wrote.
3. The difference, as actions: `CreateEvent` where a resource has no copy (or one whose create never
   completed: the same transactionId is reused so Graph never makes a second event), `UpdateEvent`
   with only the fields whose hash moved, `DeleteEvent` for copies no longer desired (unassigned,
   re-assigned to someone else, deleted, excluded by a rule). A copy whose fields all match
   produces nothing, so replayed and no-op webhooks write nothing.

No I/O here: the worker runs the actions through the gateway and persists the copies.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from connector.model import Appointment, graph_time
from connector.sync.rules import RuleSet
from connector.sync.status import (
    EVENT_FIELDS,
    TAG_PROPERTY_ID,
    TRANSACTION_PREFIX,
    OutlookCopy,
    TrackedResource,
    hashes_of,
    stamp_property,
)
from connector.sync.timezones import all_day_time


@dataclass(frozen=True)
class CreateEvent:
    resource: TrackedResource
    payload: Mapping[str, Any]  # full event body, tag and transactionId included
    transaction_id: str
    field_hashes: Mapping[str, str]
    # The transactionId of an earlier attempt: Graph may answer with the event that attempt created,
    # holding the appointment as it was then, so the worker brings it up to date.
    repeat: bool = False


@dataclass(frozen=True)
class UpdateEvent:
    resource: TrackedResource
    copy: OutlookCopy
    changes: Mapping[str, Any]  # only the fields that differ from what was last written
    field_hashes: Mapping[str, str]


@dataclass(frozen=True)
class DeleteEvent:
    copy: OutlookCopy
    reason: str


Action = CreateEvent | UpdateEvent | DeleteEvent


TIME_FIELDS = frozenset({"start", "end", "isAllDay"})


def _all_day_bounds(start: datetime, end: datetime) -> tuple[date, date]:
    """The planner's all-day days: from the start's date to the end's, an end inside a day counting
    that day in full (the planning board keeps all-day appointments at UTC midnights)."""
    first = start.astimezone(UTC).date()
    last = end.astimezone(UTC).date()
    if datetime.combine(last, time(), UTC) < end or last <= first:
        last += timedelta(days=1)
    return first, last


def desired_event(appointment: Appointment, time_zone: str) -> dict[str, Any]:
    """The Outlook fields of an appointment (documented mapping; category → one Outlook category).

    `time_zone` is the mailbox's (`mailboxSettings.timeZone`): an all-day appointment is written as
    an all-day event on the planner's days in that zone; timed ones are written in UTC."""
    if appointment.all_day:
        first, last = _all_day_bounds(appointment.start, appointment.end)
        start, end = all_day_time(first, time_zone), all_day_time(last, time_zone)
    else:
        start, end = graph_time(appointment.start), graph_time(appointment.end)
    return {
        "subject": appointment.subject,
        "body": {"contentType": "text", "content": appointment.body},
        "start": start,
        "end": end,
        "isAllDay": appointment.all_day,
        "showAs": "busy",
        "importance": appointment.importance.value,
        "categories": [appointment.category] if appointment.category else [],
    }


def new_transaction_id(appointment_guid: str, resource_no: str, nonce: str) -> str:
    """Recognisable (echo suppression) and unique per create intent; reused by every retry of it."""
    return f"{TRANSACTION_PREFIX}{appointment_guid}-{resource_no}-{nonce}"[:200]


def plan(
    appointment: Appointment | None,
    tracked: Mapping[str, TrackedResource],
    copies: Mapping[str, OutlookCopy],
    rules: RuleSet,
    nonce: str,
    direction_enabled: bool = True,
) -> list[Action]:
    """The writes that bring every resource's calendar to the appointment's desired state.

    `appointment` None means it was deleted; `copies` are keyed by resource number; `nonce` makes
    the transactionId of a brand-new create (a pending copy keeps its own).
    """
    if not direction_enabled:
        return []  # switched off: leave Outlook alone, including what was written before
    wanted: dict[str, TrackedResource] = {}
    reason = "appointment deleted"
    if appointment is not None:
        if appointment.created_by_exchange:
            reason = "an Outlook item shown on the board"
        elif not rules.allows(appointment):
            reason = "excluded by PLANNING_RULES"
        else:
            wanted = {no: tracked[no] for no in sorted(appointment.resource_nos) if no in tracked}
            reason = "resource no longer assigned or no longer tracked"

    actions: list[Action] = []
    if wanted:
        assert appointment is not None
        for resource_no, resource in wanted.items():
            body = desired_event(appointment, resource.time_zone)  # all-day: in each mailbox's zone
            hashes = hashes_of(body)
            copy = copies.get(resource_no)
            if copy is not None and copy.user_id != resource.user_id:
                # Same resource number, another mailbox (email changed): move the event.
                actions.append(DeleteEvent(copy, "the resource's mailbox changed"))
                copy = None
            if copy is None or copy.event_id is None:
                transaction_id = copy.transaction_id if copy else new_transaction_id(appointment.guid, resource_no, nonce)
                payload = {
                    **body,
                    "transactionId": transaction_id,
                    "singleValueExtendedProperties": [{"id": TAG_PROPERTY_ID, "value": appointment.guid},
                                                      stamp_property(hashes)],
                }
                actions.append(CreateEvent(resource, payload, transaction_id, hashes, repeat=copy is not None))
                continue
            changes = {name: body[name] for name in EVENT_FIELDS if copy.field_hashes.get(name) != hashes[name]}
            if changes.keys() & TIME_FIELDS:
                # An event's times and all-day flag go together: Graph refuses a new start on an all-day event unless
                # the flag comes along (and the event as it is may not be the version the copy remembers).
                changes.update({name: body[name] for name in TIME_FIELDS})
            if changes:
                actions.append(UpdateEvent(resource, copy, changes, hashes))
    for resource_no, copy in sorted(copies.items()):
        if resource_no not in wanted:
            # A pending copy (event_id None) may still have created its event: the worker finds it by tag.
            actions.append(DeleteEvent(copy, reason))
    return actions
