"""The planning-changes worker: bring one appointment's Outlook events to its current state (the I/O side).

The decision is `connector.sync.to_outlook.plan` (pure); this module reads its inputs, runs its actions
and records what happened:

1. Notifications are hints: the current appointment is read from Dime.Scheduler, for a `deleted` event
   too, and only a confirmed absence counts as deleted (`connector.workers.appointment_reads`): a forged
   webhook, or one whose `id` is another appointment's, deletes nothing.
2. Appointments that mirror Outlook items (`CreatedByExchange`, or marked by the Outlook → planning
   direction in the mappings) are that direction's echoes: nothing is written for them.
3. `plan()` with the tracked resources, the stored `OutlookCopy` rows, `PLANNING_RULES` and
   `SYNC_TO_EXCHANGE_ENABLED`. Actions for different resources run concurrently (their writes
   meet in one `$batch`, see `connector.gateways.batcher`); actions for the same resource run in order.
   - create: a *pending* copy (transactionId, no event id) is saved before the POST, so a retry
     reuses the transactionId and Graph never makes a second event; then the copy gets the event
     id, per-field hashes and changeKey;
   - update: PATCH of the changed fields only; 404 (deleted in Outlook) recreates the event;
   - delete: DELETE (404 is fine); a pending copy's event is looked up by its tag first.
4. One activity entry per applied action (and per change skipped as an Outlook item or because the
   direction is off; a change already in sync logs nothing), with the latency from the planner's change
   (the appointment's LastModifiedDate, else when the webhook arrived) to the write.

Concurrency: two messages about the same appointment must not interleave (duplicate webhooks, a
poll racing a webhook). In one process they queue on an asyncio lock per appointment; across
processes, a change that has writes to make takes a lease row in the `cursors` table
(insert-if-absent, expiring) and plans again on the appointment and copies read under it; the loser
re-sends its message for when the lease should be free (not counted as an attempt: a crashed holder's
lease expires, so waiting always ends). A change already in sync takes no lease and writes nothing.
Failures go through `connector.workers.retry` (throttled → re-queued with Retry-After; permanent or
exhausted → poison queue + a failed activity entry). A change that gave up because every attempt met a
fault is also remembered for the next poll, which sends it once more (`connector.stores.given_up`); a write
Graph refused for good is remembered with the appointment's version, so the poll does not send it again
until the planner changes it (`connector.stores.refused`).

Mass-change guard: before it deletes an event, the worker reads the deletion's hold row (a point read,
`connector/stores/holds.py`). A deletion held for an admin is skipped, whichever message asks for it (a
webhook, a retry, a replay); once released it goes ahead, "released by" the admin. Every other deletion is
counted per calendar (`connector.sync.deletion_rate`): deletions that arrive one webhook at a time are
held past MASS_CHANGE_MAX_ITEMS within an hour or two, like the poll's past that many in one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from connector.gateways.batcher import GraphBatcher, WriteRequest, WriteResponse, inner_error
from connector.messages import InvalidMessage, PlanningChange, PollSlice, message_kind
from connector.model import Appointment, CalendarEvent, InvalidPayload, parse_utc
from connector.stores import deletion_rate, given_up, refused
from connector.stores.activity import ActivityEntry
from connector.stores.holds import HELD, HeldItem, HoldKind
from connector.stores.mappings import AppointmentStatus
from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, TableRepository
from connector.stores.storage import PLANNING_CHANGES_QUEUE
from connector.sync.conflicts import (
    AfterPreconditionFailed,
    ConflictPolicy,
    after_precondition_failed,
    if_match,
)
from connector.sync.deletion_rate import over_limit
from connector.sync.status import (
    EVENT_FIELDS,
    STAMP_PROPERTY_ID,
    TAG_PROPERTY_ID,
    OutlookCopy,
    TrackedResource,
    event_span,
    hashes_of,
    stamp_property,
    written_stamp,
)
from connector.sync.to_outlook import Action, CreateEvent, DeleteEvent, UpdateEvent, desired_event, new_transaction_id, plan
from connector.sync.to_planning import OutlookEditPolicy, outlook_fields
from connector.workers.appointment_reads import read_appointment
from connector.workers.outlook_edits import conflict_account, planner_appointment, planner_changed, take_outlook_edit
from connector.workers.poll import calendar_what
from connector.workers.retry import Failure, classify, gives_up_on_faults, handle_failure, park_invalid_message

if TYPE_CHECKING:
    from connector.services import Services

PREFER = ('IdType="ImmutableId"', 'outlook.timezone="UTC"')
LEASE_PARTITION = "lease|appointment"
LEASE_SECONDS = 120  # longer than any one change takes; a crashed worker's lease simply expires
LEASE_WAIT_MAX_SECONDS = 10  # a busy appointment is looked at again within this (its holder is usually done sooner)
IRRESOLVABLE_RETRIES = 2  # in-place PATCH retries on a spontaneous 412 before the change goes back to its queue
TRACKED_TTL_SECONDS = 5.0  # how stale the tracked-resource list may be (a newly assigned one is re-read at once)
T = TypeVar("T")


# -- per-process runtime: the batcher and the per-appointment locks, bound to one event loop ------
class _Runtime:
    def __init__(self, services: Services, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.batcher = GraphBatcher(lambda body: services.exchange.batch(body))
        self._locks: dict[str, asyncio.Lock] = {}
        self._ready = False
        self._tracked: tuple[float, dict[str, TrackedResource]] | None = None

    async def tracked(self, services: Services, needed: frozenset[str] = frozenset(),
                      fresh: bool = False) -> dict[str, TrackedResource]:
        """The tracked resources: re-read after TRACKED_TTL_SECONDS, or at once when one of `needed` is
        missing (a resource tracked a moment ago must not miss a change; only untracked ones cost a read),
        or when `fresh` (the poll decided on the registry as it is: a resource untracked a moment ago)."""
        now = time.monotonic()
        if fresh or self._tracked is None or now - self._tracked[0] > TRACKED_TTL_SECONDS \
                or not needed <= self._tracked[1].keys():
            self._tracked = (now, await _io(services.registry.tracked))
        return self._tracked[1]

    async def ready(self, services: Services) -> None:
        """Create the tables and queues once per process (idempotent; cheap afterwards)."""
        if not self._ready:
            await asyncio.to_thread(services.repositories.ensure)
            await asyncio.to_thread(services.work_queues.ensure)
            self._ready = True

    @contextlib.asynccontextmanager
    async def appointment_lock(self, guid: str) -> Any:
        lock = self._locks.setdefault(guid, asyncio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and self._locks.get(guid) is lock:
                del self._locks[guid]


_runtimes: weakref.WeakKeyDictionary[Services, _Runtime] = weakref.WeakKeyDictionary()


def runtime(services: Services) -> _Runtime:
    """The runtime of these services on the running loop (a new loop, e.g. a new test host, gets a new one)."""
    loop = asyncio.get_running_loop()
    current = _runtimes.get(services)
    if current is None or current.loop is not loop:
        current = _runtimes[services] = _Runtime(services, loop)
    return current


async def _io(fn: Callable[..., T], *args: Any) -> T:
    """Blocking SDK calls (Table Storage, Dime.Scheduler) run in a thread: the loop serves other changes."""
    return await asyncio.to_thread(fn, *args)


# -- the cross-process lease ------------------------------------------------------------------------
def acquire_lease(cursors: TableRepository, guid: str, owner: str, now: datetime | None = None) -> str | None:
    """Take the appointment's lease (returns its ETag), or None while another live owner holds it."""
    moment = now or datetime.now(UTC)
    data = {"Owner": owner, "Expires": (moment + timedelta(seconds=LEASE_SECONDS)).isoformat()}
    try:
        return cursors.insert(LEASE_PARTITION, guid, data)
    except AlreadyExists:
        pass
    row = cursors.get(LEASE_PARTITION, guid)
    if row is None:  # released in between: one more try
        try:
            return cursors.insert(LEASE_PARTITION, guid, data)
        except AlreadyExists:
            return None
    try:
        expired = datetime.fromisoformat(str(row.data.get("Expires"))) <= moment
    except ValueError:
        expired = True
    if not expired:
        return None
    try:
        return cursors.replace(LEASE_PARTITION, guid, data, row.etag)
    except ConcurrencyConflict:
        return None


