"""poll_planning: the safety net for missed Dime.Scheduler webhooks.

The timer itself only sends the changes that gave up again (below) and fans out: one `PollSlice`
message per `POLL_SLICE_SIZE` resources on `planning-changes`, so 10,000 mailboxes are compared by
whichever instances take the slices and one slow slice delays no other. Each slice (`compare` with its
scope) decides on its own resources' calendars only: an appointment shared with a resource of another
slice is compared in both, each for its own copies.

A slice reads the planning window (`SYNC_WINDOW_PAST_DAYS` .. `SYNC_WINDOW_FUTURE_DAYS` around now) for
its tracked resources and compares it with the `OutlookCopy` rows, using the same decision the worker
uses (`plan()`): an appointment whose plan is not empty (a copy missing, a field hash that moved,
a resource no longer assigned) is enqueued as `PlanningChange(event="poll")`. Copies whose
appointment did not come back in the window are checked one by one (`appointment_reads`: it may be
gone, or merely outside the window or assigned to untracked resources only), by the numeric id
remembered in the mappings (`GET /appointment/{id}` may not take the GUID); an unclear answer is not
"gone" but left to the next run. Everything in sync
enqueues nothing. Each message carries the appointment's numeric id when it is known. The worker
re-reads the appointment, so a poll racing a webhook is harmless.

A change that gave up after every attempt met a fault (parked on the poison queue, `connector.stores.given_up`)
is sent once more by the next poll, fresh (at most `POLL_RESENDS` times): most such changes the comparison
would find again, but a restore of an event a person deleted would not (the copy still matches the board).
An appointment whose writes Graph refused for good at its current version (`connector.stores.refused`) is
not sent again: it would only be parked again; the planner's next change to it is.

History costs nothing: the copies come from each mailbox's partition of the `window` table
(`mappings.live_copies`, one read per mailbox a resource has or had), which repeats each copy whose event
ends at most a day before the window, and drops the rows that have aged out as it reads them (past
work: a planner deleting a long-past appointment is the `deleted` webhook's to apply). A `window` row
may repeat an older state than its primary row (written second), or a copy that is gone: every
appointment with work is decided again on its primary rows before anything is enqueued, and a row that
disagrees is brought in line. A pending copy (its create's answer not yet seen) has a `window` row of its
own until its event's row is there: the poll plans on it like on any copy, so a create whose answer was
lost is finished, or its event (found by its tag) deleted when the appointment is gone, even if the
create's own message never comes back; the guard's held deletions are read from their primary rows. The
first run (before `INDEXED_ROW`) reads every primary row instead, gives each copy in sync its span (a
conditional write: the planning worker owns the copy), and each copy in or after the window (and each
pending copy) its index and `window` rows, one with work too (should its change never apply, later runs
still see it).

Mass-change guard (README, Mass-change guard): before anything is enqueued, the deletions are counted
per resource. More than `MASS_CHANGE_MAX_ITEMS` of the planner's events to delete from one calendar
are *held* (`connector/stores/holds.py`: a hold with one row per deletion, which the worker checks
before it deletes, so no message can bypass it), and while a hold on a calendar waits for an admin
every deletion the poll finds there joins it; when none is left the hold resolves itself. A released
deletion is enqueued like any other; its allowance row goes once the event is gone.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter, defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import partial

from connector.errors import GraphError, PlanningError, UnclearAnswer
from connector.messages import PlanningChange, PollSlice
from connector.model import Appointment, InvalidPayload
from connector.services import Services
from connector.stores import given_up, refused
from connector.stores.activity import ActivityEntry
from connector.stores.holds import RELEASED, HeldItem, HoldKind
from connector.stores.mappings import IndexedCopy
from connector.stores.registry import ResourceRecord
from connector.sync.status import OutlookCopy, TrackedResource, event_span
from connector.sync.to_outlook import Action, DeleteEvent, desired_event, plan
from connector.workers.appointment_reads import read_appointment

log = logging.getLogger(__name__)

POLL_RESENDS = 3  # how many times a change that gave up on faults is sent again (each after ~an hour of faults)
POLL_SLICE_SIZE = 100  # resources per PollSlice: a slice is one message, its work one invocation
# Written once the first run gave every copy in sync its rows in the index and the `window` table
# (`_index_everything`); a deployment that had only the index ("copies-indexed") runs it once more.
INDEXED_ROW = ("poll", "copies-windowed")


@dataclass
class PollResult:
    window_appointments: int = 0
    copies: int = 0
    aged_out: int = 0  # appointments whose events all ended before the window: not read
    enqueued: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    held: dict[str, int] = field(default_factory=dict)  # resource → deletions held for an admin
    sent_again: int = 0  # changes that had given up on faults, sent once more
    refused: list[str] = field(default_factory=list)  # appointments Graph refused for good at this version
    slices: int = 0  # PollSlice messages the timer sent


def _work(services: Services, appointment: Appointment | None, tracked: dict[str, TrackedResource],
          copies: dict[str, OutlookCopy]) -> list[Action]:
    settings = services.settings
    return plan(appointment, tracked, copies, settings.planning_rules, "poll", settings.sync_to_exchange_enabled)


def poll_planning(services: Services, now: datetime | None = None) -> PollResult:
    """The timer: send the changes that gave up again, then one `PollSlice` per `POLL_SLICE_SIZE` resources
    (any instance compares them). The first run, before the copies are indexed, compares everything here."""
    result = PollResult()
    if not services.settings.sync_to_exchange_enabled:
        return result
    result.sent_again = _send_given_up_again(services)
    if not _index_ready(services):
        return compare(services, None, now, result)
    resources = sorted(r.resource_no for r in services.registry.all() if r.mailboxes)
    for first in range(0, len(resources), POLL_SLICE_SIZE):
        services.work_queues.send_poll_slice(PollSlice(resources[first:first + POLL_SLICE_SIZE]))
        result.slices += 1
    services.holds.forget_released((HoldKind.UNTRACK,), set())  # released untracks are applied at once
    log.info("poll_planning: %d resources in %d slice(s), %d change(s) that had given up sent again",
             len(resources), result.slices, result.sent_again)
    return result


async def poll_slice(services: Services, message: PollSlice) -> None:
    """One slice of the poll on the queue worker. A failing upstream ends it: the next run compares again."""
    try:
        result = await asyncio.to_thread(compare, services, frozenset(message.resource_nos), None, PollResult())
    except (GraphError, PlanningError) as exc:
        log.warning("poll slice of %d resources: %s; the next run compares them again", len(message.resource_nos),
                    exc)
        return
    log.info("poll slice: %d resources, %d appointments in the window, %d copies read, %d changes enqueued, "
             "%d deletion(s) held", len(message.resource_nos), result.window_appointments, result.copies,
             len(result.enqueued), sum(result.held.values()))


def compare(services: Services, scope: frozenset[str] | None, now: datetime | None, result: PollResult) -> PollResult:
    """Enqueue a change for every appointment whose Outlook events differ from the planning, for the
    resources in `scope` (None: all of them, the first run)."""
    settings = services.settings
    moment = now or datetime.now(UTC)
    tracked = {no: r for no, r in services.registry.tracked().items() if scope is None or no in scope}
    start = moment - timedelta(days=settings.sync_window_past_days)
    end = moment + timedelta(days=settings.sync_window_future_days)
    known = _live_copies(services, scope, start, result) if scope is not None else _all_copies(services, result)
    copies: dict[str, dict[str, OutlookCopy]] = defaultdict(dict)
    for item in known:
        copies[item.copy.appointment_guid.lower()][item.copy.resource_no] = item.copy
    if scope is not None:
        copies.update(_held_copies(services, scope, result))
    ids: dict[str, str] = {}  # guid -> numeric id, for the messages
    appointments: dict[str, Appointment | None] = {}  # the appointments with work, as read
    in_sync: list[tuple[Appointment, dict[str, OutlookCopy]]] = []
    seen: set[str] = set()
    if tracked:
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
            mine = copies.get(appointment.guid, {})
            if not _work(services, appointment, tracked, mine):
                in_sync.append((appointment, mine))
            elif not appointment.created_by_exchange and not services.mappings.is_outlook_item(appointment.guid):
                appointments[appointment.guid] = appointment  # (an Outlook item on the board is the other direction's)
    for guid, mine in copies.items():
        if guid in seen:
            continue
        if _aged_out(mine, start):
            result.aged_out += 1
            continue
        # Not in the window: deleted, moved out of it, or assigned to untracked resources only.
        try:
            current = read_appointment(services.planning, guid, services.mappings.appointment_id(guid), mine.values())
            still: Appointment | None = None if current is None else Appointment.from_payload(current)
        except (InvalidPayload, UnclearAnswer) as exc:  # not "gone": looked at again by the next run
            result.unreadable.append(str(exc))
            continue
        if _work(services, still, tracked, mine):
            appointments[guid] = still
        elif still is not None:
            in_sync.append((still, mine))
    work = _confirmed(services, scope, appointments, tracked, known) if scope is not None else {
        guid: _work(services, appointment, tracked, copies[guid]) for guid, appointment in appointments.items()}
    if scope is None:
        _index_everything(services, tracked, in_sync, known, start)
    held = _guard(services, work, moment, result, scope)
    for guid, actions in work.items():
        if all(isinstance(a, DeleteEvent) and (guid, a.copy.resource_no) in held for a in actions):
            continue  # nothing but held deletions: the worker would skip them
        if _still_refused(services, guid, actions, appointments.get(guid)):
            result.refused.append(guid)
            continue
        result.enqueued.append(guid)
    for guid in result.enqueued:
        services.work_queues.send_planning_change(PlanningChange(appointment_guid=guid, event="poll",
                                                                 appointment_id=ids.get(guid, "")))
    if scope is None:
        log.info("poll_planning (first run, every copy): %d appointments in the window, %d copies read (%d "
                 "appointments past the window, not read), %d changes enqueued, %d deletion(s) held, %d change(s) "
                 "that had given up sent again", result.window_appointments, result.copies, result.aged_out,
                 len(result.enqueued), sum(result.held.values()), result.sent_again)
    return result


def _index_ready(services: Services) -> bool:
    return services.repositories.cursors.get(*INDEXED_ROW) is not None


def _live_copies(services: Services, scope: frozenset[str], window_start: datetime,
                 result: PollResult) -> list[IndexedCopy]:
    """From each mailbox's index, the copies whose events end at most a day before the window (history
    is left out by the query): every mailbox a resource of the scope has or had, its copies only."""
    ending_from = _ending_from(window_start)
    mailboxes = sorted({user for record in services.registry.all() if record.resource_no in scope
                        for user in record.mailboxes})
    found = [item for user in mailboxes for item in services.mappings.live_copies(user, ending_from)
             if item.copy.resource_no in scope]
    result.copies += len(found)
    return found


def window_copies(services: Services, records: Collection[ResourceRecord],
                  now: datetime | None = None) -> dict[str, list[OutlookCopy]]:
    """By resource, the connector's copies in its calendars that the poll looks at, so deletes once the
    resource is untracked: each mailbox's `window` rows (`live_copies`), never the history. Before the
    first run indexed them (`INDEXED_ROW`), the primary rows whose events have not aged out (a scan, once)."""
    start = (now or datetime.now(UTC)) - timedelta(days=services.settings.sync_window_past_days)
    ending_from = _ending_from(start)
    found: dict[str, list[OutlookCopy]] = {record.resource_no: [] for record in records}
    if not _index_ready(services):
        for copy in services.mappings.all_outlook_copies():
            if copy.resource_no in found and (not copy.ends_at or copy.ends_at >= ending_from):
                found[copy.resource_no].append(copy)
        return found
    for record in records:
        for user in record.mailboxes:
            found[record.resource_no] += [item.copy for item in services.mappings.live_copies(user, ending_from)
                                          if item.copy.resource_no == record.resource_no]
    return found


def _ending_from(window_start: datetime) -> str:
    """The earliest end of an event the poll still looks at (a day's slack for all-day events), as
    `event_span` writes it."""
    return (window_start - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")


def _held_copies(services: Services, scope: frozenset[str], result: PollResult) -> dict[str, dict[str, OutlookCopy]]:
    """The scope's copies of appointments with a deletion held (or released) for an admin, from their
    primary rows: the guard must see every deletion it holds, whatever the `window` rows say."""
    guids = {(item.appointment_guid or item.key).lower()
             for subject, rows in services.holds.all_items(HoldKind.CALENDAR).items() if subject in scope
             for item in rows.values()}
    found = {guid: _scoped(services.mappings.outlook_copies(guid), scope) for guid in sorted(guids)}
    result.copies += sum(len(mine) for mine in found.values())
    return found


def _all_copies(services: Services, result: PollResult) -> list[IndexedCopy]:
    """Every copy, from the primary rows: the first run, before the index repeats the copies."""
    found = [IndexedCopy(copy, "") for copy in services.mappings.all_outlook_copies()]
    result.copies += len(found)
    return found


def _scoped(copies: dict[str, OutlookCopy], scope: frozenset[str]) -> dict[str, OutlookCopy]:
    """The copies of the scope's resources (another slice decides on the others' calendars)."""
    return {no: copy for no, copy in copies.items() if no in scope}


def _confirmed(services: Services, scope: frozenset[str], appointments: dict[str, Appointment | None],
               tracked: dict[str, TrackedResource], known: list[IndexedCopy]) -> dict[str, list[Action]]:
    """The work the index suggests, decided again on the primary rows (one partition read per appointment
    with work: the index may repeat an older state, or a copy that is gone); index rows that disagree
    with their primary row are brought in line, so a stale one suggests nothing twice."""
    rows: dict[str, list[IndexedCopy]] = defaultdict(list)
    for item in known:
        rows[item.copy.appointment_guid.lower()].append(item)
    work: dict[str, list[Action]] = {}
    for guid, appointment in appointments.items():
        truth = _scoped(services.mappings.outlook_copies(guid), scope)
        for item in rows.get(guid, []):
            if truth.get(item.copy.resource_no) != item.copy:
                services.mappings.heal_index(item, truth.get(item.copy.resource_no))
        actions = _work(services, appointment, tracked, truth)
        if actions:
            work[guid] = actions
    return work


def _index_everything(services: Services, tracked: dict[str, TrackedResource],
                      in_sync: list[tuple[Appointment, dict[str, OutlookCopy]]], known: list[IndexedCopy],
                      window_start: datetime) -> None:
    """The first run: every copy in sync gets its span, and every copy whose event ends in or after the
    window an index row and a `window` row that repeat it (one with work too: should its change fail
    for good, the next polls must still see it); from the next run on, the poll reads the `window` table
    (`INDEXED_ROW`)."""
    for appointment, mine in in_sync:
        _note_spans(services, appointment, tracked, mine)  # a copy given its span is indexed as it is written
    ending_from = _ending_from(window_start)
    for item in known:  # as read: a copy with no span yet ("") is left to `_note_spans`
        copy = item.copy
        if copy.event_id is None or copy.ends_at >= ending_from:
            services.mappings.reindex(copy)
    services.repositories.cursors.upsert(*INDEXED_ROW, {"At": datetime.now(UTC).isoformat()})


def _still_refused(services: Services, guid: str, actions: list[Action], appointment: Appointment | None) -> bool:
    """Whether every write this appointment needs was refused for good at its current version
    (`connector.stores.refused`): then sending it again would only park it again. A refusal of an
    older version is forgotten (the planner changed the appointment: worth trying again)."""
    cursors = services.repositories.cursors
    version = refused.version_of(appointment)
    still = True
    for resource_no in sorted({_resource_of(action) for action in actions}):
        seen = refused.refused_version(cursors, guid, resource_no)
        if seen is not None and seen != version:
            refused.forget(cursors, guid, resource_no)
        still = still and seen == version
    return still


def _resource_of(action: Action) -> str:
    return action.copy.resource_no if isinstance(action, DeleteEvent) else action.resource.resource_no


def _send_given_up_again(services: Services) -> int:
    """Each change that gave up after every attempt met a fault goes to the queue once more, fresh (a
    restore of an event a person deleted would otherwise wait for the next full round), at most
    `POLL_RESENDS` times: a change that keeps giving up (each time after an hour of faults) stays parked
    on the monitor for an admin instead of going round for ever."""
    cursors = services.repositories.cursors
    waiting = given_up.waiting(cursors)
    sent = 0
    for item in waiting:
        message = item.message
        again = message.resent < POLL_RESENDS
        if again:  # before the row goes: a crash sends it twice
            services.work_queues.send_planning_change(replace(message, resent=message.resent + 1))
            sent += 1
        given_up.forget(cursors, item.key, item.etag)
        detail = ("sent once more by the poll: it had given up after every attempt met a fault (its parked copy "
                  "stays on the monitor; retrying that too writes nothing twice)") if again else (
            f"not sent again by the poll: it gave up on faults {message.resent + 1} times; its parked copy stays "
            "on the monitor for an admin's Retry")
        services.activity.record(ActivityEntry(
            "to_outlook", "sync", "retrying" if again else "failed",
            appointment_guid=message.appointment_guid.lower(), correlation_id=message.correlation_id,
            detail=detail))
    return sent


def _aged_out(known: dict[str, OutlookCopy], window_start: datetime) -> bool:
    """Every event written for the appointment ended more than a day before the window (history)."""
    ends = [copy.ends_at for copy in known.values()]
    try:
        return bool(ends) and all(
            datetime.fromisoformat(e).replace(tzinfo=UTC) < window_start - timedelta(days=1) for e in ends)
    except ValueError:  # a copy written before spans were recorded (empty): read it
        return False


def _note_spans(services: Services, appointment: Appointment, tracked: dict[str, TrackedResource],
                known: dict[str, OutlookCopy]) -> None:
    """Give copies written before spans were recorded the span of their event as the appointment says
    (only if the row is unchanged: the planning worker owns it), so the next poll need not read them."""
    for resource_no, copy in known.items():
        if copy.ends_at or copy.event_id is None:
            continue
        zone = tracked[resource_no].time_zone if resource_no in tracked else "UTC"
        starts_at, ends_at = event_span(desired_event(appointment, zone))
        services.mappings.save_outlook_copy_if(copy, replace(copy, starts_at=starts_at, ends_at=ends_at))


def _guard(services: Services, work: dict[str, list[Action]], moment: datetime, result: PollResult,
           scope: frozenset[str] | None) -> set[tuple[str, str]]:
    """The mass-change guard of each calendar of the scope (see the module docstring): the (appointment,
    resource) deletions held for an admin."""
    deletions: dict[str, dict[str, str]] = defaultdict(dict)  # resource → appointment → why
    for guid, actions in work.items():
        for action in actions:
            if isinstance(action, DeleteEvent):
                deletions[action.copy.resource_no][guid] = action.reason
    holds = services.holds
    rows = {no: items for no, items in holds.all_items(HoldKind.CALENDAR).items() if scope is None or no in scope}
    limit = services.settings.mass_change.max_items
    held: set[tuple[str, str]] = set()
    referenced: set[str] = set()  # released holds whose allowances are still needed
    for resource_no in sorted(set(deletions) | set(rows)):
        wanted, current = deletions.get(resource_no, {}), rows.get(resource_no, {})
        if not wanted and not current:
            continue
        decision = holds.guard_items(
            HoldKind.CALENDAR, resource_no, resource_no, {g: HeldItem(g, "", appointment_guid=g) for g in wanted},
            limit, partial(calendar_what, resource_no, why=wanted), moment, complete=True, rows=current)
        held.update((guid, resource_no) for guid in decision.held)
        if decision.held:
            result.held[resource_no] = len(decision.held)
        done = [k for k, item in current.items() if item.state == RELEASED and k not in wanted]
        holds.consume(HoldKind.CALENDAR, resource_no, done)
        referenced.update(item.hold_id for k, item in current.items() if item.state == RELEASED and k in wanted)
        if decision.created and decision.hold is not None:
            services.activity.record(ActivityEntry(
                "to_outlook", "hold", "held", resource_no=resource_no,
                detail=f"hold {decision.hold.hold_id}: {decision.hold.what}; an admin releases or discards it on "
                       "the monitor"))
        if decision.resolved is not None:
            services.activity.record(ActivityEntry(
                "system", "resolve", "applied", resource_no=resource_no,
                detail=f"hold {decision.resolved.hold_id} no longer needed (nothing left to delete): "
                       f"{decision.resolved.what}"))
    if scope is None:
        holds.forget_released((HoldKind.CALENDAR, HoldKind.UNTRACK), referenced)
    else:
        holds.forget_released((HoldKind.CALENDAR,), referenced, scope)
    return held


def calendar_what(resource_no: str, count: int, why: dict[str, str]) -> str:
    """The hold's line on the monitor."""
    reason = Counter(why.values()).most_common(1)[0][0] if why else "no longer on the planning board"
    return f"Delete {count} of the planner's events from {resource_no}'s Outlook calendar (mostly: {reason})"
