"""Outlook → planning board: what one calendar item means for the board, given the resource's settings.

Each item from a mailbox's delta round is one of two kinds:
- **an Outlook item** (the resource's own meeting, dentist, training ...): it is mirrored on the board
  as an Exchange appointment (`mboc_upsertExchangeAppointment`) when the resource's settings let it
  through: sync enabled, its show-as and sensitivity in the resource's filters, and private items
  (sensitivity private or confidential) hidden, masked (time only: a neutral subject, no body, no
  location, no categories) or shown in full. An item that no longer passes (edited, or the settings
  changed) is removed from the board. The board copy remembers a hash of what was sent, so an edit
  that changes nothing the board shows (and every echo of our own import) writes nothing.
- **the connector's own event** (written for a planner's appointment; recognised by its mapping or
  its `dsx-` transactionId): its notifications are echoes of our writes and change nothing, unless a
  person edited or deleted it in Outlook. Then `OUTLOOK_EDIT_POLICY` decides: `restore_outlook`
  (default: the planning board wins for planner-owned appointments, as the design says), `ignore`,
  or `update_planning` (move/retitle the planner's appointment to match).

Recurring series: occurrences arrive as stubs and are completed from their master first
(`connector/sync/series.py`); a master itself never goes to the board, its occurrences do. All-day
items are dates in the mailbox's time zone (`TrackedResource.time_zone`, see `board_times`).

Pure decisions only; the worker does the I/O.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from connector.model import CalendarEvent, Sensitivity, ShowAs, graph_time
from connector.sync.status import (
    CLEARABLE,
    EVENT_FIELDS,
    TRANSACTION_PREFIX,
    BoardCopy,
    OutlookCopy,
    TrackedResource,
    content_hash,
    filled_fields,
    hashes_of,
)
from connector.sync.timezones import all_day_time, local_midnight, mailbox_zone

PRIVATE_SUBJECT = "Private appointment"
PRIVATE_SENSITIVITIES = frozenset({Sensitivity.PRIVATE, Sensitivity.CONFIDENTIAL})
# Namespace for the board GUIDs of Outlook items: the same item always maps to the same appointment.
BOARD_NAMESPACE = uuid.UUID("0c6f5f5e-2b7a-4d8e-9a41-6c1f0d7e2b93")
CLEARABLE_SET = frozenset(CLEARABLE)


class PrivateItems(StrEnum):
    HIDDEN = "hidden"
    MASKED = "masked"
    SHOWN = "shown"


class OutlookEditPolicy(StrEnum):
    RESTORE_OUTLOOK = "restore_outlook"
    IGNORE = "ignore"
    UPDATE_PLANNING = "update_planning"


DEFAULT_SHOW_AS = frozenset({ShowAs.TENTATIVE, ShowAs.BUSY, ShowAs.OOF, ShowAs.WORKING_ELSEWHERE})


@dataclass(frozen=True)
class ResourceSettings:
    """What a resource lets flow from its calendar to the board (defaults: free time stays private)."""

    sync_to_planning: bool = True
    show_as: frozenset[ShowAs] = DEFAULT_SHOW_AS
    sensitivity: frozenset[Sensitivity] = frozenset(Sensitivity)
    private_items: PrivateItems = PrivateItems.MASKED


@dataclass(frozen=True)
class UpsertOnBoard:
    appointment_guid: str
    item: Mapping[str, Any]  # the board fields (see `board_item`)
    content_hash: str
    event: CalendarEvent
    filled: frozenset[str] = frozenset()  # the `CLEARABLE` fields the item holds a value in (`filled_fields`)
    # Take the board item away and import it again under the same GUID, in one `/import`: a field the board
    # may hold a value in is empty now, and a blank may not clear it (see `plan_item`).
    replace: bool = False
    # Saved before the import: the known copy as it was (its hash: nothing is applied yet) with the fields the
    # import fills added, so that should it take effect behind a lost answer, the copy still says what the
    # board may hold. None when the copy records them all already (the common case: no write).
    widened: BoardCopy | None = None


@dataclass(frozen=True)
class RemoveFromBoard:
    copy: BoardCopy
    reason: str


@dataclass(frozen=True)
class RestoreOutlook:
    """A person changed or deleted the connector's event: write the planner's version back."""

    copy: OutlookCopy
    deleted: bool


@dataclass(frozen=True)
class UpdatePlanning:
    """A person moved or retitled the connector's event and the policy lets that reach the planner."""

    copy: OutlookCopy
    event: CalendarEvent