def lease_remaining(cursors: TableRepository, guid: str, now: datetime | None = None) -> float:
    """Seconds until the appointment's lease expires (0 when free or unreadable)."""
    row = cursors.get(LEASE_PARTITION, guid)
    try:
        expires = datetime.fromisoformat(str(row.data.get("Expires"))) if row else None
    except ValueError:
        expires = None
    return max(0.0, (expires - (now or datetime.now(UTC))).total_seconds()) if expires else 0.0


def release_lease(cursors: TableRepository, guid: str, etag: str) -> None:
    with contextlib.suppress(ConcurrencyConflict):  # taken over after expiry: not ours any more
        cursors.delete(LEASE_PARTITION, guid, etag)


# -- failures -------------------------------------------------------------------------------------
class ActionFailed(Exception):
    """One action of a change failed: the activity entry describing it, the cause, and the version of
    the appointment it was planned from (`refused.version_of`)."""

    def __init__(self, entry: ActivityEntry, cause: BaseException, version: str | None = None) -> None:
        self.entry = entry
        self.cause = cause
        self.version = version
        super().__init__(str(cause))


def _failure_of(exc: BaseException) -> Failure | None:
    if isinstance(exc, InvalidPayload):
        return Failure(False, None, f"Dime.Scheduler sent an appointment that cannot be read: {exc}")
    return classify(exc)


