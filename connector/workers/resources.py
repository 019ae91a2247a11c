"""The `sync_resources` timer: which Dime.Scheduler resources the connector tracks, and what follows.

A resource is **tracked** when Dime.Scheduler marks it `exchangeIntegrationEnabled` and its email is
a user Graph knows (`get_user`). Each run:

1. makes sure the Dime.Scheduler appointment webhooks are registered (`ensure_scheduler_webhooks`;
   a failure there is logged and recorded, the run goes on);
2. **newly tracked** resource (or its mailbox changed): registry record (status `tracked`, user id),
   settings account from the global defaults (`ensure_account`), a Graph subscription
   (`connector/workers/subscriptions.py`), then a first **full** sync of the window is enqueued, and
   the planning window is polled so the resource's planned appointments reach its Outlook now;
3. **unknown email** (Graph has no such user): status `unknown_email` with the error on the monitor
   (`GET /api/admin/resources`). It is looked up again on the next run (one cheap call per run),
   never retried through the queue and never raised: one bad address does not fail the timer;
4. **mailbox time zone**: each tracked resource's `mailboxSettings.timeZone` is read when it is
   tracked and again on every run (`MailboxSettings.Read`; for a tracked resource nothing else has
   to decide about, this check and the `get_user` before it are fanned out: one `ResourceCheck`
   message each on `exchange-changes`, `check_resource`, so a run over 10,000 resources only
   enqueues); all-day items are read and written in
   it (see `connector/sync/timezones.py`). When it cannot be read (permission missing, unknown
   zone) the last known zone is kept, UTC at first, and the problem shows as the resource's error;
5. **no longer tracked** (integration switched off, email cleared or unknown, or the resource left
   Dime.Scheduler): first only noted. A tracked resource missing on one run keeps being tracked and
   gets `missing_since` (shown on the monitor); it is untracked only if it is still missing on the
   next run, so one empty or partial `GET /resource` answer, or one 404 from Graph, untracks nothing.
   A resource that is back in between is simply kept. Then the **mass-change guard** looks at the
   run as a whole (`MASS_CHANGE_*`): untracking more than `MASS_CHANGE_UNTRACK_PERCENT` % of the
   tracked resources (and at least `MASS_CHANGE_UNTRACK_MIN`), or a resource whose untrack would take
   more than `MASS_CHANGE_MAX_ITEMS` items off the board or out of its calendar (the window's events,
   which the poll deletes: history is neither counted nor deleted), untracks nothing of it: the change
   is *held* (`connector/stores/holds.py`) for an admin to release or discard on the monitor
   (`connector/workers/holds.py`). One untrack hold follows the runs (its resources and version change
   with them); a hold whose resources are all back is resolved by the run.
   Untracking: the subscription is deleted, the cursor forgotten, status `untracked`, and
   **its Outlook items are removed from the planning board** (`mboc_deleteExchangeAppointment` for
   every board copy of that mailbox). Rule: the board shows a resource's Outlook items only while the
   connector keeps them current; stale copies would mislead planners. The resource's Outlook is left
   alone here (the connector's own events there are the planning → Outlook worker's business: the
   poll deletes them). Removal is idempotent and re-checked on every run, so a removal interrupted by
   an outage completes later. If the resource is tracked again, its first full sync brings the items
   back. A changed mailbox is untracked (under the same guard, without the two-run wait) and the new
   one tracked.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from connector.errors import GraphError, PlanningError
from connector.messages import ResourceCheck
from connector.services import Services
from connector.stores.activity import ActivityEntry
from connector.stores.cursors import CursorStore
from connector.stores.holds import Hold, HoldKind, UntrackEntry
from connector.stores.registry import ResourceRecord, Status
from connector.stores.repositories import ConcurrencyConflict
from connector.sync.timezones import zone_of
from connector.workers.poll import window_copies
from connector.workers.subscriptions import create_subscription, drop_subscription, enqueue_resync

log = logging.getLogger(__name__)


@dataclass
class ResourceReport:
    tracked: list[str] = field(default_factory=list)  # newly tracked
    untracked: list[str] = field(default_factory=list)
    unknown_email: list[str] = field(default_factory=list)
    unchanged: int = 0
    checked: int = 0  # tracked resources whose steady-state check went to the queue (`check_resource`)
    errors: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)  # missing for the first time: kept, looked at again next run
    held: list[str] = field(default_factory=list)  # would be untracked: held for an admin (mass-change guard)


@dataclass(frozen=True)
class DsResource:
    resource_no: str
    email: str
    display_name: str
    enabled: bool

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> DsResource | None:
        number = data.get("resourceNo") or data.get("ResourceNo")
        if not number:
            return None
        email = str(data.get("email") or data.get("Email") or "").strip()
        enabled = data.get("exchangeIntegrationEnabled", data.get("ExchangeIntegrationEnabled"))
        return cls(str(number), email, str(data.get("displayName") or data.get("DisplayName") or ""),
                   enabled is True or str(enabled).lower() == "true")


async def _io(fn: Any, *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


async def _activity(services: Services, action: str, outcome: str, resource_no: str = "", detail: str = "",
                    error: str = "", direction: str = "to_planning") -> None:
    await _io(services.activity.record, ActivityEntry(direction=direction, action=action, outcome=outcome,
                                                      resource_no=resource_no, detail=detail, error=error))


async def sync_resources(services: Services) -> ResourceReport:
    report = ResourceReport()
    try:
        from connector.workers.webhook_registration import ensure_scheduler_webhooks

        await _io(ensure_scheduler_webhooks, services)
    except Exception as exc:  # the other direction's concern: never blocks tracking resources
        log.warning("registering the Dime.Scheduler webhooks failed: %s", exc)
        await _activity(services, "register_webhooks", "failed", error=f"{type(exc).__name__}: {exc}")

    listed = [r for r in (DsResource.from_api(d) for d in await _io(services.planning.list_resources)) if r]
    records: dict[str, ResourceRecord] = {r.resource_no: r for r in await _io(services.registry.all)}
    tracked = sum(1 for r in records.values() if r.status == Status.TRACKED)
    candidates: list[_Candidate] = []  # to untrack, if the guard lets them go
    for resource in listed:
        record = records.pop(resource.resource_no, None)
        if _routine(resource, record):
            await _io(services.work_queues.send_resource_check,
                      ResourceCheck(resource.resource_no, resource.email, resource.display_name))
            report.checked += 1
            continue
        try:
            await _sync_one(services, resource, record, report, candidates)
        except (GraphError, PlanningError) as exc:
            # Transient trouble with one resource: the next run tries again; the others go on.
            report.errors.append(f"{resource.resource_no}: {exc}")
            log.warning("sync_resources: resource %s: %s", resource.resource_no, exc)
            await _io(services.registry.update, resource.resource_no, last_error=str(exc))
    for record in records.values():  # in the registry, gone from Dime.Scheduler
        why = "the resource is no longer in Dime.Scheduler"
        try:
            if record.status == Status.TRACKED:
                await _missing(services, record, why, report, candidates)
            else:  # untracked before: what an interrupted removal left is taken off now
                await untrack(services, record, why, report)
        except (GraphError, PlanningError) as exc:
            report.errors.append(f"{record.resource_no}: {exc}")
    await _decide(services, candidates, tracked, report)
    if report.tracked:
        # The other direction's first sync: a newly tracked resource's planned appointments go to its
        # Outlook now, not at the next poll_planning tick.
        from connector.workers.poll import poll_planning

        try:
            await _io(poll_planning, services)
        except PlanningError as exc:
            report.errors.append(f"first planning sync: {exc}")
    return report


@dataclass(frozen=True)
class _Candidate:
    """A tracked resource this run would untrack (missing twice in a row, or its mailbox changed)."""

    record: ResourceRecord
    why: str
    unknown: DsResource | None = None  # its email is not a Graph user: noted as unknown_email once untracked
    retrack: tuple[DsResource, str] | None = None  # its mailbox changed: the new one (user id) is tracked after


async def _sync_one(services: Services, resource: DsResource, record: ResourceRecord | None,
                    report: ResourceReport, candidates: list[_Candidate]) -> None:
    if not resource.enabled or not resource.email:
        why = "Exchange integration is off for this resource" if not resource.enabled else \
            "the resource's email was cleared in Dime.Scheduler"
        if record is not None and record.status == Status.TRACKED:
            await _missing(services, record, why, report, candidates)
        elif record is not None:
            await untrack(services, record, why, report)
        return
    user = await services.exchange.get_user(resource.email)
    if user is None or not user.get("id"):
        if record is not None and record.status == Status.TRACKED:
            await _missing(services, record, "its email is no longer a Graph user", report, candidates, unknown=resource)
            return
        await _note_unknown_email(services, resource, record, report)
        return
    user_id = str(user["id"])
    if record is not None and record.status == Status.TRACKED and record.user_id == user_id:
        await _refresh(services, resource, record)
        report.unchanged += 1
        return
    if record is not None and record.status == Status.TRACKED:  # another mailbox now: untrack the old one first
        candidates.append(_Candidate(record, "the resource's mailbox changed", retrack=(resource, user_id)))
        return
    if record is not None and record.user_id and record.user_id != user_id \
            and await remove_board_items(services, record) is None:
        # An untrack cut short before its board removal leaves the old mailbox's items there, and tracking
        # the new mailbox forgets them: finished first (a round of the old mailbox still runs: next run).
        return
    await _track(services, resource, user_id, record, report)


def _routine(resource: DsResource, record: ResourceRecord | None) -> bool:
    """A tracked resource as the registry knows it, nothing to decide about the tenant: its check (two
    Graph calls) is fanned out. Anything else (new, changed email, missing since the last run, switched
    off) is this run's to decide."""
    return (resource.enabled and bool(resource.email) and record is not None and record.status == Status.TRACKED
            and bool(record.user_id) and record.missing_since is None and record.email == resource.email)