@dataclass(frozen=True)
class Unchanged:
    reason: str
    change_key: str | None = None
    copy: OutlookCopy | BoardCopy | None = field(default=None)


Action = UpsertOnBoard | RemoveFromBoard | RestoreOutlook | UpdatePlanning | Unchanged


def board_guid(user_id: str, event_id: str) -> str:
    return str(uuid.uuid5(BOARD_NAMESPACE, f"{user_id}/{event_id}"))


def is_connector_event(event: CalendarEvent) -> bool:
    return bool(event.transaction_id and event.transaction_id.startswith(TRANSACTION_PREFIX))


def filtered_out(event: CalendarEvent, settings: ResourceSettings) -> str | None:
    """Why this item stays off the board, or None if it flows."""
    if not settings.sync_to_planning:
        return "sync to the planning board is off for this resource"
    if event.is_cancelled:
        return "cancelled in Outlook"
    if event.type == "seriesMaster":
        return "a series master (its occurrences flow instead)"
    if event.show_as not in settings.show_as:
        return f"show-as {event.show_as.value} is filtered out"
    if event.sensitivity not in settings.sensitivity:
        return f"sensitivity {event.sensitivity.value} is filtered out"
    if event.sensitivity in PRIVATE_SENSITIVITIES and settings.private_items is PrivateItems.HIDDEN:
        return "private items are hidden"
    return None


def board_times(event: CalendarEvent, time_zone: str) -> tuple[datetime, datetime]:
    """When the item is, in UTC. Graph reads an all-day item back as midnight-to-midnight dates
    whatever zone is asked for; those dates are the mailbox's, so they start at its local midnight
    (a Brussels all-day item on 3 December is 2 December 23:00Z to 3 December 23:00Z in winter)."""
    assert event.start is not None and event.end is not None
    if not event.all_day:
        return event.start, event.end
    zone = mailbox_zone(time_zone)
    return local_midnight(event.start.date(), zone), local_midnight(event.end.date(), zone)


def board_item(event: CalendarEvent, settings: ResourceSettings, time_zone: str) -> dict[str, Any]:
    """The fields the board shows for an Outlook item; a masked private item keeps only its time.
    `time_zone` is the mailbox's (`mailboxSettings.timeZone`), for all-day items."""
    start, end = board_times(event, time_zone)
    masked = event.sensitivity in PRIVATE_SENSITIVITIES and settings.private_items is PrivateItems.MASKED
    return {
        "Subject": PRIVATE_SUBJECT if masked else event.subject,
        "Body": "" if masked else event.body,
        "Location": "" if masked else event.location,
        "Categories": [] if masked else list(event.categories),
        "Start": start,
        "End": end,
        "IsAllDayEvent": event.all_day,
        "ShowAs": event.show_as.planning_code,
        "Sensitivity": event.sensitivity.planning_code,
        "Importance": event.importance.planning_code,
        "ICalUId": event.ical_uid or "",
    }


def outlook_fields(event: CalendarEvent, time_zone: str) -> dict[str, Any]:
    """The event in the same shape `desired_event` writes, to compare with what the connector wrote
    (all-day items as dates in the mailbox's zone, `time_zone`)."""
    assert event.start is not None and event.end is not None
    if event.all_day:
        start, end = all_day_time(event.start.date(), time_zone), all_day_time(event.end.date(), time_zone)
    else:
        start, end = graph_time(event.start), graph_time(event.end)
    return {
        "subject": event.subject,
        "body": {"contentType": "text", "content": event.body},
        "start": start,
        "end": end,
        "isAllDay": event.all_day,
        "showAs": event.show_as.value,
        "importance": event.importance.value,
        "categories": list(event.categories),
    }


