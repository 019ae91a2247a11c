"""The emulated Dime.Scheduler API (routes at the root, ``X-API-KEY`` checked by middleware)."""

from __future__ import annotations

import re
from datetime import datetime

from aiohttp import web

from .emulator import EMULATOR
from .imports import envelope
from .jsonhttp import BadRequest, error, read_json
from .payloads import View, category_json, incoming, resource_json, time_marker_json
from .values import ValueProblem, parse_datetime
from .webhooks import EVENT_TYPES, HookProblem

routes = web.RouteTableDef()

# A '+' of an offset that arrived unencoded in a query string reads as a space: put it back.
_SPACED_OFFSET = re.compile(r"^(.*\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?) (\d{2}:?\d{2})$")


@routes.post("/import")
async def import_(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    try:
        payload = await read_json(request)
    except BadRequest as exc:
        status, body = envelope(emulator.config, 400, str(exc))
        return web.json_response(body, status=status)
    result = emulator.apply_import(payload)
    return web.json_response(result.body, status=result.status)


@routes.get("/resource")
async def resources(request: web.Request) -> web.Response:
    store = request.app[EMULATOR].store
    return web.json_response([resource_json(r) for r in sorted(store.resources.values(), key=lambda r: r["id"])])


def _query_date(request: web.Request, name: str, accept_naive: bool) -> datetime:
    values = request.query.getall(name, [])
    if not values or not values[0].strip():
        raise BadRequest(f"query parameter {name!r} is required (ISO 8601 UTC, e.g. 2026-01-05T00:00:00Z)")
    text = values[0].strip()
    spaced = _SPACED_OFFSET.match(text)
    if spaced and "T" in text:
        text = f"{spaced.group(1)}+{spaced.group(2)}"
    try:
        return parse_datetime(text, accept_naive=accept_naive)
    except ValueProblem as exc:
        raise BadRequest(f"query parameter {name!r}: {exc}") from None


@routes.get("/appointment")
async def appointments(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    start = _query_date(request, "startDate", emulator.config.accept_naive_dates)
    end = _query_date(request, "endDate", emulator.config.accept_naive_dates)
    if end < start:
        raise BadRequest("'endDate' is before 'startDate'")
    wanted = [r for r in request.query.getall("resources", []) if r.strip()] or None
    found = emulator.store.appointments_in_window(start, end, wanted)
    view = View.of(emulator.config)
    return web.json_response([incoming(emulator.store, a, view) for a in found])


@routes.get("/appointment/{id}")
async def appointment(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    ref = request.match_info["id"].strip()
    if emulator.config.appointment_lookup == "id" and not ref.isdigit():
        # An int64 route parameter: anything else does not match the route at all.
        return error(404, f"no appointment with id {ref!r} (the id is the numeric appointment id)")
    found = emulator.store.appointment(ref)
    if found is None and emulator.config.appointment_missing_answer == "empty_200":
        return web.Response(status=200)
    if found is None:
        return error(404, f"no appointment with id {ref!r}")
    return web.json_response(incoming(emulator.store, found, View.of(emulator.config)))


@routes.get("/category")
@routes.get("/categories")
async def categories(request: web.Request) -> web.Response:
    store = request.app[EMULATOR].store
    return web.json_response([category_json(c) for c in sorted(store.categories.values(), key=lambda c: c.id)])


@routes.get("/timeMarker")
async def time_markers(request: web.Request) -> web.Response:
    store = request.app[EMULATOR].store
    return web.json_response([time_marker_json(m) for m in sorted(store.time_markers.values(), key=lambda m: m.id)])


@routes.get("/webhooks")
async def list_webhooks(request: web.Request) -> web.Response:
    return web.json_response([h.as_json() for h in request.app[EMULATOR].hooks.hooks.values()])


def _subscribe_handler(event: str) -> web.RouteDef:
    async def subscribe(request: web.Request) -> web.Response:
        emulator = request.app[EMULATOR]
        body = await read_json(request)
        try:
            hook = emulator.hooks.subscribe(event, body, emulator.config.max_webhooks)
        except HookProblem as exc:
            return error(exc.status, str(exc))
        # Power Platform webhook triggers unsubscribe through the Location of the 201.
        location = {"Location": f"/webhooks/{event}/{hook.id}"}
        if emulator.config.webhook_created_answer == "location":
            return web.Response(status=201, headers=location)
        return web.json_response(hook.as_json(), status=201, headers=location)

    return web.post(f"/webhooks/{event}", subscribe)


def _unsubscribe_handler(event: str) -> web.RouteDef:
    async def unsubscribe(request: web.Request) -> web.Response:
        hook_id = request.match_info["id"]
        if not request.app[EMULATOR].hooks.unsubscribe(event, hook_id):
            return error(404, f"no {event} webhook with id {hook_id!r}")
        return web.json_response({"id": hook_id, "deleted": True})

    return web.delete(f"/webhooks/{event}/{{id}}", unsubscribe)


WEBHOOK_ROUTES = [_subscribe_handler(e) for e in EVENT_TYPES] + [_unsubscribe_handler(e) for e in EVENT_TYPES]