async def _refresh(services: Services, resource: DsResource, record: ResourceRecord) -> None:
    """A tracked resource whose email is still its Graph user: back if it was missing, its name and
    mailbox time zone current, its subscription there. Written only while it is still that mailbox's."""
    same = _same_mailbox(record)
    if record.missing_since is not None:  # missing on the last run, back now: simply kept
        await _io(services.registry.update, record.resource_no, only_if=same, missing_since=None)
        await _activity(services, "returned", "applied", record.resource_no,
                        f"found again (missing since {record.missing_since:%Y-%m-%d %H:%M} UTC); still tracked")
    time_zone, zone_error = await read_time_zone(services, record.user_id, record.time_zone)
    if (record.email, record.display_name, record.time_zone) != (resource.email, resource.display_name, time_zone):
        updated = await _io(services.registry.update, record.resource_no, only_if=same, email=resource.email,
                            display_name=resource.display_name, time_zone=time_zone)
        if updated and record.email and record.email.lower() != resource.email.lower():
            # The mailbox was renamed: Dime.Scheduler refused the imports sent with the old email since it
            # changed there (the delta link moved past them), so a full round brings every item again.
            await enqueue_resync(services, record.user_id, "resync", full=True)
            await _activity(services, "email", "applied", record.resource_no,
                            f"email changed to {resource.email}, same mailbox; full sync enqueued")
    if zone_error:
        await _io(services.registry.update, record.resource_no, only_if=same, last_error=zone_error)
    if not record.subscription_id:  # an earlier create failed: try again now
        await create_subscription(services, record)