def plan_item(
    event: CalendarEvent,
    resource: TrackedResource,
    settings: ResourceSettings,
    board_copy: BoardCopy | None,
    own_copy: OutlookCopy | None,
    policy: OutlookEditPolicy,
    direction_enabled: bool = True,
) -> Action:
    """Decide what one delta item means. `own_copy` is set when the item is the connector's event."""
    if own_copy is not None:
        return _plan_own_event(event, own_copy, policy, resource.time_zone)
    if is_connector_event(event):
        # Ours, but its mapping is gone (appointment deleted meanwhile): never mirror it back.
        return Unchanged("the connector's own event")
    if board_copy is None and event.removed:
        return Unchanged("removed before it ever reached the board")
    if not direction_enabled:
        return Unchanged("Outlook → planning is switched off")
    if event.removed:
        assert board_copy is not None
        return RemoveFromBoard(board_copy, "deleted in Outlook or moved out of the sync window")
    reason = filtered_out(event, settings)
    if reason is not None:
        return RemoveFromBoard(board_copy, reason) if board_copy else Unchanged(reason)
    item = board_item(event, settings, resource.time_zone)
    digest = content_hash(item)
    if board_copy is not None and board_copy.content_hash == digest:
        return Unchanged("nothing the board shows changed", event.change_key, board_copy)
    guid = board_copy.appointment_guid if board_copy else board_guid(resource.user_id, event.id)
    # Clearing a field. `mboc_upsertExchangeAppointment` gets an empty Subject, Body or category list as a
    # blank, and Dime.Scheduler does not document whether its upsert takes a blank as "empty" or as "not
    # given" (then the item keeps what it had: a person could never take categories off the board, and an
    # item turning private and masked would keep its body and categories there). So when the board item may
    # hold a value in a field the new version leaves empty, the item is deleted and imported again under the
    # same GUID, both calls in one `/import` (`BoardImport.replace`): right under either reading, and only
    # when a field is emptied (the common change, a move or a retitle, stays one upsert).
    filled = filled_fields(item)
    before = frozenset() if board_copy is None else CLEARABLE_SET if board_copy.filled is None else board_copy.filled
    widened = replace(board_copy, filled=before | filled) if board_copy is not None and not filled <= before else None
    return UpsertOnBoard(guid, item, digest, event, filled, replace=bool(before - filled), widened=widened)


def looks_edited(event: CalendarEvent, copy: OutlookCopy, time_zone: str) -> bool:
    """The connector's event holds something else than the copy says was written (a person's edit, or a
    write of ours whose answer was lost: the event's stamp tells them apart)."""
    if event.removed or (event.change_key is not None and event.change_key == copy.change_key):
        return False
    current = hashes_of(outlook_fields(event, time_zone))
    return any(current[name] != copy.field_hashes.get(name) for name in EVENT_FIELDS)


def _plan_own_event(event: CalendarEvent, copy: OutlookCopy, policy: OutlookEditPolicy, time_zone: str) -> Action:
    if event.removed:
        if policy is OutlookEditPolicy.RESTORE_OUTLOOK:
            return RestoreOutlook(copy, deleted=True)
        return Unchanged("the connector's event was deleted in Outlook; OUTLOOK_EDIT_POLICY=" + policy.value)
    if event.change_key is not None and event.change_key == copy.change_key:
        return Unchanged("echo of the connector's own write", event.change_key, copy)
    if not looks_edited(event, copy, time_zone):
        return Unchanged("the connector's event, unchanged", event.change_key, copy)
    if policy is OutlookEditPolicy.RESTORE_OUTLOOK:
        return RestoreOutlook(copy, deleted=False)
    if policy is OutlookEditPolicy.UPDATE_PLANNING:
        return UpdatePlanning(copy, event)
    return Unchanged("edited in Outlook; OUTLOOK_EDIT_POLICY=ignore", event.change_key, copy)


def plan_full_resync(seen_event_ids: set[str], board_copies: list[BoardCopy]) -> list[RemoveFromBoard]:
    """After a full round: board copies whose Outlook item was not seen are gone from Outlook."""
    return [RemoveFromBoard(copy, "no longer in Outlook (full resync)")
            for copy in board_copies if copy.event_id not in seen_event_ids]