# -- the worker -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Context:
    services: Services
    runtime: _Runtime
    message: PlanningChange
    guid: str
    appointment: Appointment | None
    changed_at: datetime

    def entry(self, action: str, outcome: str, resource_no: str = "", event_id: str = "", detail: str = "",
              latency: bool = False) -> ActivityEntry:
        latency_ms = None
        if latency:
            latency_ms = max(0, int((datetime.now(UTC) - self.changed_at).total_seconds() * 1000))
        return ActivityEntry("to_outlook", action, outcome, resource_no=resource_no, appointment_guid=self.guid,
                             event_id=event_id, correlation_id=self.message.correlation_id, detail=detail,
                             latency_ms=latency_ms)


async def handle_planning_message(services: Services, body: bytes | str) -> None:
    """The queue function's body: parse, apply, and route failures to the retry policy."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    try:
        if message_kind(text) == PollSlice.kind:  # poll_planning's slice of the resources
            from connector.workers.poll import poll_slice

            await poll_slice(services, PollSlice.from_json(text))
            return
        message = PlanningChange.from_json(text)
    except InvalidMessage as exc:
        await _io(park_invalid_message, services.storage, services.activity, PLANNING_CHANGES_QUEUE, "to_outlook",
                  text, str(exc))
        return
    await apply_planning_change(services, message)


async def apply_planning_change(services: Services, message: PlanningChange) -> None:
    """Apply one change; transient failures are re-queued, permanent ones parked (see module docstring)."""
    rt = runtime(services)
    await rt.ready(services)
    guid = message.appointment_guid.lower()
    base = ActivityEntry("to_outlook", "sync", "failed", appointment_guid=guid, correlation_id=message.correlation_id)
    try:
        async with rt.appointment_lock(guid):
            await _apply(services, rt, message, guid)
    except Exception as exc:
        entry, cause = (exc.entry, exc.cause) if isinstance(exc, ActionFailed) else (base, exc)
        failure = _failure_of(cause)
        if failure is None:
            raise  # a bug or a storage outage: the host retries and poisons after maxDequeueCount
        max_attempts = services.settings.work_max_attempts
        if gives_up_on_faults(message, failure, max_attempts):  # before parking: a crash between retries it all
            await _io(given_up.remember, services.repositories.cursors, message)
        if not failure.transient and isinstance(exc, ActionFailed) and exc.version is not None:
            # Refused for good: the poll leaves it alone until the planner changes the appointment.
            await _io(refused.remember, services.repositories.cursors, guid, entry.resource_no, exc.version)
        await _io(handle_failure, services.storage, services.activity, PLANNING_CHANGES_QUEUE, message, failure,
                  max_attempts, entry)


async def _read_both(services: Services, message: PlanningChange, guid: str) -> tuple[Appointment | None,
                                                                                 AppointmentStatus]:
    """The appointment as Dime.Scheduler has it now (None when it is gone) and its status rows (one
    partition read). A `deleted` webhook is read too: only an absence Dime.Scheduler confirms deletes
    (`appointment_reads`: whoever holds the webhook URL must not be able to empty calendars)."""
    status = await _io(services.mappings.appointment_status, guid)
    # By its numeric id (`GET /appointment/{id}` may not take the GUID): the one remembered when its
    # events were written (read from Dime.Scheduler itself), else the message's (which anyone could send).
    appointment_id = status.appointment_id or message.appointment_id
    data = await _io(read_appointment, services.planning, guid, appointment_id, status.copies.values())
    return (None if data is None else Appointment.from_payload(data)), status


def _changed_at(appointment: Appointment | None, message: PlanningChange) -> datetime:
    for value in ((appointment.last_modified if appointment else None), message.received_at):
        if value:
            try:
                return parse_utc(value, "changed at")
            except InvalidPayload:
                continue
    return datetime.now(UTC)


def _is_outlook_item(appointment: Appointment | None, message: PlanningChange) -> bool:
    """Whether the payload itself says so (`CreatedByExchange`, read strictly). The published payload
    has no such field: the mapping's Outlook-item mark (`mappings.is_outlook_item`) is what decides."""
    if appointment is not None:
        return appointment.created_by_exchange
    try:
        return Appointment.from_payload(message.appointment).created_by_exchange if message.appointment else False
    except InvalidPayload:
        return False


def _mailbox_moved(copies: Mapping[str, OutlookCopy], tracked: Mapping[str, TrackedResource]) -> bool:
    return any(no in tracked and tracked[no].user_id != copy.user_id for no, copy in copies.items())


