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
   tracked and again on every run (`MailboxSettings.Read`); all-day items are read and written in
   it (see `connector/sync/timezones.py`). When it cannot be read (permission missing, unknown
   zone) the last known zone is kept, UTC at first, and the problem shows as the resource's error;
5. **no longer tracked** (integration switched off, email cleared or unknown, or the resource left
   Dime.Scheduler): the subscription is deleted, the cursor forgotten, status `untracked`, and
   **its Outlook items are removed from the planning board** (`mboc_deleteExchangeAppointment` for
   every board copy of that mailbox). Rule: the board shows a resource's Outlook items only while the
   connector keeps them current; stale copies would mislead planners. The resource's Outlook is left
   alone (the connector's own events there are the planning → Outlook worker's business). Removal is
   idempotent and re-checked on every run, so a removal interrupted by an outage completes later.
   If the resource is tracked again, its first full sync brings the items back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from connector.errors import GraphError, PlanningError
from connector.services import Services
from connector.stores.activity import ActivityEntry
from connector.stores.cursors import CursorStore
from connector.stores.registry import ResourceRecord, Status
from connector.sync.timezones import zone_of
from connector.workers.subscriptions import create_subscription, drop_subscription, enqueue_resync

log = logging.getLogger(__name__)


@dataclass
class ResourceReport:
    tracked: list[str] = field(default_factory=list)  # newly tracked
    untracked: list[str] = field(default_factory=list)
    unknown_email: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)


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
                    error: str = "") -> None:
    await _io(services.activity.record, ActivityEntry(direction="to_planning", action=action, outcome=outcome,
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
    for resource in listed:
        try:
            await _sync_one(services, resource, records.pop(resource.resource_no, None), report)
        except (GraphError, PlanningError) as exc:
            # Transient trouble with one resource: the next run tries again; the others go on.
            report.errors.append(f"{resource.resource_no}: {exc}")
            log.warning("sync_resources: resource %s: %s", resource.resource_no, exc)
            await _io(services.registry.update, resource.resource_no, last_error=str(exc))
    for record in records.values():  # in the registry, gone from Dime.Scheduler
        try:
            await _untrack(services, record, "the resource is no longer in Dime.Scheduler", report)
        except (GraphError, PlanningError) as exc:
            report.errors.append(f"{record.resource_no}: {exc}")
    if report.tracked:
        # The other direction's first sync: a newly tracked resource's planned appointments go to its
        # Outlook now, not at the next poll_planning tick.
        from connector.workers.poll import poll_planning

        try:
            await _io(poll_planning, services)
        except PlanningError as exc:
            report.errors.append(f"first planning sync: {exc}")
    return report


async def _sync_one(services: Services, resource: DsResource, record: ResourceRecord | None,
                    report: ResourceReport) -> None:
    if not resource.enabled or not resource.email:
        if record is not None:
            await _untrack(services, record, "Exchange integration is off for this resource", report)
        return
    user = await services.exchange.get_user(resource.email)
    if user is None or not user.get("id"):
        error = f"Graph has no user with the email {resource.email!r}: fix the resource's email in Dime.Scheduler"
        if record is not None and record.status == Status.TRACKED:
            await _untrack(services, record, "its email is no longer a Graph user", report)
            record = await _io(services.registry.get, resource.resource_no)
        first_time = record is None or record.status != Status.UNKNOWN_EMAIL or record.email != resource.email
        base = record or ResourceRecord(resource.resource_no, resource.email)
        await _io(services.registry.save, replace(base, email=resource.email, display_name=resource.display_name,
                                                  status=Status.UNKNOWN_EMAIL, user_id="", subscription_id="",
                                                  subscription_expiry=None, last_error=error,
                                                  error_count=base.error_count + 1))
        report.unknown_email.append(resource.resource_no)
        if first_time:  # on the monitor once, not every 15 minutes
            await _activity(services, "track", "failed", resource.resource_no, "email not known to Graph", error)
        return
    user_id = str(user["id"])
    if record is not None and record.status == Status.TRACKED and record.user_id == user_id:
        time_zone, zone_error = await read_time_zone(services, user_id, record.time_zone)
        if (record.email, record.display_name, record.time_zone) != (resource.email, resource.display_name, time_zone):
            await _io(services.registry.update, record.resource_no, email=resource.email,
                      display_name=resource.display_name, time_zone=time_zone)
        if zone_error:
            await _io(services.registry.update, record.resource_no, last_error=zone_error)
        if not record.subscription_id:  # an earlier create failed: try again now
            await create_subscription(services, record)
        report.unchanged += 1
        return
    if record is not None and record.status == Status.TRACKED and record.user_id != user_id:
        await _untrack(services, record, "the resource's mailbox changed", report)
    await _track(services, resource, user_id, record, report)


async def _track(services: Services, resource: DsResource, user_id: str, previous: ResourceRecord | None,
                 report: ResourceReport) -> None:
    time_zone, zone_error = await read_time_zone(services, user_id, previous.time_zone if previous else "")
    record = ResourceRecord(resource.resource_no, resource.email, resource.display_name, user_id, Status.TRACKED,
                            error_count=previous.error_count if previous else 0, time_zone=time_zone,
                            last_error=zone_error)
    await _io(services.registry.save, record)
    await _io(services.resource_settings.ensure_account, resource.resource_no)
    await _io(CursorStore(services.repositories.cursors).delete, user_id)  # a fresh start: first round is full
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


async def remove_board_items(services: Services, record: ResourceRecord) -> int:
    """Take a mailbox's Outlook items off the board (see the module docstring); returns how many."""
    removed = 0
    for copy in await _io(services.mappings.board_copies, record.user_id):
        await _io(services.planning.delete_exchange_appointment, copy.appointment_guid, copy.event_id, record.email)
        await _io(services.mappings.delete_board_copy, copy)
        removed += 1
        await _io(services.activity.record, ActivityEntry(
            direction="to_planning", action="delete", outcome="applied", resource_no=record.resource_no,
            appointment_guid=copy.appointment_guid, event_id=copy.event_id, detail="the resource is no longer tracked"))
    return removed


async def _untrack(services: Services, record: ResourceRecord, why: str, report: ResourceReport) -> None:
    was_tracked = record.status == Status.TRACKED
    if record.subscription_id:
        await drop_subscription(services, record)
    if record.user_id:
        await _io(CursorStore(services.repositories.cursors).delete, record.user_id)
        await remove_board_items(services, record)
    if record.status != Status.UNTRACKED or record.subscription_id:
        await _io(services.registry.update, record.resource_no, status=Status.UNTRACKED, subscription_id="",
                  subscription_expiry=None, last_error="")
    if was_tracked:
        await _activity(services, "untrack", "applied", record.resource_no, why + "; its Outlook items left the board")
        report.untracked.append(record.resource_no)