def _same_mailbox(record: ResourceRecord) -> Callable[[ResourceRecord], bool]:
    return lambda r: r.status == Status.TRACKED and r.user_id == record.user_id


async def check_resource(services: Services, message: ResourceCheck) -> None:
    """The fanned-out part of `sync_resources` for one tracked resource (see `ResourceCheck`). What the
    tenant-wide run must decide is only noted here: an email that is no longer a Graph user, or that is
    now another mailbox, marks the resource missing, and the next run looks at it as a whole (two runs in
    a row, the mass-change guard). A failure is noted on the resource; the next run checks it again."""
    record = await _io(services.registry.get, message.resource_no)
    if record is None or not _routine(DsResource(message.resource_no, message.email, message.display_name, True),
                                      record):
        return  # changed since the run looked at it: the next run decides
    resource = DsResource(record.resource_no, message.email, message.display_name, True)
    try:
        user = await services.exchange.get_user(resource.email)
        if user is None or not user.get("id") or str(user["id"]) != record.user_id:
            why = "its email is no longer a Graph user" if user is None or not user.get("id") else \
                "its email is now another mailbox"
            if await _io(services.registry.update, record.resource_no, only_if=_same_mailbox(record),
                         missing_since=datetime.now(UTC)):
                await _activity(services, "missing", "skipped", record.resource_no,
                                f"{why}; still tracked: looked at again by the next sync_resources run")
            return
        await _refresh(services, resource, record)
    except (GraphError, PlanningError) as exc:
        log.warning("resource check %s: %s", record.resource_no, exc)
        await _io(services.registry.update, record.resource_no, only_if=_same_mailbox(record), last_error=str(exc))


