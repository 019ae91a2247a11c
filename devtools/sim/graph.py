"""An in-memory Microsoft Graph for the simulation: users, calendars, transactionId, the connector's tag
property, `$batch`, calendarView delta with pages and tokens, subscriptions, and the change
notifications each write produces (handed to the simulation, which delivers, drops or repeats them).

It has the surface of `connector.gateways.graph.ExchangeGateway` that the workers use. Every call is an
I/O point of the simulation (`Sim.io`): it may be interleaved with others, fail before it happens, or
fail after it happened (the caller never learns it did).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from connector.errors import GraphError
from connector.gateways.graph import DeltaPage
from connector.model import graph_time, parse_utc
from devtools.sim.clock import EPOCH

if TYPE_CHECKING:
    from devtools.sim.world import Sim

_EVENT_URL = re.compile(r"^/users/([^/]+)/events(?:/([^/?]+))?$")
PAGE_SIZE = 3  # small pages: every round crosses page boundaries and checkpoints
MIN_LIFETIME = timedelta(minutes=45)  # Graph raises a shorter subscription expiry to this


@dataclass
class Notification:
    subscription_id: str
    client_state: str
    user_id: str
    change_type: str
    event_id: str


@dataclass
class Lifecycle:
    """A lifecycle notification Graph owes the subscription's `lifecycleNotificationUrl`."""

    subscription_id: str
    client_state: str
    user_id: str
    event: str  # reauthorizationRequired | subscriptionRemoved | missed
    expiration: str


@dataclass
class Mailbox:
    user_id: str
    email: str
    time_zone: str = "UTC"  # mailboxSettings.timeZone (a Windows zone name, as Graph gives it)
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    log: list[tuple[int, str]] = field(default_factory=list)  # (sequence, event id) of every change


