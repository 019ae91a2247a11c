"""What the admin monitor shows and does: resources' sync status, the activity log with filters and
paging, one item's history, queue depths (poison queues included), retrying failed work, and the
changes the mass-change guard held.

A retry takes the parked message off `<queue>-poison`, resets its attempt counter and puts it back
on the work queue, where the worker applies the change again from the current state of both sides.

Held changes (README, Mass-change guard): `holds()` lists them, each with its version (`etag`),
`hold()` finds one (400 for an id that cannot be one, 404 for one that is not held), `discard_hold()`
forgets one without removing anything (an untrack's resources start their two-run count again).
Releasing applies the change, which takes the workers: `connector/workers/holds.py`. A release or
discard names the version the admin saw (`If-Match`, 428 without it, as for settings): a hold grows
while an admin looks at it, and what was not seen is neither released nor discarded (412, nothing changed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.messages import ExchangeChange, InvalidMessage, PlanningChange
from connector.stores.activity import ActivityEntry, ActivityLog
from connector.stores.holds import HELD, RELEASED, Hold, HoldKind, HoldStore, is_hold_id
from connector.stores.mappings import MappingStore
from connector.stores.queues import WorkQueues, send_text
from connector.stores.registry import ResourceRegistry, Status
from connector.stores.repositories import ConcurrencyConflict
from connector.stores.storage import WORK_QUEUES, StorageClients, poison_queue_name

MESSAGE_TYPES: dict[str, type[ExchangeChange] | type[PlanningChange]] = {
    "exchange-changes": ExchangeChange, "planning-changes": PlanningChange,
}
DIRECTIONS = ("to_outlook", "to_planning", "system")
OUTCOMES = ("applied", "skipped", "held", "rejected", "retrying", "failed")


class MonitorError(ValueError):
    def __init__(self, status: int, message: str, field: str | None = None) -> None:
        self.status = status
        self.field = field
        super().__init__(message)


@dataclass(frozen=True)
class ActivityFilter:
    direction: str | None = None
    resource: str | None = None
    outcome: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, entry: ActivityEntry) -> bool:
        return ((self.direction is None or entry.direction == self.direction)
                and (self.resource is None or entry.resource_no.lower() == self.resource.lower())
                and (self.outcome is None or entry.outcome == self.outcome)
                and (self.since is None or entry.at >= self.since)
                and (self.until is None or entry.at < self.until))


def parse_filter(params: dict[str, str]) -> tuple[ActivityFilter, int, datetime | None]:
    """Query parameters → (filter, page size, `before` cursor); 400 naming a bad parameter."""
    known = {"direction", "resource", "outcome", "since", "until", "limit", "before"}
    unknown = [k for k in params if k not in known]
    if unknown:
        raise MonitorError(400, f"unknown parameter (known: {', '.join(sorted(known))})", unknown[0])

    def moment(name: str) -> datetime | None:
        value = params.get(name)
        if not value:
            return None
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise MonitorError(400, f"{value!r} is not an ISO 8601 date-time", name) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)

    direction, outcome = params.get("direction") or None, params.get("outcome") or None
    if direction and direction not in DIRECTIONS:
        raise MonitorError(400, f"expected one of {', '.join(DIRECTIONS)}", "direction")
    if outcome and outcome not in OUTCOMES:
        raise MonitorError(400, f"expected one of {', '.join(OUTCOMES)}", "outcome")
    try:
        limit = int(params.get("limit") or 50)
    except ValueError:
        raise MonitorError(400, "expected a number", "limit") from None
    if not 1 <= limit <= 500:
        raise MonitorError(400, "expected 1 to 500", "limit")
    return (ActivityFilter(direction, params.get("resource") or None, outcome, moment("since"), moment("until")),
            limit, moment("before"))


def entry_json(entry: ActivityEntry) -> dict[str, Any]:
    data = asdict(entry)
    data["at"] = entry.at.isoformat()
    return data


class Monitor:
    def __init__(self, registry: ResourceRegistry, activity: ActivityLog, mappings: MappingStore,
                 queues: WorkQueues, clients: StorageClients, retention_days: int, holds: HoldStore) -> None:
        self._registry = registry
        self._holds = holds
        self._activity = activity
        self._mappings = mappings
        self._queues = queues
        self._clients = clients
        self._retention = retention_days

    def resources(self) -> list[dict[str, Any]]:
        now = datetime.now(UTC)
        rows = []
        for record in sorted(self._registry.all(), key=lambda r: r.resource_no):
            expiry = record.subscription_expiry
            rows.append({
                "resourceNo": record.resource_no, "displayName": record.display_name, "email": record.email,
                "status": record.status, "subscriptionId": record.subscription_id,
                "subscriptionExpiry": expiry.isoformat() if expiry else None,
                "subscriptionHealthy": bool(expiry and expiry > now + timedelta(hours=1)),
                "lastSyncToPlanning": _iso(record.last_sync_to_planning),
                "lastSyncToOutlook": _iso(record.last_sync_to_outlook),
                "lastError": record.last_error, "errorCount": record.error_count,
                "missingSince": _iso(record.missing_since),
            })
        return rows

    # -- held changes (mass-change guard) ------------------------------------------------------------
    def holds(self) -> list[dict[str, Any]]:
        """The changes waiting for an admin, oldest first."""
        return [hold_json(h) for h in self._holds.held()]

    def hold(self, hold_id: str) -> Hold:
        """The held change `hold_id` (400 for an id that cannot be one, 404 when there is none)."""
        if not is_hold_id(hold_id):
            raise MonitorError(400, f"{hold_id[:40]!r} is not a hold id (16 hexadecimal digits, as listed by "
                                    "GET /api/admin/holds)", "id")
        hold = self._holds.get(hold_id)
        if hold is None:
            raise MonitorError(404, f"no held change {hold_id!r}: it was discarded, released and applied, or "
                                    "resolved on its own (reload the list)")
        return hold

    def hold_to_release(self, hold_id: str, headers: Mapping[str, str]) -> Hold:
        """The held change an admin releases, as they saw it (`If-Match`: 428 without, 412 if it changed
        since). One released already is answered as such: releasing again changes nothing."""
        hold = self.hold(hold_id)
        version = if_match(headers)
        if hold.state == HELD:
            _same_version(hold, version)
        return hold

    def discard_hold(self, hold_id: str, by: str, headers: Mapping[str, str]) -> dict[str, Any]:
        """Forget a held change: nothing is removed (README, Mass-change guard). Every refusal comes
        before anything changes: released (409), another version than the admin saw (412)."""
        hold = self.hold(hold_id)
        if hold.state == RELEASED:
            raise MonitorError(409, f"hold {hold_id} was released by {hold.released_by}: its removals are being "
                                    "applied and cannot be discarded any more")
        _same_version(hold, if_match(headers))
        try:
            self._holds.remove(hold)  # the hold row first, only as read: a refused delete removes nothing
        except ConcurrencyConflict:
            raise MonitorError(412, _changed(hold_id)) from None
        if hold.kind == HoldKind.UNTRACK:
            for entry in hold.entries:  # kept tracked; missing on two more runs before it is held again
                record = self._registry.get(entry.resource_no)
                if record is not None and record.status == Status.TRACKED and record.missing_since is not None:
                    self._registry.update(entry.resource_no, missing_since=None)
        self._activity.record(ActivityEntry(
            "system", "discard", "applied", resource_no=hold.resource_nos[0] if len(hold.resource_nos) == 1 else "",
            detail=f"hold {hold.hold_id} discarded by {by}: {hold.what}; nothing was removed"))
        return {"id": hold.hold_id, "kind": hold.kind, "what": hold.what, "items": hold.items, "discarded": True}

    def activity(self, flt: ActivityFilter, limit: int, before: datetime | None) -> dict[str, Any]:
        """Newest first; `next` is the cursor for the following page (None on the last page)."""
        days = self._retention + 1
        now = before or datetime.now(UTC)
        items: list[ActivityEntry] = []
        for entry in self._activity.recent(days=days, now=now):
            if before is not None and entry.at >= before:
                continue
            if flt.matches(entry):
                items.append(entry)
                if len(items) > limit:
                    break
        page, more = items[:limit], len(items) > limit
        return {"items": [entry_json(e) for e in page], "next": page[-1].at.isoformat() if more and page else None}

    def item(self, key: str) -> dict[str, Any]:
        if not 0 < len(key) <= 256:  # an appointment GUID or an event id; longer cannot be a table key
            raise MonitorError(404, f"nothing is known about an item with a {len(key)}-character key")
        history = self._activity.history(key)
        status = self._mappings.appointment_status(key)
        copies = status.copies
        if not history and not copies:
            raise MonitorError(404, f"nothing is known about {key!r}")
        last_error = next((e.error for e in history if e.error), "")
        return {
            "key": key, "history": [entry_json(e) for e in history], "lastError": last_error,
            "outlookCopies": [{"resourceNo": c.resource_no, "userId": c.user_id, "eventId": c.event_id,
                               "changeKey": c.change_key} for c in copies.values()],
            "outlookItem": status.outlook_item,
        }

    def queues(self) -> dict[str, int]:
        depths: dict[str, int] = {}
        for name in WORK_QUEUES:
            for queue in (name, poison_queue_name(name)):
                depths[queue] = self._queues.depth(queue)
        return depths

    def failed(self) -> list[dict[str, Any]]:
        """Parked work (peek: nothing is taken off the poison queues)."""
        rows = []
        for name in WORK_QUEUES:
            for message in self._clients.queue(poison_queue_name(name)).peek_messages(max_messages=32):
                rows.append({"queue": name, "id": message.id, "insertedAt": _iso(message.inserted_on),
                             **_describe(name, message.content)})
        return rows

    def retry(self, queue: str, message_id: str) -> dict[str, Any]:
        """Move one parked message back to its work queue with a fresh attempt counter."""
        if queue not in MESSAGE_TYPES:
            raise MonitorError(400, f"expected one of {', '.join(MESSAGE_TYPES)}", "queue")
        poison = self._clients.queue(poison_queue_name(queue))
        found = None
        for parked in poison.receive_messages(messages_per_page=32, visibility_timeout=30):
            if parked.id == message_id and found is None:
                found = parked
            else:
                poison.update_message(parked, visibility_timeout=0)  # put the others back at once
        if found is None:
            raise MonitorError(404, f"no parked message {message_id!r} on {poison_queue_name(queue)}")
        content = found.content
        try:
            change = MESSAGE_TYPES[queue].from_json(content)
            content = replace(change, attempt=0, throttled=0).to_json()
        except InvalidMessage:
            pass  # re-queued as it is: the worker parks it again with the reason
        send_text(self._clients, queue, content)
        poison.delete_message(found)
        return {"queue": queue, "id": message_id, "requeued": True, **_describe(queue, content)}


def hold_json(hold: Hold) -> dict[str, Any]:
    return {"id": hold.hold_id, "kind": hold.kind, "what": hold.what, "items": hold.items,
            "since": hold.since.isoformat(), "resourceNo": hold.resource_nos[0] if len(hold.resource_nos) == 1 else "",
            "resources": list(hold.resource_nos), "state": hold.state, "etag": hold.etag}


def if_match(headers: Mapping[str, str]) -> str:
    """The hold's version the admin read (`If-Match`); 428 without it."""
    value = next((v for k, v in headers.items() if k.lower() == "if-match"), "")
    if not value:
        raise MonitorError(428, "If-Match is required: send the hold's etag from GET /api/admin/holds, so a "
                                "change that grew since you looked is not released or discarded unseen")
    return value


def _same_version(hold: Hold, version: str) -> None:
    if version != hold.etag:
        raise MonitorError(412, _changed(hold.hold_id, hold))


def _changed(hold_id: str, now: Hold | None = None) -> str:
    current = f" (now: {now.what}; {now.items} item(s))" if now is not None else ""
    return (f"hold {hold_id} changed since you read it{current}: nothing was released or discarded; reload the "
            "held changes, check them and try again")


def _describe(queue: str, content: str) -> dict[str, Any]:
    try:
        data = json.loads(content)
    except ValueError:
        return {"summary": "unreadable message"}
    if not isinstance(data, dict):
        return {"summary": "unreadable message"}
    if queue == "planning-changes":
        return {"appointmentGuid": data.get("appointment_guid"), "event": data.get("event"),
                "attempt": data.get("attempt"), "correlationId": data.get("correlation_id")}
    return {"userId": data.get("user_id"), "reason": data.get("reason"), "attempt": data.get("attempt"),
            "correlationId": data.get("correlation_id"),
            "eventIds": [str(i).removeprefix("!") for i in data.get("event_ids") or [] if isinstance(i, str)]}


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None