async def _apply(services: Services, rt: _Runtime, message: PlanningChange, guid: str) -> None:
    appointment, status = await _read_both(services, message, guid)
    tracked = await rt.tracked(services, appointment.resource_nos if appointment else frozenset(),
                               fresh=message.event == "poll")
    if _mailbox_moved(status.copies, tracked):
        # A copy in another mailbox than the list names: the email changed, and a list a few seconds old may
        # name the mailbox the resource has left. Moving an event is decided on the registry as it is now.
        tracked = await rt.tracked(services, fresh=True)
    ctx = _Context(services, rt, message, guid, appointment, _changed_at(appointment, message))
    if status.outlook_item or _is_outlook_item(appointment, message):
        await _io(services.activity.record, ctx.entry("skip", "skipped", detail="an Outlook item shown on the board "
                                                      "(the Outlook → planning direction owns it)"))
        return
    settings = services.settings
    if not settings.sync_to_exchange_enabled:
        await _io(services.activity.record, ctx.entry("skip", "skipped", detail="SYNC_TO_EXCHANGE_ENABLED is off"))
        return
    actions = _plan(ctx, tracked, _restoring(message, status.copies))
    if not actions:
        return  # in sync already (a replayed or no-op change): nothing to write, nothing to log
    if not await _unheld(ctx, actions, record=True):
        return  # nothing but deletions held for an admin
    # Writes ahead: take the appointment's lease, then decide again on the copies as they are now
    # (another instance may have applied the same change meanwhile).
    cursors = services.repositories.cursors
    etag = await _io(acquire_lease, cursors, guid, uuid.uuid4().hex)
    if etag is None:
        await _wait_for_lease(services, cursors, message, guid)
        return
    try:
        # Under the lease, read both sides again: the appointment may have changed since the first
        # read (a planner's second edit), and the copies may have been written by the lease's last holder.
        appointment, status = await _read_both(services, message, guid)
        ctx = replace(ctx, appointment=appointment)
        tracked = await rt.tracked(services, appointment.resource_nos if appointment else frozenset())
        actions = await _unheld(ctx, _plan(ctx, tracked, await _verified_restore(ctx, tracked, status.copies)),
                                record=False)
        if actions and appointment is not None and appointment.appointment_id \
                and appointment.appointment_id != status.appointment_id:
            # Kept beside its events: later reads (poll, restore) need the numeric id, not the GUID.
            await _io(services.mappings.remember_appointment_id, guid, appointment.appointment_id)
        await _execute(ctx, actions)
    finally:
        await _io(release_lease, cursors, guid, etag)


async def _wait_for_lease(services: Services, cursors: TableRepository, message: PlanningChange, guid: str) -> None:
    """Another worker holds the appointment: try again when it should be done (its lease expires at the
    latest, so a crashed holder delays the change, never loses it). Waiting is not a failed attempt."""
    delay = await _io(lease_remaining, cursors, guid)
    await _io(services.work_queues.send_planning_change, message, min(LEASE_WAIT_MAX_SECONDS, int(delay) + 1))


def _plan(ctx: _Context, tracked: dict[str, TrackedResource], copies: dict[str, OutlookCopy]) -> list[Action]:
    settings = ctx.services.settings
    return plan(ctx.appointment, tracked, copies, settings.planning_rules, uuid.uuid4().hex[:8],
                settings.sync_to_exchange_enabled)


def _restoring(message: PlanningChange, copies: dict[str, OutlookCopy],
               change_key: str | None = None) -> dict[str, OutlookCopy]:
    """A restore: the named event no longer holds what was written (a person edited or deleted it), so
    its copy is planned as if its content were unknown: the whole planner's version is PATCHed (on the
    changeKey it was read with, when it was), and a 404 re-creates it with a pending copy (a retry never
    makes a second event). A copy that has moved on to another event meanwhile (restored already) is
    left as it is; so are the rules: an appointment they now exclude is not restored but removed."""
    copy = _restored_copy(message, copies)
    if copy is None:
        return copies
    return {**copies, copy.resource_no: replace(copy, field_hashes={}, change_key=change_key or copy.change_key)}


def _restored_copy(message: PlanningChange, copies: dict[str, OutlookCopy]) -> OutlookCopy | None:
    copy = copies.get(message.restore_resource) if message.event == "restore" else None
    if copy is None or not copy.event_id or copy.event_id != (message.restore_event_id or copy.event_id):
        return None
    return copy