async def _note_unknown_email(services: Services, resource: DsResource, record: ResourceRecord | None,
                              report: ResourceReport) -> None:
    error = f"Graph has no user with the email {resource.email!r}: fix the resource's email in Dime.Scheduler"
    first_time = record is None or record.status != Status.UNKNOWN_EMAIL or record.email != resource.email
    base = record or ResourceRecord(resource.resource_no, resource.email)
    await _io(services.registry.save, replace(base, email=resource.email, display_name=resource.display_name,
                                              status=Status.UNKNOWN_EMAIL, user_id="", subscription_id="",
                                              subscription_expiry=None, last_error=error,
                                              error_count=base.error_count + 1, missing_since=None).moved_from(record))
    report.unknown_email.append(resource.resource_no)
    if first_time:  # on the monitor once, not every 15 minutes
        await _activity(services, "track", "failed", resource.resource_no, "email not known to Graph", error)


async def _missing(services: Services, record: ResourceRecord, why: str, report: ResourceReport,
                   candidates: list[_Candidate], unknown: DsResource | None = None) -> None:
    """A tracked resource this run did not find: noted the first time, a candidate to untrack the second."""
    if record.missing_since is not None:
        candidates.append(_Candidate(record, why, unknown=unknown))
        return
    await _io(services.registry.update, record.resource_no, missing_since=datetime.now(UTC))
    await _activity(services, "missing", "skipped", record.resource_no,
                    f"{why}; still tracked: untracked if it is still missing on the next run")
    report.missing.append(record.resource_no)


# -- the mass-change guard --------------------------------------------------------------------------
async def _decide(services: Services, candidates: list[_Candidate], tracked: int, report: ResourceReport) -> None:
    """Untrack the candidates, unless the guard holds them (see the module docstring)."""
    try:
        open_holds = await _io(services.holds.held, HoldKind.UNTRACK)
        entries = await _entries(services, candidates) if candidates else []
    except (GraphError, PlanningError) as exc:
        report.errors.append(f"mass-change guard: {exc}")
        return
    guard = services.settings.mass_change
    by_share = guard.holds_untrack(len(candidates), tracked)
    held = [e for e in entries if by_share or guard.holds_removal(e.board_items)
            or guard.holds_removal(e.calendar_items)]
    for candidate in candidates:
        if any(e.resource_no == candidate.record.resource_no for e in held):
            continue
        try:
            await _apply_candidate(services, candidate, report)
        except (GraphError, PlanningError) as exc:
            report.errors.append(f"{candidate.record.resource_no}: {exc}")
    kept = open_holds[0] if held and open_holds else None  # one untrack hold at a time: it follows the runs
    for hold in open_holds:
        if hold is kept:
            continue
        await _io(services.holds.delete_quietly, hold)  # the resources are back, or a second one (an older version)
        why = "superseded by this run" if candidates else "the resources are back"
        await _activity(services, "resolve", "applied", ",".join(hold.resource_nos[:10]),
                        f"hold {hold.hold_id} no longer needed ({why}): {hold.what}", direction="system")
    if not held:
        return
    what = _untrack_what(held, tracked, by_share)
    items = sum(e.board_items + e.calendar_items for e in held)
    if kept is None:
        hold = Hold("", HoldKind.UNTRACK, what, tuple(e.resource_no for e in held), items, datetime.now(UTC),
                    entries=tuple(held))
        kept, created = await _io(services.holds.create, hold)
        if created:
            await _activity(services, "hold", "held", held[0].resource_no if len(held) == 1 else "",
                            f"hold {kept.hold_id}: {what}; an admin releases or discards it on the monitor",
                            direction="system")
    if (set(kept.entries), kept.what, kept.items) != (set(held), what, items):
        # The hold follows what the run would untrack now, and its version moves. An admin who released
        # or discarded it meanwhile stands; the next run looks again.
        with contextlib.suppress(ConcurrencyConflict):
            await _io(services.holds.save_members, replace(kept, what=what, items=items, entries=tuple(held),
                                                           resource_nos=tuple(e.resource_no for e in held)))
    report.held.extend(e.resource_no for e in held)


