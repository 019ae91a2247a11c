"""Graph subscriptions of tracked mailboxes: create, renew, recreate, and the lifecycle events.

- **create**: `users/{id}/events`, `created,updated,deleted`, the notification and lifecycle URLs, a
  random clientState (`secrets.token_urlsafe(32)`, 43 characters) of which only the SHA-256 is
  stored (`SubscriptionIndex`); expiry `SUBSCRIPTION_LIFETIME_MINUTES` ahead. Graph validates both
  URLs against our own webhook functions before it answers.
- **renew** (`renew_subscriptions` timer): PATCH the expiry of those expiring within
  `SUBSCRIPTION_RENEWAL_MARGIN_MINUTES`; the others are checked with a GET. A subscription Graph no
  longer has (404) is recreated and the mailbox gets a full resync, which repairs whatever changed
  during the gap. A tracked mailbox without a subscription (its create failed) gets one.
- **lifecycle** (`graph_lifecycle`, handled inline: these events are rare and each costs one or two
  Graph calls): `reauthorizationRequired` → renew now; `subscriptionRemoved` → recreate, then a full
  resync; `missed` → a delta round (the delta token still holds what the notifications missed). If
  the inline renew/recreate fails, the record's expiry is set to "now" so the next
  `renew_subscriptions` run does it, and the resync is enqueued anyway.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from connector.errors import GraphError
from connector.messages import ExchangeChange
from connector.model import parse_utc
from connector.services import Services
from connector.stores.activity import ActivityEntry
from connector.stores.registry import ResourceRecord, Status, SubscriptionIndex, client_state_hash

log = logging.getLogger(__name__)


def _now() -> datetime:
    return datetime.now(UTC)


def _expiry_of(subscription: dict[str, object], fallback: datetime) -> datetime:
    try:
        return parse_utc(subscription.get("expirationDateTime"), "expirationDateTime")
    except ValueError:
        return fallback


async def create_subscription(services: Services, record: ResourceRecord) -> ResourceRecord:
    """Create the mailbox's subscription and remember its index; returns the updated record."""
    settings = services.settings
    client_state = secrets.token_urlsafe(32)
    wanted = _now() + timedelta(minutes=settings.subscription_lifetime_minutes)
    created = await services.exchange.create_subscription(
        record.user_id, settings.graph_notification_url, settings.graph_lifecycle_url, client_state, wanted)
    subscription_id = str(created["id"])
    index = SubscriptionIndex(subscription_id, record.resource_no, record.user_id, client_state_hash(client_state))
    await asyncio.to_thread(services.registry.remember_subscription, index)
    updated: ResourceRecord | None = await asyncio.to_thread(
        services.registry.update, record.resource_no, subscription_id=subscription_id,
        subscription_expiry=_expiry_of(created, wanted), last_error="", error_count=0)
    await _record(services, "subscribe", "applied", record, f"subscription {subscription_id} created")
    return updated or record


async def drop_subscription(services: Services, record: ResourceRecord) -> None:
    """Delete the mailbox's subscription at Graph (gone already counts as deleted) and forget its index."""
    if not record.subscription_id:
        return
    await services.exchange.delete_subscription(record.subscription_id)
    await asyncio.to_thread(services.registry.forget_subscription, record.subscription_id)


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
    wanted = _now() + timedelta(minutes=services.settings.subscription_lifetime_minutes)
    try:
        renewed = await services.exchange.renew_subscription(record.subscription_id, wanted)
    except GraphError as exc:
        if not exc.not_found:
            raise
        recreated = await recreate_subscription(services, record)
        await enqueue_resync(services, record.user_id, "resync", full=True)
        return recreated
    updated: ResourceRecord | None = await asyncio.to_thread(
        services.registry.update, record.resource_no, subscription_expiry=_expiry_of(renewed, wanted), last_error="")
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
    renewed: int = 0
    recreated: int = 0
    created: int = 0
    failed: int = 0


async def renew_subscriptions(services: Services) -> RenewReport:
    """The `renew_subscriptions` timer: renew the ones expiring soon, recreate lost ones, resync after gaps."""
    report = RenewReport()
    margin = timedelta(minutes=services.settings.subscription_renewal_margin_minutes)
    records = await asyncio.to_thread(services.registry.all)
    for record in records:
        if record.status != Status.TRACKED or not record.user_id:
            continue
        try:
            if not record.subscription_id:
                await create_subscription(services, record)
                await enqueue_resync(services, record.user_id, "resync", full=True)
                report.created += 1
            elif record.subscription_expiry is None or record.subscription_expiry - _now() <= margin:
                before = record.subscription_id
                updated = await renew_subscription(services, record)
                if updated.subscription_id != before:
                    report.recreated += 1
                else:
                    report.renewed += 1
            elif await services.exchange.get_subscription(record.subscription_id) is None:
                await recreate_subscription(services, record)
                await enqueue_resync(services, record.user_id, "resync", full=True)
                report.recreated += 1
        except GraphError as exc:
            report.failed += 1
            log.warning("subscription upkeep failed for resource %s: %s", record.resource_no, exc)
            await asyncio.to_thread(services.registry.update, record.resource_no, last_error=str(exc))
            await _record(services, "renew", "failed", record, "subscription upkeep failed; retried next run", str(exc))
    return report


async def handle_lifecycle(services: Services, events: list[tuple[SubscriptionIndex, str]]) -> None:
    """Act on verified lifecycle events (see the module docstring)."""
    for index, event in events:
        record = await asyncio.to_thread(services.registry.get, index.resource_no)
        if record is None or record.status != Status.TRACKED or record.subscription_id != index.subscription_id:
            log.info("lifecycle %s for a subscription no longer in use: ignored", event)
            continue
        await _record(services, "lifecycle", "applied", record, f"lifecycle event {event}")
        try:
            if event == "reauthorizationRequired":
                await renew_subscription(services, record)
            elif event == "subscriptionRemoved":
                await recreate_subscription(services, record)
                await enqueue_resync(services, record.user_id, "lifecycle", full=True)
            elif event == "missed":
                await enqueue_resync(services, record.user_id, "lifecycle", full=False)
        except GraphError as exc:
            # Leave it to the renew timer (expiry "now" makes it due) and still catch up on changes.
            await asyncio.to_thread(services.registry.update, record.resource_no, subscription_expiry=_now(),
                                    last_error=str(exc))
            await _record(services, "lifecycle", "failed", record, f"{event}: left to renew_subscriptions", str(exc))
            await enqueue_resync(services, record.user_id, "lifecycle", full=event == "subscriptionRemoved")
