"""Graph subscriptions of tracked mailboxes: create, renew, recreate, and the lifecycle events.

- **create**: `users/{id}/events`, `created,updated,deleted`, the notification and lifecycle URLs, a
  random clientState (`secrets.token_urlsafe(32)`, 43 characters) of which only the SHA-256 is
  stored (`SubscriptionIndex`); expiry `SUBSCRIPTION_LIFETIME_MINUTES` ahead, less a fixed offset of
  the mailbox of up to 6 hours (`lifetime`: subscriptions created together come due in different
  runs). Graph validates both URLs against our own webhook functions before it answers.
- **renew** (`renew_subscriptions` timer): fans out one `upkeep` message per tracked mailbox on
  `exchange-changes`; each PATCHes the expiry when it is within `SUBSCRIPTION_RENEWAL_MARGIN_MINUTES`,
  otherwise checks the subscription with a GET. A subscription Graph no longer has (404) is recreated
  and the mailbox gets a full resync, which repairs whatever changed during the gap. A tracked mailbox
  without a subscription (its create failed) gets one. A failed upkeep is retried like lifecycle work.
- **lifecycle**: `graph_lifecycle` only verifies and enqueues (Graph judges the answer at 3 s); the
  work arrives here as a `SubscriptionLifecycle` message on `exchange-changes`.
  `reauthorizationRequired` → renew, coalesced: Graph sends it on its own, as often as every few
  minutes per subscription, so a renewal claim (`connector/stores/renewals.py`) lets one worker at a
  time renew a subscription and skips any request arriving within `RENEWAL_COALESCE` of the last
  renewal. `subscriptionRemoved` → recreate, then a full resync. (`missed` never gets here: the
  webhook enqueues the delta round itself.) A transient failure goes back to the queue with its
  Retry-After; when retrying cannot help or the attempts are spent, the record's expiry is set to
  "now" so the next `renew_subscriptions` run does it (and a removed subscription's mailbox is
  resynced anyway): lifecycle work is never parked.
- **a 409 on create** (a subscription with the same changeType and resource exists for the app:
  an old deployment's, or ours from a registry row that was lost): the leftover is found with
  `GET /subscriptions` (all pages). It is **adopted** (PATCH its expiry, store its clientState's hash)
  only when Graph shows its clientState and both its URLs are ours; otherwise it is **deleted and
  created again**. Why: every notification is checked against the stored clientState hash, so a
  subscription whose clientState we cannot see would have all its notifications dropped as forged;
  one with another notificationUrl sends the changes elsewhere, and a lifecycleNotificationUrl
  cannot be changed by PATCH. Deleting costs one call and a full resync repairs the gap.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.errors import GraphError
from connector.messages import UPKEEP, ExchangeChange, SubscriptionLifecycle
from connector.model import parse_utc
from connector.services import Services
from connector.stores.activity import ActivityEntry
from connector.stores.registry import ResourceRecord, Status, SubscriptionIndex, client_state_hash
from connector.stores.renewals import RenewalClaims
from connector.workers.retry import backoff_seconds, classify

log = logging.getLogger(__name__)
CHANGE_TYPES = frozenset({"created", "updated", "deleted"})
# A reauthorizationRequired arriving this soon after a renewal is already answered by it.
RENEWAL_COALESCE = timedelta(minutes=1)
_EVENTS_RESOURCE = re.compile(r"^/?users/([^/]+)(?:/calendar)?/events$", re.I)


def _now() -> datetime:
    return datetime.now(UTC)


def _expiry_of(subscription: dict[str, object], fallback: datetime) -> datetime:
    try:
        return parse_utc(subscription.get("expirationDateTime"), "expirationDateTime")
    except ValueError:
        return fallback


def lifetime(minutes: int, margin_minutes: int, user_id: str) -> timedelta:
    """The lifetime asked for one mailbox's subscription: `SUBSCRIPTION_LIFETIME_MINUTES` less a fixed
    offset of that mailbox (up to 6 hours, never past the renewal margin). Subscriptions created together
    (a first onboarding of thousands) then come due over several hourly runs instead of all in one,
    and stay spread, since each renewal takes the same offset again."""
    spread = min(360, max(0, (minutes - margin_minutes) // 4))
    offset = int(hashlib.sha256(user_id.encode()).hexdigest(), 16) % (spread + 1)
    return timedelta(minutes=minutes - offset)


async def create_subscription(services: Services, record: ResourceRecord) -> ResourceRecord:
    """Create the mailbox's subscription and remember its index; returns the updated record.

    A 409 (Graph already has one for this mailbox) adopts or replaces the leftover (module docstring)."""
    settings = services.settings
    client_state = secrets.token_urlsafe(32)
    wanted = _now() + lifetime(settings.subscription_lifetime_minutes, settings.subscription_renewal_margin_minutes,
                               record.user_id)
    try:
        created = await services.exchange.create_subscription(
            record.user_id, settings.graph_notification_url, settings.graph_lifecycle_url, client_state, wanted)
    except GraphError as exc:
        if exc.status != 409:
            raise
        created, client_state = await _resolve_conflict(services, record, client_state, wanted, exc)
    subscription_id = str(created["id"])
    index = SubscriptionIndex(subscription_id, record.resource_no, record.user_id, client_state_hash(client_state))
    await asyncio.to_thread(services.registry.remember_subscription, index)
    updated: ResourceRecord | None = await asyncio.to_thread(
        services.registry.update, record.resource_no, only_if=_still_tracking(record), subscription_id=subscription_id,
        subscription_expiry=_expiry_of(created, wanted), last_error="", error_count=0)
    if updated is None:  # untracked (or its mailbox changed) while Graph created it: nobody would renew it
        await services.exchange.delete_subscription(subscription_id)
        await asyncio.to_thread(services.registry.forget_subscription, subscription_id)
        await _record(services, "subscribe", "skipped", record,
                      f"subscription {subscription_id} deleted again: the resource is no longer tracked")
        return record
    await _record(services, "subscribe", "applied", record, f"subscription {subscription_id} created")
    return updated


def _still_tracking(record: ResourceRecord) -> Callable[[ResourceRecord], bool]:
    return lambda current: current.status == Status.TRACKED and current.user_id == record.user_id


def _same_subscription(record: ResourceRecord) -> Callable[[ResourceRecord], bool]:
    return lambda current: current.subscription_id == record.subscription_id


def _leftovers(subscriptions: list[dict[str, Any]], record: ResourceRecord) -> list[dict[str, Any]]:
    """The app's subscriptions on this mailbox's events with our change types (named by id or UPN)."""
    names = {record.user_id.lower(), record.email.lower()}
    found = []
    for sub in subscriptions:
        match = _EVENTS_RESOURCE.match(str(sub.get("resource") or ""))
        types = {t.strip() for t in str(sub.get("changeType") or "").split(",")}
        if match and match.group(1).lower() in names and types == CHANGE_TYPES:
            found.append(sub)
    return found


def _adoptable(services: Services, sub: dict[str, Any]) -> bool:
    settings = services.settings
    return (isinstance(sub.get("clientState"), str) and bool(sub["clientState"])
            and sub.get("notificationUrl") == settings.graph_notification_url
            and sub.get("lifecycleNotificationUrl") == settings.graph_lifecycle_url)


async def _resolve_conflict(services: Services, record: ResourceRecord, client_state: str, wanted: datetime,
                            conflict: GraphError) -> tuple[dict[str, Any], str]:
    """After a 409: adopt the leftover subscription, or delete it and create ours; (subscription, clientState)."""
    exchange, settings = services.exchange, services.settings
    leftovers = _leftovers(await exchange.list_subscriptions(), record)
    if not leftovers:
        raise conflict  # Graph has not listed it yet: the next run tries again
    for sub in leftovers:
        if _adoptable(services, sub):
            renewed = await exchange.renew_subscription(str(sub["id"]), wanted)
            await _record(services, "subscribe", "applied", record,
                          f"existing subscription {sub['id']} adopted (same URLs, clientState known)")
            return renewed, str(sub["clientState"])
    for sub in leftovers:
        await exchange.delete_subscription(str(sub["id"]))
        await asyncio.to_thread(services.registry.forget_subscription, str(sub["id"]))
        await _record(services, "subscribe", "applied", record,
                      f"leftover subscription {sub['id']} deleted (clientState unknown or another URL)")
    created = await exchange.create_subscription(
        record.user_id, settings.graph_notification_url, settings.graph_lifecycle_url, client_state, wanted)
    return created, client_state


async def drop_subscription(services: Services, record: ResourceRecord) -> None:
    """Delete the mailbox's subscription at Graph (gone already counts as deleted) and forget its index."""
    if not record.subscription_id:
        return
    await services.exchange.delete_subscription(record.subscription_id)
    await asyncio.to_thread(services.registry.forget_subscription, record.subscription_id)
    await asyncio.to_thread(_claims(services).forget, record.subscription_id)