async def _entries(services: Services, candidates: list[_Candidate]) -> list[UntrackEntry]:
    """What untracking each candidate would remove: its Outlook items on the board, and the planner's
    events in its calendar that the poll deletes once it is untracked, those of the window only
    (`window_copies`: past events stay, so history never holds an untrack)."""
    calendar = await _io(window_copies, services, [c.record for c in candidates])
    entries = []
    for c in candidates:
        board = len(await _io(services.mappings.board_copies, c.record.user_id)) if c.record.user_id else 0
        entries.append(UntrackEntry(c.record.resource_no, c.record.user_id, c.record.email, c.why,
                                    missing=c.retrack is None, board_items=board,
                                    calendar_items=len(calendar.get(c.record.resource_no, []))))
    return entries


def _untrack_what(entries: list[UntrackEntry], tracked: int, by_share: bool) -> str:
    names = ", ".join(e.resource_no for e in entries[:10]) + (f" and {len(entries) - 10} more" if len(entries) > 10 else "")
    whys = sorted({e.why + (" (two runs in a row)" if e.missing else "") for e in entries})
    board = sum(e.board_items for e in entries)
    calendar = sum(e.calendar_items for e in entries)
    share = f" ({len(entries)} of {tracked} tracked resources at once)" if by_share else ""
    return (f"Untrack {names}{share}: {'; '.join(whys)}. {board} Outlook item(s) would leave the planning board "
            f"and {calendar} of the planner's event(s) would be deleted from Outlook")


async def _apply_candidate(services: Services, candidate: _Candidate, report: ResourceReport) -> None:
    await untrack(services, candidate.record, candidate.why, report)
    if candidate.unknown is not None:
        await _note_unknown_email(services, candidate.unknown, await _io(services.registry.get,
                                                                         candidate.record.resource_no), report)
    if candidate.retrack is not None:
        resource, user_id = candidate.retrack
        await _track(services, resource, user_id, await _io(services.registry.get, resource.resource_no), report)


async def _track(services: Services, resource: DsResource, user_id: str, previous: ResourceRecord | None,
                 report: ResourceReport) -> None:
    time_zone, zone_error = await read_time_zone(services, user_id, previous.time_zone if previous else "")
    record = ResourceRecord(resource.resource_no, resource.email, resource.display_name, user_id, Status.TRACKED,
                            error_count=previous.error_count if previous else 0, time_zone=time_zone,
                            last_error=zone_error).moved_from(previous)
    await _io(services.registry.save, record)
    await _io(services.resource_settings.ensure_account, resource.resource_no)
    await _io(CursorStore(services.repositories.cursors).delete, user_id)  # a fresh start: first round is full
    await _io(_forget_board_hashes, services, user_id)
    try:
        await create_subscription(services, record)
    except GraphError as exc:
        # Tracked without a subscription: the delta rounds (reconcile) still run; the next run retries.
        await _io(services.registry.update, record.resource_no, last_error=str(exc))
        await _activity(services, "subscribe", "failed", record.resource_no, "subscription not created; retried",
                        str(exc))
    await enqueue_resync(services, user_id, "resync", full=True)
    await _activity(services, "track", "applied", record.resource_no, "tracked; first full sync enqueued")
    report.tracked.append(resource.resource_no)