async def _verified_restore(ctx: _Context, tracked: dict[str, TrackedResource],
                            copies: dict[str, OutlookCopy]) -> dict[str, OutlookCopy]:
    """Under the lease, a restore is checked against the event as it is now: one that already holds
    what was written (restored by an earlier delivery of this message) is left alone, so a replayed
    restore writes nothing."""
    copy = _restored_copy(ctx.message, copies)
    resource = tracked.get(copy.resource_no) if copy else None
    if copy is None or copy.event_id is None or resource is None:
        return copies
    event = await ctx.services.exchange.get_event(copy.user_id, copy.event_id, STAMP_PROPERTY_ID)
    if event is None:
        if ctx.services.settings.outlook_edit_policy is not OutlookEditPolicy.RESTORE_OUTLOOK:
            # Deleted since this restore (of an edit, by CONFLICT_POLICY) was asked for: under this policy a
            # person's deletion stands, so a late or repeated restore must not bring the event back.
            return copies
        return _restoring(ctx.message, copies)
    seen_key, seen = _seen(event, resource.time_zone)  # unreadable: no hashes, the planner's version over it
    if seen == dict(copy.field_hashes):
        return copies
    if seen and seen == written_stamp(event):
        # Our own write, whose answer was lost: nobody edited it. The copy catches up with the event, so the
        # planner's version is written over what it really holds.
        return {**copies, copy.resource_no: replace(copy, field_hashes=seen, change_key=seen_key)}
    appointment = ctx.appointment
    if appointment is not None and seen and planner_changed(appointment, copy, resource.time_zone):
        # The planner changed it too: both sides changed since the last sync.
        policy = ctx.services.settings.conflict_policy
        why = conflict_account(policy, appointment, copy, resource.time_zone, seen, seen_key)
        if policy is ConflictPolicy.OUTLOOK:
            await _outlook_wins(ctx, copy, resource, event, why)
            planned = hashes_of(desired_event(appointment, resource.time_zone))
            return {**copies, copy.resource_no: replace(copy, field_hashes=planned)}  # nothing more to write here
        await _io(ctx.services.activity.record, ctx.entry("conflict", "applied", copy.resource_no, copy.event_id,
                                                          detail=why))
    return _restoring(ctx.message, copies, seen_key)


def _how(ctx: _Context, resource_no: str, how: str) -> tuple[str, str]:
    """The activity's action and detail prefix: a restore is logged as one, with what the person did."""
    if ctx.message.event == "restore" and resource_no == ctx.message.restore_resource:
        did = "deleted" if how == "recreate" else "edited"
        return "restore", (f"the planner's event was {did} in Outlook; restored from the planning board "
                           "(OUTLOOK_EDIT_POLICY=restore_outlook): ")
    return how, ""


async def _unheld(ctx: _Context, actions: list[Action], record: bool) -> list[Action]:
    """The actions without the deletions a hold keeps for an admin (mass-change guard); a released one
    says who released it. Under the lease (`record` False: the deletions are about to run), each other
    deletion is counted for its calendar and held past the limit (`_counted_deletion`)."""
    kept: list[Action] = []
    for action in actions:
        if isinstance(action, DeleteEvent):
            item = await _io(ctx.services.holds.item, HoldKind.CALENDAR, action.copy.resource_no, ctx.guid)
            if item is None and not record:
                item = await _counted_deletion(ctx, action)
            if item is not None and item.state == HELD:
                if record:
                    await _io(ctx.services.activity.record, ctx.entry(
                        "delete", "held", action.copy.resource_no, action.copy.event_id or "",
                        detail=f"held for an admin (hold {item.hold_id}): {action.reason}"))
                continue
            if item is not None and item.released_by:
                action = replace(action, reason=f"{action.reason}; released by {item.released_by}")
        kept.append(action)
    return kept


async def _counted_deletion(ctx: _Context, action: DeleteEvent) -> HeldItem | None:
    """Count a deletion the guard has not seen (a webhook's, a retry's, a poll's: every one not released
    by an admin) for its calendar. Past MASS_CHANGE_MAX_ITEMS within the last hour or two it is held
    instead: it opens a hold on that calendar (or joins the open one) with its item row, which the poll
    then keeps with whatever else it would delete there, as for its own deletions. Returns the held item,
    or None to delete."""
    services, resource_no = ctx.services, action.copy.resource_no
    now = datetime.now(UTC)
    tally = await _io(deletion_rate.count_deletion, services.repositories.cursors, resource_no, now)
    if not over_limit(tally, services.settings.mass_change.max_items):
        return None
    decision = await _io(lambda: services.holds.guard_items(
        HoldKind.CALENDAR, resource_no, resource_no, {ctx.guid: HeldItem(ctx.guid, "", appointment_guid=ctx.guid)},
        0, partial(calendar_what, resource_no, why={ctx.guid: action.reason}), now, complete=False))
    if decision.hold is None or ctx.guid not in decision.held:
        return None  # released meanwhile
    if decision.created:
        await _io(services.activity.record, ActivityEntry(
            "to_outlook", "hold", "held", resource_no=resource_no, correlation_id=ctx.message.correlation_id,
            detail=f"hold {decision.hold.hold_id}: {decision.hold.what} ({tally.recent} deletions in this calendar "
                   "within the hour); an admin releases or discards it on the monitor"))
    await _io(services.activity.record, ctx.entry(
        "delete", "held", resource_no, action.copy.event_id or "",
        detail=f"held for an admin (hold {decision.hold.hold_id}): {action.reason}"))
    return HeldItem(ctx.guid, decision.hold.hold_id)