def _claims(services: Services) -> RenewalClaims:
    return RenewalClaims(services.repositories.cursors)


async def recreate_subscription(services: Services, record: ResourceRecord) -> ResourceRecord:
    """Replace a removed or lost subscription (the old one is deleted first, if Graph still has it)."""
    try:
        await drop_subscription(services, record)
    except GraphError as exc:
        log.warning("could not delete subscription of resource %s before recreating it: %s", record.resource_no, exc)
        await asyncio.to_thread(services.registry.forget_subscription, record.subscription_id)
    return await create_subscription(services, record)


async def renew_subscription(services: Services, record: ResourceRecord) -> ResourceRecord:
    """PATCH the expiry forward (also re-authorizes); a 404 recreates it and asks for a full resync."""
    settings = services.settings
    wanted = _now() + lifetime(settings.subscription_lifetime_minutes, settings.subscription_renewal_margin_minutes,
                               record.user_id)
    try:
        renewed = await services.exchange.renew_subscription(record.subscription_id, wanted)
    except GraphError as exc:
        if not exc.not_found:
            raise
        recreated = await recreate_subscription(services, record)
        await enqueue_resync(services, record.user_id, "resync", full=True)
        return recreated
    updated: ResourceRecord | None = await asyncio.to_thread(
        services.registry.update, record.resource_no, only_if=_same_subscription(record),
        subscription_expiry=_expiry_of(renewed, wanted), last_error="")
    await _record(services, "renew", "applied", record, f"subscription {record.subscription_id} renewed")
    return updated or record


