"""The control plane under ``/_emulator`` (no auth, JSON): reset, seed, stats, faults, lifecycle
events, subscription expiry, delta token expiry, throttle limits, clock and inspection."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from .core import Emulator
from .errors import GraphError
from .events import insert_event
from .knobs import get_config, patch_config
from .store import User
from .subscriptions import Subscription
from .timeutil import format_utc
from .users import build_user

log = logging.getLogger("graph_emulator")
EMULATOR: web.AppKey[Emulator] = web.AppKey("graph_emulator", Emulator)
LIFECYCLE_EVENTS = ("reauthorizationRequired", "subscriptionRemoved", "missed")
THROTTLE_CODES = ("ApplicationThrottled", "TooManyRequests")
ControlHandler = Callable[[Emulator, web.Request], Awaitable[web.Response]]


def _error(status: int, message: str, code: str = "BadRequest") -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


async def _body(request: web.Request, required: bool = True) -> dict[str, Any]:
    text = await request.text()
    if not text.strip():
        if required:
            raise GraphError(400, "BadRequest", "A JSON object body is required.")
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise GraphError(400, "BadRequest", f"Invalid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise GraphError(400, "BadRequest", "A JSON object body is required.")
    return data


def _wrap(handler: ControlHandler) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def run(request: web.Request) -> web.Response:
        try:
            return await handler(request.app[EMULATOR], request)
        except GraphError as exc:
            return _error(exc.status, exc.message, exc.code)
        except Exception as exc:  # keep serving: report the bug to the caller and the log
            log.exception("control plane error for %s %s", request.method, request.path)
            return _error(500, f"{type(exc).__name__}: {exc}", "InternalServerError")

    return run


def _user(emu: Emulator, ref: Any) -> User:
    user = emu.store.find_user(ref) if isinstance(ref, str) else None
    if user is None:
        raise GraphError(404, "NotFound", f"Unknown user '{ref}'.")
    return user


def _subscription(emu: Emulator, request: web.Request) -> Subscription:
    sub = emu.subscriptions.items.get(request.match_info["id"])
    if sub is None:
        raise GraphError(404, "NotFound", f"Unknown subscription '{request.match_info['id']}'.")
    return sub


async def reset(emu: Emulator, request: web.Request) -> web.Response:
    emu.reset()
    return web.json_response({"reset": True})


async def stats(emu: Emulator, request: web.Request) -> web.Response:
    return web.json_response({**emu.stats.snapshot(), "delivery": emu.notifier.delivery_json()})


async def reset_stats(emu: Emulator, request: web.Request) -> web.Response:
    emu.stats.clear()
    return web.json_response(emu.stats.snapshot())


async def seed(emu: Emulator, request: web.Request) -> web.Response:
    data = await _body(request)
    users, events = data.get("users") or [], data.get("events") or {}
    if not isinstance(users, list) or not isinstance(events, dict):
        raise GraphError(400, "BadRequest", "'users' must be an array and 'events' an object.")
    created_users = []
    for raw in users:
        if not isinstance(raw, dict):
            raise GraphError(400, "BadRequest", "Each user must be an object.")
        existing = emu.store.find_user(str(raw.get("userPrincipalName", "")))
        user = existing or build_user(emu, raw)
        created_users.append({"id": user.id, "userPrincipalName": user.user_principal_name})
    created_events: dict[str, list[dict[str, str]]] = {}
    for ref, bodies in events.items():
        user = _user(emu, ref)
        if not isinstance(bodies, list) or not all(isinstance(b, dict) for b in bodies):
            raise GraphError(400, "BadRequest", f"The events of '{ref}' must be an array of objects.")
        created_events[ref] = []
        for body in bodies:
            view, _ = insert_event(emu, user, body)
            created_events[ref].append({"id": view.id(False), "immutableId": view.id(True)})
    return web.json_response({"users": created_users, "events": created_events})


async def list_faults(emu: Emulator, request: web.Request) -> web.Response:
    return web.json_response({"value": [rule.to_json() for rule in emu.faults.rules]})


async def add_fault(emu: Emulator, request: web.Request) -> web.Response:
    rule = emu.faults.add(await _body(request))
    return web.json_response(rule.to_json(), status=201)


async def clear_faults(emu: Emulator, request: web.Request) -> web.Response:
    emu.faults.rules.clear()
    return web.json_response({"value": []})


async def notification_faults(emu: Emulator, request: web.Request) -> web.Response:
    faults = emu.notifier.faults
    if request.method == "POST":
        data = await _body(request)
        for name in ("drop", "duplicate", "delayMs"):
            value = data.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise GraphError(400, "BadRequest", f"'{name}' must be a non-negative integer.")
        if data.get("reorder") is not None and not isinstance(data["reorder"], bool):
            raise GraphError(400, "BadRequest", "'reorder' must be a boolean.")
        faults.drop = data.get("drop", faults.drop)
        faults.duplicate = data.get("duplicate", faults.duplicate)
        faults.reorder = data.get("reorder", faults.reorder)
        faults.delay_ms = data.get("delayMs", faults.delay_ms)
    elif request.method == "DELETE":
        faults.drop = faults.duplicate = faults.delay_ms = 0
        faults.reorder = False
    return web.json_response(faults.to_json())


async def notification_log(emu: Emulator, request: web.Request) -> web.Response:
    if request.method == "DELETE":
        emu.notifier.log.clear()
    return web.json_response({"value": emu.notifier.log})


def _subscription_json(emu: Emulator, sub: Subscription, base: str) -> dict[str, Any]:
    return {
        **sub.to_json(base, emu.config.application_id, emu.config.creator_id),
        "mailbox": sub.mailbox,
        "expired": not sub.removed and sub.expiration <= emu.now(),
        "removed": sub.removed,
        "immutableIds": sub.immutable_ids,
    }


async def list_subscriptions(emu: Emulator, request: web.Request) -> web.Response:
    base = f"{request.scheme}://{request.host}"
    return web.json_response({"value": [_subscription_json(emu, s, base) for s in emu.subscriptions.items.values()]})


async def lifecycle(emu: Emulator, request: web.Request) -> web.Response:
    sub = _subscription(emu, request)
    event = (await _body(request)).get("event")
    if event not in LIFECYCLE_EVENTS:
        raise GraphError(400, "BadRequest", f"'event' must be one of {', '.join(LIFECYCLE_EVENTS)}.")
    if sub.lifecycle_url:
        emu.notifier.lifecycle(sub.lifecycle_url, sub, event)
    if event == "subscriptionRemoved":
        sub.removed = True
    return web.json_response({"subscriptionId": sub.id, "event": event, "delivering": bool(sub.lifecycle_url)})


async def expire_subscription(emu: Emulator, request: web.Request) -> web.Response:
    sub = _subscription(emu, request)
    sub.expiration = min(sub.expiration, emu.now())
    return web.json_response({"subscriptionId": sub.id, "expirationDateTime": format_utc(sub.expiration)})


async def expire_delta(emu: Emulator, request: web.Request) -> web.Response:
    data = await _body(request, required=False)
    mailbox = _user(emu, data["user"]).id if data.get("user") is not None else None
    emu.delta.expire(mailbox)
    return web.json_response({"expired": mailbox or "all"})


async def throttle(emu: Emulator, request: web.Request) -> web.Response:
    limits = emu.throttle
    if request.method == "POST":
        data = await _body(request)
        fields = {"concurrency": "concurrency", "budget": "budget", "windowSeconds": "window_seconds",
                  "subscriptionLimit": "subscription_limit", "subscriptionWindowSeconds": "subscription_window",
                  "concurrencyRetryAfter": "concurrency_retry_after"}
        for name, attr in fields.items():
            value = data.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise GraphError(400, "BadRequest", f"'{name}' must be a positive number.")
            setattr(limits, attr, value)
        if data.get("fractionalRetryAfter") is not None:
            if not isinstance(data["fractionalRetryAfter"], bool):
                raise GraphError(400, "BadRequest", "'fractionalRetryAfter' must be a boolean.")
            limits.fractional_retry_after = data["fractionalRetryAfter"]
        if data.get("errorCode") is not None:
            if data["errorCode"] not in THROTTLE_CODES:
                raise GraphError(400, "BadRequest", f"'errorCode' must be one of {', '.join(THROTTLE_CODES)}.")
            limits.error_code = data["errorCode"]
    return web.json_response(limits.settings())


async def clock(emu: Emulator, request: web.Request) -> web.Response:
    if request.method == "POST":
        value = (await _body(request)).get("advanceSeconds")
        if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
            raise GraphError(400, "BadRequest", "'advanceSeconds' must be a non-negative number.")
        emu.clock_offset += value
    return web.json_response({"now": format_utc(emu.now()), "offsetSeconds": emu.clock_offset})


async def move_event(emu: Emulator, request: web.Request) -> web.Response:
    ref = request.match_info["id"]
    record = emu.store.events.get(ref) or next(
        (r for r in emu.store.events.values() if r.regular_id == ref), None)
    if record is None:
        raise GraphError(404, "NotFound", f"Unknown stored event '{ref}' (occurrences can't be moved).")
    emu.store.move_event(record)
    return web.json_response({"id": record.regular_id, "immutableId": record.immutable_id})


async def dump_events(emu: Emulator, request: web.Request) -> web.Response:
    mailbox = _user(emu, request.query["user"]).id if "user" in request.query else None
    return web.json_response({"value": [
        {
            "id": r.regular_id, "immutableId": r.immutable_id, "mailbox": r.mailbox,
            "subject": r.props.get("subject"), "type": "seriesMaster" if r.is_series else "singleInstance",
            "changeKey": r.change_key, "transactionId": r.transaction_id,
            "start": format_utc(r.start), "end": format_utc(r.end), "isAllDay": r.is_all_day,
            "exceptions": len(r.exceptions), "cancelledOccurrences": len(r.cancelled),
        }
        for r in emu.store.events.values() if mailbox is None or r.mailbox == mailbox
    ]})


def register(router: web.UrlDispatcher) -> None:
    table: list[tuple[str, str, ControlHandler]] = [
        ("POST", "/_emulator/reset", reset),
        ("GET", "/_emulator/config", get_config),
        ("PATCH", "/_emulator/config", patch_config),
        ("GET", "/_emulator/stats", stats),
        ("POST", "/_emulator/stats/reset", reset_stats),
        ("POST", "/_emulator/seed", seed),
        ("GET", "/_emulator/faults", list_faults),
        ("POST", "/_emulator/faults", add_fault),
        ("DELETE", "/_emulator/faults", clear_faults),
        ("GET", "/_emulator/notifications/faults", notification_faults),
        ("POST", "/_emulator/notifications/faults", notification_faults),
        ("DELETE", "/_emulator/notifications/faults", notification_faults),
        ("GET", "/_emulator/notifications", notification_log),
        ("DELETE", "/_emulator/notifications", notification_log),
        ("GET", "/_emulator/subscriptions", list_subscriptions),
        ("POST", "/_emulator/subscriptions/{id}/lifecycle", lifecycle),
        ("POST", "/_emulator/subscriptions/{id}/expire", expire_subscription),
        ("POST", "/_emulator/delta/expire", expire_delta),
        ("GET", "/_emulator/throttle", throttle),
        ("POST", "/_emulator/throttle", throttle),
        ("POST", "/_emulator/config", patch_config),
        ("GET", "/_emulator/clock", clock),
        ("POST", "/_emulator/clock", clock),
        ("GET", "/_emulator/events", dump_events),
        ("POST", "/_emulator/events/{id}/move", move_event),
    ]
    for method, path, handler in table:
        router.add_route(method, path, _wrap(handler))