async def _execute(ctx: _Context, actions: list[Action]) -> None:
    groups: dict[str, list[Action]] = {}
    for action in actions:
        resource_no = action.copy.resource_no if isinstance(action, DeleteEvent) else action.resource.resource_no
        groups.setdefault(resource_no, []).append(action)
    results = await asyncio.gather(*(_run_in_order(ctx, group) for group in groups.values()), return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        # Retry the change as a whole (what succeeded is saved, so the retry plans only the rest);
        # a transient failure wins so throttling is waited out rather than parked.
        transient = [f for f in failures if (_failure_of(f.cause if isinstance(f, ActionFailed) else f) or
                                             Failure(False, None, "")).transient]
        raise (transient or failures)[0]


async def _run_in_order(ctx: _Context, actions: list[Action]) -> None:
    for action in actions:
        name = type(action).__name__.removesuffix("Event").lower()
        resource_no = action.copy.resource_no if isinstance(action, DeleteEvent) else action.resource.resource_no
        try:
            if isinstance(action, CreateEvent):
                await _create(ctx, action)
            elif isinstance(action, UpdateEvent):
                await _update(ctx, action)
            else:
                await _delete(ctx, action)
        except Exception as exc:
            raise ActionFailed(ctx.entry(name, "failed", resource_no=resource_no, latency=True), exc,
                               refused.version_of(ctx.appointment)) from exc


async def _persist(ctx: _Context, store: Callable[[OutlookCopy], None], copy: OutlookCopy, entry: ActivityEntry) -> None:
    """The mapping after a confirmed write, its activity entry and the monitor's last-sync time
    (independent rows: written together)."""
    await asyncio.gather(_io(store, copy), _io(ctx.services.activity.record, entry),
                         _io(ctx.services.registry.note_sync, copy.resource_no, "to_outlook", datetime.now(UTC)))


def _events_url(user_id: str, event_id: str | None = None) -> str:
    url = f"/users/{quote(user_id, safe='')}/events"
    return url if event_id is None else f"{url}/{quote(event_id, safe='')}"


async def _write(ctx: _Context, request: WriteRequest) -> WriteResponse:
    return await ctx.runtime.batcher.submit(request)


async def _create(ctx: _Context, action: CreateEvent, how: str = "create") -> None:
    resource = action.resource
    pending = OutlookCopy(ctx.guid, resource.resource_no, resource.user_id, action.transaction_id)
    await _io(ctx.services.mappings.save_outlook_copy, pending)  # before the POST: a retry reuses the transactionId
    response = await _write(ctx, WriteRequest("POST", _events_url(resource.user_id), resource.user_id,
                                              action.payload, PREFER))
    if response.ok:
        event: dict[str, Any] | None = response.json()
    elif response.status == 409:  # a repeated transactionId answered as a conflict: adopt the first event
        event = await _find_created(ctx, resource.user_id, action.transaction_id)
    else:
        raise inner_error(response)
    if action.repeat or response.status == 409:
        caught_up = None if event is None else await _catch_up(ctx, resource.user_id, event, action)
        if caught_up is None:  # that event was deleted in Outlook meanwhile: the board still plans it
            await _create_again(ctx, action)
            return
        event = caught_up
    assert event is not None
    starts_at, ends_at = event_span(action.payload)
    saved = replace(pending, event_id=str(event["id"]), field_hashes=dict(action.field_hashes),
                    change_key=event.get("changeKey"), starts_at=starts_at, ends_at=ends_at)
    action_name, why = _how(ctx, resource.resource_no, how)
    await _persist(ctx, ctx.services.mappings.save_outlook_copy, saved, ctx.entry(
        action_name, "applied", resource.resource_no, saved.event_id or "", latency=True,
        detail=f"{why}event created in {resource.email}'s calendar"))


async def _create_again(ctx: _Context, action: CreateEvent) -> None:
    """An event deleted in Outlook while the board still plans it comes back: a new create intent, with a
    fresh transactionId (the old one may still answer with the deleted event, or be refused)."""
    transaction_id = new_transaction_id(ctx.guid, action.resource.resource_no, uuid.uuid4().hex[:8])
    await _create(ctx, replace(action, payload={**action.payload, "transactionId": transaction_id},
                               transaction_id=transaction_id, repeat=False), how="recreate")


async def _catch_up(ctx: _Context, user_id: str, event: dict[str, Any], action: CreateEvent) -> dict[str, Any] | None:
    """The event an earlier attempt created holds the appointment as it was then: PATCH what moved since.
    None when that event is gone (a person deleted it between the two attempts)."""
    try:
        current = hashes_of(outlook_fields(CalendarEvent.from_graph(event), action.resource.time_zone))
    except InvalidPayload:
        current = {}
    changes = {name: action.payload[name] for name in EVENT_FIELDS if current.get(name) != action.field_hashes[name]}
    if not changes:
        return event
    changes["singleValueExtendedProperties"] = [stamp_property(action.field_hashes)]
    response = await _write(ctx, WriteRequest("PATCH", _events_url(user_id, str(event["id"])), user_id, changes, PREFER))
    if response.status == 404:
        return None
    if not response.ok:
        raise inner_error(response)
    return response.json() or event


async def _find_created(ctx: _Context, user_id: str, transaction_id: str) -> dict[str, Any] | None:
    """The event an earlier attempt created with this transactionId, found by the appointment's tag;
    None when no event carries it any more (deleted in Outlook: its transactionId stays taken)."""
    found = await ctx.services.exchange.find_events_by_property(user_id, TAG_PROPERTY_ID, ctx.guid)
    for event in found:
        if event.get("transactionId") in (None, transaction_id):
            return event
    return None


async def _update(ctx: _Context, action: UpdateEvent) -> None:
    """PATCH the changed fields on the condition that the event still has the changeKey of the last sync.
    A 412 is looked into (`after_precondition_failed`): Graph's own busy 412 → the same write again; a
    changeKey moved without a visible change → again on the new one; a person's edit → both sides
    changed: `CONFLICT_POLICY` says whether the planner's whole version is written or the edit is taken
    onto the board (a restore is the planner's version by `OUTLOOK_EDIT_POLICY`, written in full anyway)."""
    copy, resource = action.copy, action.resource
    assert copy.event_id is not None
    changes, change_key, why = dict(action.changes), copy.change_key, ""
    response = await _patch(ctx, copy, changes, change_key, action.field_hashes)
    for _ in range(IRRESOLVABLE_RETRIES):
        if response.status != 412:
            break
        event = await ctx.services.exchange.get_event(resource.user_id, copy.event_id, STAMP_PROPERTY_ID)
        if event is None:
            response = WriteResponse(404)
            break
        seen_key, seen = _seen(event, resource.time_zone)
        stamp = written_stamp(event)
        meaning = after_precondition_failed(change_key, stamp or copy.field_hashes, seen_key, seen)
        if stamp is not None and stamp != dict(copy.field_hashes) and ctx.appointment is not None:
            # A write of ours took effect unseen (its answer was lost): the copy is behind the event, so the
            # fields to write are not known from it; the planner's whole version is.
            whole = desired_event(ctx.appointment, resource.time_zone)
            changes = {name: whole[name] for name in EVENT_FIELDS}
        if meaning is AfterPreconditionFailed.EDITED and ctx.appointment is not None:
            body = desired_event(ctx.appointment, resource.time_zone)
            if not _restores(ctx, resource.resource_no) and not why:
                policy = ctx.services.settings.conflict_policy
                why = conflict_account(policy, ctx.appointment, copy, resource.time_zone, seen, seen_key) + "; "
                if policy is ConflictPolicy.OUTLOOK:
                    await _outlook_wins(ctx, copy, resource, event, why)
                    return
            changes = {name: body[name] for name in EVENT_FIELDS}  # the planner's whole version over the edit
        change_key = seen_key
        response = await _patch(ctx, copy, changes, change_key, action.field_hashes)
    if response.status == 404 and ctx.appointment is not None:
        # Deleted in Outlook: the board still plans it, so the event comes back (new create intent).
        await _io(ctx.services.mappings.delete_outlook_copy, copy)
        body = desired_event(ctx.appointment, resource.time_zone)
        hashes = hashes_of(body)
        payload = {**body, "singleValueExtendedProperties": [{"id": TAG_PROPERTY_ID, "value": ctx.guid},
                                                             stamp_property(hashes)]}
        await _create_again(ctx, CreateEvent(resource, payload, "", hashes))
        return
    if not response.ok:
        raise inner_error(response)
    event = response.json()
    starts_at, ends_at = event_span(desired_event(ctx.appointment, resource.time_zone)) if ctx.appointment \
        else (copy.starts_at, copy.ends_at)
    saved = replace(copy, field_hashes=dict(action.field_hashes), change_key=event.get("changeKey") or change_key,
                    starts_at=starts_at, ends_at=ends_at)
    action_name, restored = _how(ctx, resource.resource_no, "update")
    await _persist(ctx, ctx.services.mappings.save_outlook_copy, saved, ctx.entry(
        "conflict" if why else action_name, "applied", resource.resource_no, copy.event_id, latency=True,
        detail=restored + why + "changed: " + ", ".join(sorted(changes))))


async def _patch(ctx: _Context, copy: OutlookCopy, changes: dict[str, Any], change_key: str | None,
                 hashes: Mapping[str, str]) -> WriteResponse:
    """PATCH `changes` on the condition of `change_key`, stamping the event with `hashes`: what each of its
    fields holds as the connector wrote it once this write has taken effect."""
    assert copy.event_id is not None
    body = {**changes, "singleValueExtendedProperties": [stamp_property(hashes)]}
    return await _write(ctx, WriteRequest("PATCH", _events_url(copy.user_id, copy.event_id), copy.user_id, body,
                                          PREFER, if_match(change_key)))


def _seen(event: dict[str, Any], time_zone: str) -> tuple[str | None, dict[str, str]]:
    """An event's changeKey and field hashes as read (an unreadable one hashes to nothing: edited)."""
    try:
        parsed = CalendarEvent.from_graph(event)
    except InvalidPayload:
        return event.get("changeKey"), {}
    return parsed.change_key, hashes_of(outlook_fields(parsed, time_zone))


def _restores(ctx: _Context, resource_no: str) -> bool:
    return ctx.message.event == "restore" and resource_no == ctx.message.restore_resource


async def _outlook_wins(ctx: _Context, copy: OutlookCopy, resource: TrackedResource, event: dict[str, Any],
                        why: str) -> None:
    """Both sides changed and `CONFLICT_POLICY=outlook`: the person's edit onto the board, nothing written
    to Outlook (the appointment's next webhook finds it in sync)."""
    found = await planner_appointment(ctx.services, copy)
    if found is None:
        return  # gone or re-assigned meanwhile: its own change will say so
    if await take_outlook_edit(ctx.services, found[0], copy, CalendarEvent.from_graph(event), resource.time_zone,
                               owner=True):
        await _io(ctx.services.activity.record, ctx.entry("conflict", "applied", resource.resource_no,
                                                          copy.event_id or "", latency=True, detail=why.removesuffix("; ")))


async def _delete_event(ctx: _Context, copy: OutlookCopy, event_id: str, time_zone: str) -> str:
    """DELETE, on the condition of the last sync's changeKey; a 412 is looked into like a PATCH's. The
    planner's deletion wins either way (no appointment is left to keep the edit on): returns the
    conflict's account when a person had edited the event meanwhile."""
    user_id, change_key, why = copy.user_id, copy.change_key if event_id == copy.event_id else None, ""
    for _ in range(IRRESOLVABLE_RETRIES + 1):
        response = await _write(ctx, WriteRequest("DELETE", _events_url(user_id, event_id), user_id, None, PREFER[:1],
                                                  if_match(change_key)))
        if response.status != 412:
            break
        event = await ctx.services.exchange.get_event(user_id, event_id)
        if event is None:
            return why
        seen_key, seen = _seen(event, time_zone)
        if not why and after_precondition_failed(change_key, copy.field_hashes, seen_key, seen) \
                is AfterPreconditionFailed.EDITED:
            why = f"the event had been edited in Outlook (changeKey {copy.change_key or '-'} → {seen_key or '-'}); "
        change_key = seen_key
    if not response.ok and response.status != 404:  # 404: already gone (a replayed delete)
        raise inner_error(response)
    return why


async def _delete(ctx: _Context, action: DeleteEvent) -> None:
    copy = action.copy
    if copy.event_id:
        event_ids = [copy.event_id]
    else:  # the create never confirmed: its event may exist all the same; find it by its tag
        found = await ctx.services.exchange.find_events_by_property(copy.user_id, TAG_PROPERTY_ID, ctx.guid)
        event_ids = [str(e["id"]) for e in found if e.get("id")]
    resource = (await ctx.runtime.tracked(ctx.services)).get(copy.resource_no)
    time_zone = resource.time_zone if resource and resource.user_id == copy.user_id else "UTC"
    edited = await asyncio.gather(*(_delete_event(ctx, copy, event_id, time_zone) for event_id in event_ids))
    why = "".join(edited)
    await _persist(ctx, ctx.services.mappings.delete_outlook_copy, copy, ctx.entry(
        "delete", "applied", copy.resource_no, copy.event_id or ",".join(event_ids),
        latency=True, detail=(f"conflict: {why}deleted all the same: " if why else "") + action.reason))