async def enqueue_resync(services: Services, user_id: str, reason: str, full: bool) -> None:
    await asyncio.to_thread(services.work_queues.send_exchange_change,
                            ExchangeChange(user_id=user_id, reason=reason, full_resync=full))


async def _record(services: Services, action: str, outcome: str, record: ResourceRecord, detail: str,
                  error: str = "") -> None:
    entry = ActivityEntry(direction="to_planning", action=action, outcome=outcome, resource_no=record.resource_no,
                          detail=detail, error=error)
    await asyncio.to_thread(services.activity.record, entry)


@dataclass
class RenewReport:
    enqueued: int = 0  # tracked mailboxes whose upkeep went to the queue
    purged: int = 0  # activity entries past the retention, deleted by this run


async def renew_subscriptions(services: Services) -> RenewReport:
    """The `renew_subscriptions` timer: one `upkeep` message per tracked mailbox (fanned out through
    `exchange-changes`, so 10,000 mailboxes are 10,000 small invocations that any instance takes, and a
    slow mailbox delays nobody), and the activity log's retention."""
    report = RenewReport()
    records = await asyncio.to_thread(services.registry.all)
    for record in records:
        if record.status != Status.TRACKED or not record.user_id:
            continue
        await asyncio.to_thread(services.work_queues.send_lifecycle, SubscriptionLifecycle(
            record.subscription_id, record.resource_no, record.user_id, UPKEEP))
        report.enqueued += 1
    # The activity log's retention rides on this hourly timer: a range read of the expired days only.
    report.purged = await asyncio.to_thread(services.activity.purge)
    return report