def _forget_board_hashes(services: Services, user_id: str) -> None:
    """Board copies a mailbox kept from before (a round that was still running when it was untracked
    writes its copies after the untrack removed them) may name board items that are gone: without a
    hash, the first full round imports every item again (idempotent) and removes those not in Outlook."""
    for copy in services.mappings.board_copies(user_id):
        if copy.content_hash:
            services.mappings.save_board_copy(replace(copy, content_hash=""))


async def read_time_zone(services: Services, user_id: str, known: str) -> tuple[str, str]:
    """(the mailbox's time zone, an error to show or ""). A zone that cannot be read or that the
    connector does not know keeps the last known one (UTC at first): the sync goes on, visibly."""
    try:
        zone = await services.exchange.mailbox_time_zone(user_id)
    except GraphError as exc:
        if exc.transient:
            raise
        return known or "UTC", f"mailbox time zone not readable ({exc}); grant MailboxSettings.Read"
    if zone is None:
        return known or "UTC", ""
    if zone_of(zone) is None:
        return known or "UTC", f"mailbox time zone {zone!r} is not known to the connector; all-day items use " \
                               f"{known or 'UTC'}"
    return zone, ""


async def remove_board_items(services: Services, record: ResourceRecord, released_by: str = "") -> int | None:
    """Take a mailbox's Outlook items off the board (see the module docstring); returns how many, or None
    when a round of that mailbox is still running (its lease is held): the next run takes them off. The
    lease keeps the removal and a round apart: a round importing an item while its copy is removed would
    leave a board item no mapping knows."""
    copies = await _io(services.mappings.board_copies, record.user_id)
    if not copies:
        return 0
    cursors = CursorStore(services.repositories.cursors)
    lease = await _io(cursors.acquire, record.user_id, "untrack-" + uuid.uuid4().hex)
    if lease is None:
        log.info("resource %s: a round of its mailbox is running; its items leave the board on the next run",
                 record.resource_no)
        return None
    removed = 0
    detail = "the resource is no longer tracked" + (f"; released by {released_by}" if released_by else "")
    try:
        for copy in await _io(services.mappings.board_copies, record.user_id):
            await _io(services.planning.delete_exchange_appointment, copy.appointment_guid, copy.event_id, record.email)
            await _io(services.mappings.delete_board_copy, copy)
            removed += 1
            await _io(services.activity.record, ActivityEntry(
                direction="to_planning", action="delete", outcome="applied", resource_no=record.resource_no,
                appointment_guid=copy.appointment_guid, event_id=copy.event_id, detail=detail))
    finally:
        await _io(cursors.delete, record.user_id)  # the lease, and the cursor: a later track starts afresh
    return removed


async def untrack(services: Services, record: ResourceRecord, why: str, report: ResourceReport,
                  released_by: str = "") -> None:
    """Stop tracking the resource and take its Outlook items off the board (idempotent: for a resource
    untracked before, it finishes what an interrupted removal left). The guard is the caller's."""
    was_tracked = record.status == Status.TRACKED
    if record.status != Status.UNTRACKED:  # first: no new round of the mailbox starts (the worker checks)
        await _io(services.registry.update, record.resource_no, status=Status.UNTRACKED, missing_since=None)
    if record.subscription_id:
        await drop_subscription(services, record)
    removed = await remove_board_items(services, record, released_by) if record.user_id else 0
    if record.status != Status.UNTRACKED or record.subscription_id or record.missing_since is not None:
        await _io(services.registry.update, record.resource_no, status=Status.UNTRACKED, subscription_id="",
                  subscription_expiry=None, last_error="", missing_since=None)
    if was_tracked:
        items = "its Outlook items left the board" if removed is not None else \
            "its Outlook items leave the board on the next run (a round of its mailbox was running)"
        await _activity(services, "untrack", "applied", record.resource_no,
                        f"{why}; {items}" + (f"; released by {released_by}" if released_by else ""))
        report.untracked.append(record.resource_no)