class FakeGraph:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.mailboxes: dict[str, Mailbox] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.outbox: list[Notification] = []
        self.lifecycle_outbox: list[Lifecycle] = []
        self.writes = 0  # event writes that took effect (the replay check compares it)
        # What a create with a transactionId already used answers (Graph does not document it): "existing"
        # gives the first event back (and a deleted event's id is free again); "conflict" answers 409 and
        # keeps the ids of deleted events taken.
        self.repeated_transaction = "existing"
        self._taken: set[tuple[str, str]] = set()  # (mailbox, transactionId) ever used
        self.refused_subjects: set[str] = set()  # event contents Graph refuses for good (400; a scenario's)
        self._seq = itertools.count(1)
        self._ids = itertools.count(1)
        self._rounds: dict[str, tuple[list[dict[str, Any]], str]] = {}

    # -- the world's side ----------------------------------------------------------------------
    def add_user(self, user_id: str, email: str, time_zone: str = "UTC") -> None:
        self.mailboxes[user_id] = Mailbox(user_id, email, time_zone)

    def _box(self, user_id: str) -> Mailbox:
        box = self.mailboxes.get(user_id)
        if box is None:
            raise GraphError(404, "ErrorInvalidUser", f"no mailbox {user_id}")
        return box

    def _changed(self, box: Mailbox, event_id: str, change_type: str) -> None:
        box.log.append((next(self._seq), event_id))
        for sub in self._live_subscriptions():
            if sub["resource"] == f"users/{box.user_id}/events":
                self.outbox.append(Notification(sub["id"], sub["clientState"], box.user_id, change_type, event_id))

    def write_event(self, user_id: str, event: dict[str, Any], change_type: str = "updated") -> dict[str, Any]:
        """A write by anyone (the connector, or a person in Outlook): new changeKey, logged, notified.
        Times are kept as Graph keeps them (`stored_times`); a write Graph refuses raises its 400."""
        box = self._box(user_id)
        event.update(stored_times(event))
        event["changeKey"] = f"ck{next(self._ids)}"
        event["@odata.etag"] = f'W/"{event["changeKey"]}"'
        box.events[event["id"]] = event
        self._changed(box, event["id"], change_type)
        return dict(event)

    def remove_event(self, user_id: str, event_id: str) -> bool:
        box = self._box(user_id)
        if box.events.pop(event_id, None) is None:
            return False
        self._changed(box, event_id, "deleted")
        return True

    def new_event(self, user_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
        event = {"id": f"AAMk-{user_id}-{next(self._ids)}", "type": "singleInstance", "isAllDay": False,
                 "showAs": "busy", "sensitivity": "normal", "importance": "normal", "categories": [],
                 "subject": "", "body": {"contentType": "text", "content": ""}}
        event.update({k: v for k, v in body.items() if not k.startswith("@")})
        return self.write_event(user_id, event, "created")

    # -- subscriptions' lifecycle ----------------------------------------------------------------
    def _now(self) -> datetime:
        return EPOCH + timedelta(seconds=self.sim.loop.time())

    def _live_subscriptions(self) -> list[dict[str, Any]]:
        """The subscriptions still in force: one past its expirationDateTime is gone (Graph deletes it and
        notifies nothing more; a renewal then answers 404)."""
        for sub in list(self.subscriptions.values()):
            if parse_utc(sub["expirationDateTime"], "expirationDateTime") <= self._now():
                self.sim.trace(f"graph: subscription {sub['id']} of {sub['resource']} expired")
                del self.subscriptions[sub["id"]]
        return list(self.subscriptions.values())

    def subscriptions_of(self, user_id: str) -> list[dict[str, Any]]:
        return [s for s in self._live_subscriptions() if s["resource"] == f"users/{user_id}/events"]

    def lifecycle(self, sub: Mapping[str, Any], event: str) -> None:
        """Graph owes the subscription's lifecycle URL `event` (delivered, dropped or repeated by the world)."""
        user_id = str(sub["resource"]).split("/")[1]
        self.lifecycle_outbox.append(Lifecycle(sub["id"], sub["clientState"], user_id, event,
                                               sub["expirationDateTime"]))

    def remove_subscription(self, sub: Mapping[str, Any]) -> None:
        """Graph removed the subscription (`subscriptionRemoved`): no change notification from here on."""
        self.subscriptions.pop(sub["id"], None)
        self.lifecycle(sub, "subscriptionRemoved")

    def lose_notifications(self, sub: Mapping[str, Any], rng: Any) -> int:
        """Graph could not deliver some of the subscription's notifications (`missed`): they are lost."""
        mine = [n for n in self.outbox if n.subscription_id == sub["id"]]
        lost = [n for n in mine if rng.random() < 0.7]
        self.outbox = [n for n in self.outbox if all(n is not gone for gone in lost)]
        self.lifecycle(sub, "missed")
        return len(lost)

    # -- the gateway surface ---------------------------------------------------------------------
    async def get_user(self, id_or_upn: str) -> dict[str, Any] | None:
        def effect() -> dict[str, Any] | None:
            for box in self.mailboxes.values():
                if id_or_upn in (box.user_id, box.email) or id_or_upn.lower() == box.email.lower():
                    return {"id": box.user_id, "mail": box.email, "userPrincipalName": box.email}
            return None
        return await self.sim.io("graph get_user", effect)

    async def ping(self) -> None:
        await self.sim.io("graph ping", lambda: None)

    async def mailbox_time_zone(self, user_id: str) -> str | None:
        return await self.sim.io("graph mailboxSettings",
                                 lambda: self.mailboxes[user_id].time_zone if user_id in self.mailboxes else None)

    async def instances(self, user_id: str, master_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """No recurring series in the simulated calendars (the series rules have their own end-to-end tests)."""
        return await self.sim.io("graph instances", lambda: [])

    async def create_subscription(self, user_id: str, notification_url: str, lifecycle_url: str, client_state: str,
                                  expiration: datetime) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            self._box(user_id)
            sub = {"id": f"sub-{next(self._ids)}", "resource": f"users/{user_id}/events", "clientState": client_state,
                   "notificationUrl": notification_url, "lifecycleNotificationUrl": lifecycle_url,
                   "expirationDateTime": self._expiry(expiration)}
            self.subscriptions[sub["id"]] = sub
            return dict(sub)
        return await self.sim.io("graph create_subscription", effect)

    async def renew_subscription(self, subscription_id: str, expiration: datetime) -> dict[str, Any]:
        def effect() -> dict[str, Any]:
            sub = next((s for s in self._live_subscriptions() if s["id"] == subscription_id), None)
            if sub is None:
                raise GraphError(404, "ResourceNotFound", "subscription not found")
            sub["expirationDateTime"] = self._expiry(expiration)
            return dict(sub)
        return await self.sim.io("graph renew_subscription", effect)

    def _expiry(self, wanted: datetime) -> str:
        """Graph raises an expiry less than 45 minutes ahead to 45 minutes."""
        return graph_time(max(wanted, self._now() + MIN_LIFETIME))["dateTime"] + "Z"

    async def get_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        return await self.sim.io("graph get_subscription",
                                 lambda: next((dict(s) for s in self._live_subscriptions() if s["id"] == subscription_id),
                                              None))

    async def delete_subscription(self, subscription_id: str) -> None:
        await self.sim.io("graph delete_subscription", lambda: self.subscriptions.pop(subscription_id, None))

    async def create_event(self, user_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        response = await self.sim.io("graph create_event", lambda: self._request("POST", user_id, None, event))
        return self._raise_or_body(response)

    async def update_event(self, user_id: str, event_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        response = await self.sim.io("graph update_event", lambda: self._request("PATCH", user_id, event_id, changes))
        return self._raise_or_body(response)

    async def delete_event(self, user_id: str, event_id: str) -> bool:
        response = await self.sim.io("graph delete_event", lambda: self._request("DELETE", user_id, event_id, None))
        if response["status"] == 404:
            return False
        self._raise_or_body(response)
        return True

    async def get_event(self, user_id: str, event_id: str, expand_property: str | None = None) -> dict[str, Any] | None:
        return await self.sim.io("graph get_event", lambda: dict(self._box(user_id).events[event_id])
                                 if event_id in self._box(user_id).events else None)

    async def find_events_by_property(self, user_id: str, property_id: str, value: str) -> list[dict[str, Any]]:
        def effect() -> list[dict[str, Any]]:
            return [dict(e) for e in self._box(user_id).events.values()
                    if any(p.get("id") == property_id and p.get("value") == value
                           for p in e.get("singleValueExtendedProperties") or ())]
        return await self.sim.io("graph find_events", effect)

    async def batch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        requests = list(body.get("requests") or [])

        def effect() -> dict[str, Any]:
            responses = []
            for request in requests:
                match = _EVENT_URL.match(str(request["url"]))
                if match is None:
                    responses.append({"id": request["id"], "status": 400, "body": {"error": {"code": "BadRequest"}}})
                    continue
                inner = self.sim.inner_fault()
                if inner is not None:
                    when = "after" if inner.after_commit else "instead of"
                    self.sim.trace(f"fault inside $batch {when} {request['method']} {request['url']}: {inner.response['status']}")
                if inner is not None and not inner.after_commit:
                    responses.append({"id": request["id"], **inner.response})
                    continue
                answer = self._request(str(request["method"]), match.group(1), match.group(2), request.get("body"),
                                       (request.get("headers") or {}).get("If-Match"))
                responses.append({"id": request["id"], **(inner.response if inner is not None else answer)})
            return {"responses": responses}
        return await self.sim.io("graph $batch", effect)

    async def delta_page(self, user_id: str, *, link: str | None = None, start: datetime | None = None,
                         end: datetime | None = None, page_size: int = 100) -> DeltaPage:
        return await self.sim.io("graph delta", lambda: self._delta(user_id, link, start, end))

    # -- request semantics ------------------------------------------------------------------------
    @staticmethod
    def _raise_or_body(response: Mapping[str, Any]) -> dict[str, Any]:
        if response["status"] >= 400:
            error = (response.get("body") or {}).get("error") or {}
            retry = (response.get("headers") or {}).get("Retry-After")
            raise GraphError(response["status"], error.get("code", "Error"), error.get("message", ""),
                             float(retry) if retry else None)
        return dict(response.get("body") or {})

    def _request(self, method: str, user_id: str, event_id: str | None, body: Any,
                 condition: str | None = None) -> dict[str, Any]:
        box = self.mailboxes.get(user_id)
        if box is None:
            return {"status": 404, "body": {"error": {"code": "ErrorInvalidUser", "message": "no such mailbox"}}}
        if method in ("POST", "PATCH") and (body or {}).get("subject") in self.refused_subjects:
            self.sim.trace(f"graph: {method} in {user_id}: 400, the content is refused")
            return {"status": 400, "body": {"error": {"code": "ErrorInvalidRequest", "message": "refused (simulated)"}}}
        if method == "POST" and event_id is None:
            transaction = (body or {}).get("transactionId")
            if transaction and self.repeated_transaction == "conflict" and (user_id, transaction) in self._taken:
                self.sim.trace(f"graph: create in {user_id}: 409, transactionId already used")
                return {"status": 409, "body": {"error": {"code": "ErrorDuplicateTransactionId",
                                                          "message": "transactionId already used"}}}
            for existing in box.events.values():
                if transaction and existing.get("transactionId") == transaction:
                    return {"status": 201, "body": dict(existing)}  # a repeated create: the same event
            try:
                stored_times({"isAllDay": False, **(body or {})})
            except GraphError as exc:
                return _refused(exc)
            if transaction:
                self._taken.add((user_id, transaction))
            self.writes += 1
            created = self.new_event(user_id, body or {})
            self._connector_wrote(created)
            self.sim.trace(f"graph: event {created['id']} created in {user_id}")
            return {"status": 201, "body": created}
        if event_id is None or event_id not in box.events:
            return {"status": 404, "body": {"error": {"code": "ErrorItemNotFound", "message": "not found"}}}
        if condition and condition not in ("*", box.events[event_id].get("@odata.etag")):
            self.sim.trace(f"graph: {method} {event_id} in {user_id}: 412, the changeKey moved")
            return {"status": 412, "body": {"error": {"code": "ErrorIrresolvableConflict", "message": "change key"}}}
        if method == "PATCH":
            event = {**box.events[event_id], **{k: v for k, v in (body or {}).items() if k != "transactionId"}}
            # Extended properties are set one by one: those the PATCH does not name stay (as in Graph).
            kept = {p["id"]: p for p in box.events[event_id].get("singleValueExtendedProperties") or ()}
            kept.update({p["id"]: p for p in (body or {}).get("singleValueExtendedProperties") or ()})
            event["singleValueExtendedProperties"] = list(kept.values())
            try:
                stored_times(event)
            except GraphError as exc:
                return _refused(exc)
            self.writes += 1
            self.sim.trace(f"graph: event {event_id} patched in {user_id}: {sorted(body or {})}")
            self._connector_wrote(event)
            return {"status": 200, "body": self.write_event(user_id, event)}
        if method == "DELETE":
            self.writes += 1
            self.sim.trace(f"graph: event {event_id} deleted in {user_id}")
            self.remove_event(user_id, event_id)
            return {"status": 204, "body": None}
        return {"status": 405, "body": {"error": {"code": "MethodNotAllowed"}}}

    def _connector_wrote(self, event: Mapping[str, Any]) -> None:
        """The oracle's account of the connector's writes to its own events (a person's edit they overwrote)."""
        from connector.sync.status import TAG_PROPERTY_ID

        for prop in event.get("singleValueExtendedProperties") or ():
            if prop.get("id") == TAG_PROPERTY_ID:
                self.sim.model.connector_wrote(str(prop.get("value")).lower(), self.sim.loop.time())

    def _delta(self, user_id: str, link: str | None, start: datetime | None, end: datetime | None) -> DeltaPage:
        box = self._box(user_id)
        if link is not None and link.startswith("sim-next:"):
            items, final = self._rounds.get(link, ([], ""))  # a page link can be read again (as the emulator's)
            if not final:
                raise GraphError(410, "SyncStateNotFound", "the page link expired")
            return self._page(items, final)
        if link is not None:
            match = re.fullmatch(r"sim-delta:(\d+):([^|]+)\|(.+)", link)
            if match is None or self.sim.token_expired():
                raise GraphError(410, "SyncStateNotFound", "the delta token is no longer valid")
            since, start, end = int(match.group(1)), parse_utc(match.group(2), "s"), parse_utc(match.group(3), "e")
            changed = sorted({eid for seq, eid in box.log if seq > since})
        else:
            assert start is not None and end is not None
            since = 0
            changed = sorted(box.events)
        latest = max((seq for seq, _ in box.log), default=0)
        items = []
        for event_id in changed:
            event = box.events.get(event_id)
            if event is not None and _overlaps(event, start, end):
                items.append(dict(event))
            elif link is not None:  # deleted, or moved out of the window, since the last round
                items.append({"@odata.type": "#microsoft.graph.event", "id": event_id,
                              "@removed": {"reason": "deleted"}})
        final = f"sim-delta:{latest}:{start.isoformat()}|{end.isoformat()}"
        return self._page(items, final)

    def _page(self, items: list[dict[str, Any]], final: str) -> DeltaPage:
        if len(items) <= PAGE_SIZE:
            return DeltaPage(items, None, final)
        token = f"sim-next:{next(self._ids)}"
        self._rounds[token] = (items[PAGE_SIZE:], final)
        return DeltaPage(items[:PAGE_SIZE], token, None)


def stored_times(event: Mapping[str, Any]) -> dict[str, Any]:
    """`start` and `end` as Graph reads them back to the connector (which asks for UTC): a timed event as
    its instants in UTC; an all-day event as midnight-to-midnight dates whatever zone is asked for (it is
    kept at midnight of the zone it was written in: docs #1802, #6003). Refused as Graph refuses them: an
    all-day event not at midnight in its zone, an end before the start (400)."""
    from devtools.sim.model import ZONES, zone  # Graph knows every Windows zone: the world's own table

    def instant(value: Any, name: str) -> datetime:
        if not isinstance(value, Mapping):
            raise GraphError(400, "ErrorInvalidRequest", f"{name}: a dateTimeTimeZone is required")
        named = str(value.get("timeZone") or "UTC")
        if named not in ZONES:
            raise GraphError(400, "ErrorTimeZoneNotSupported", f"{name}: time zone {value.get('timeZone')!r}")
        naive = parse_utc(value.get("dateTime"), name).replace(tzinfo=None)
        return naive.replace(tzinfo=zone(named))

    start, end = instant(event.get("start"), "start"), instant(event.get("end"), "end")
    if event.get("isAllDay"):
        if start.time() != datetime.min.time() or end.time() != datetime.min.time() or end.date() <= start.date():
            raise GraphError(400, "ErrorInvalidRequest", "an all-day event starts and ends at midnight, a day apart "
                                                         "or more")
        return {"start": _day(start), "end": _day(end)}
    if end < start:
        raise GraphError(400, "ErrorInvalidRequest", "the end of an event is before its start")
    return {"start": graph_time(start), "end": graph_time(end)}


def _refused(exc: GraphError) -> dict[str, Any]:
    return {"status": exc.status, "body": {"error": {"code": exc.code, "message": str(exc)}}}


def _day(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": "UTC"}


def _overlaps(event: Mapping[str, Any], start: datetime, end: datetime) -> bool:
    begins = parse_utc(event["start"]["dateTime"], "start")
    ends = parse_utc(event["end"]["dateTime"], "end")
    return begins < end and ends > start