async def upkeep(services: Services, record: ResourceRecord) -> str:
    """One tracked mailbox's subscription: renew it when it expires soon, recreate it when Graph lost it,
    create it when an earlier create failed; a gap gets a full resync. Returns what was done."""
    margin = timedelta(minutes=services.settings.subscription_renewal_margin_minutes)
    if not record.subscription_id:
        await create_subscription(services, record)
        await enqueue_resync(services, record.user_id, "resync", full=True)
        return "created"
    if record.subscription_expiry is None or record.subscription_expiry - _now() <= margin:
        updated = await renew_subscription(services, record)
        return "renewed" if updated.subscription_id == record.subscription_id else "recreated"
    if await services.exchange.get_subscription(record.subscription_id) is None:
        await recreate_subscription(services, record)
        await enqueue_resync(services, record.user_id, "resync", full=True)
        return "recreated"
    return "healthy"


async def apply_lifecycle(services: Services, message: SubscriptionLifecycle) -> None:
    """The queue side of `graph_lifecycle` (renew, coalesced, or recreate) and of `renew_subscriptions`'
    fan-out (an `upkeep` message: renew, recreate or create one mailbox's subscription); see the module
    docstring."""
    record = await asyncio.to_thread(services.registry.get, message.resource_no)
    if record is None or record.status != Status.TRACKED or record.subscription_id != message.subscription_id \
            or record.user_id != message.user_id:
        log.info("lifecycle %s for a subscription no longer in use: ignored", message.event)
        return
    try:
        if message.event == UPKEEP:
            done = await upkeep(services, record)
            log.info("subscription upkeep of resource %s: %s", record.resource_no, done)
        elif message.event == "reauthorizationRequired":
            await reauthorize(services, record)
        else:
            await _record(services, "lifecycle", "applied", record, f"lifecycle event {message.event}")
            await recreate_subscription(services, record)
            await enqueue_resync(services, record.user_id, "lifecycle", full=True)
    except GraphError as exc:
        await _lifecycle_failed(services, message, record, exc)


async def reauthorize(services: Services, record: ResourceRecord) -> None:
    """Renew unless another worker renews it now or did so within `RENEWAL_COALESCE`."""
    claims, owner = _claims(services), uuid.uuid4().hex
    if not await asyncio.to_thread(claims.claim, record.subscription_id, owner, RENEWAL_COALESCE):
        log.info("reauthorizationRequired for resource %s: renewed just now or in hand, coalesced", record.resource_no)
        return
    try:
        await renew_subscription(services, record)
    except BaseException:
        await asyncio.to_thread(claims.release, record.subscription_id, owner)
        raise
    await asyncio.to_thread(claims.done, record.subscription_id, owner)


async def _lifecycle_failed(services: Services, message: SubscriptionLifecycle, record: ResourceRecord,
                            exc: GraphError) -> None:
    """Retry later through the queue; when that cannot help, hand it to `renew_subscriptions`."""
    failure = classify(exc)
    next_attempt = message.attempt + 1
    action = "renew" if message.event == UPKEEP else "lifecycle"
    if failure is not None and failure.transient and next_attempt < services.settings.work_max_attempts:
        delay = backoff_seconds(message.attempt, failure.retry_after)
        await asyncio.to_thread(services.work_queues.send_lifecycle, replace(message, attempt=next_attempt), delay)
        await _record(services, action, "retrying", record,
                      f"{message.event}: attempt {next_attempt}, next in {delay} s", str(exc))
        return
    # The renew timer does it (expiry "now" makes it due); a removed subscription's mailbox catches up anyway.
    await asyncio.to_thread(services.registry.update, record.resource_no, only_if=_same_subscription(record),
                            subscription_expiry=_now(), last_error=str(exc))
    await _record(services, action, "failed", record, f"{message.event}: left to the next renew_subscriptions run",
                  str(exc))
    if message.event == "subscriptionRemoved":
        await enqueue_resync(services, record.user_id, "lifecycle", full=True)
