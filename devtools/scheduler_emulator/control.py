"""The control plane under ``/_emulator`` (no API key): stats, reset, seed, planner, faults, logs.

Contract (design.md, "Local stack"): ``GET /_emulator/stats`` answers
``{"requests": {"<METHOD> <route template>": count}}`` (plus extra keys), ``POST /_emulator/reset``
clears state and counters, and the planner routes create / patch / delete appointments in the
``appointment-incoming`` shape, each firing the webhooks a planner's action fires.
"""

from __future__ import annotations

from aiohttp import web

from .emulator import EMULATOR, Emulator
from .faults import FaultProblem
from .jsonhttp import BadRequest, read_json
from .model import Appointment
from .payloads import full
from .planner import PlannerProblem, create_appointment, patch_appointment
from .seed import SeedProblem, seed

routes = web.RouteTableDef()
PREFIX = "/_emulator"


@routes.get(f"{PREFIX}/health")
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok", "service": "dimescheduler-emulator"})


@routes.get(f"{PREFIX}/stats")
async def stats(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR].stats())


@routes.post(f"{PREFIX}/stats/reset")
async def stats_reset(request: web.Request) -> web.Response:
    request.app[EMULATOR].reset_counters()
    return web.json_response({"reset": "counters"})


@routes.post(f"{PREFIX}/reset")
async def reset(request: web.Request) -> web.Response:
    await request.app[EMULATOR].reset()
    return web.json_response({"reset": "all"})


@routes.get(f"{PREFIX}/config")
async def get_config(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR].config.as_json())


@routes.patch(f"{PREFIX}/config")
async def patch_config(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object of knob: value")
    try:
        emulator.config = emulator.config.with_overrides(body)
    except ValueError as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response(emulator.config.as_json())


@routes.post(f"{PREFIX}/seed")
async def seed_(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    body = await read_json(request)
    try:
        summary = seed(emulator.store, emulator.config, body)
    except SeedProblem as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response(summary)


# --- the planner -----------------------------------------------------------------------------------
def _found(emulator: Emulator, ref: str) -> Appointment:
    appt = emulator.store.appointment(ref)
    if appt is None:
        raise web.HTTPNotFound(text=f"no appointment {ref!r}")
    return appt


@routes.post(f"{PREFIX}/planner/appointments")
async def planner_create(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    body = await read_json(request)
    try:
        with emulator.store.transaction() as work:
            appt = create_appointment(work, body, emulator.config.planner_user)
    except PlannerProblem as exc:
        raise BadRequest(str(exc)) from None
    emulator.fire("AppointmentCreated", appt)
    return web.json_response(full(emulator.store, appt), status=201)


@routes.patch(f"{PREFIX}/planner/appointments/{{id}}")
async def planner_patch(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    guid = _found(emulator, request.match_info["id"]).guid
    body = await read_json(request)
    try:
        with emulator.store.transaction() as work:
            appt = patch_appointment(work, work.appointments[guid], body, emulator.config.planner_user)
    except PlannerProblem as exc:
        raise BadRequest(str(exc)) from None
    emulator.fire("AppointmentUpdated", appt)
    return web.json_response(full(emulator.store, appt))


@routes.delete(f"{PREFIX}/planner/appointments/{{id}}")
async def planner_delete(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    appt = _found(emulator, request.match_info["id"])
    emulator.fire("AppointmentDeleted", appt)  # rendered now: the payload is its last state
    emulator.store.delete_appointment(appt.guid)
    return web.Response(status=204)


# --- inspection --------------------------------------------------------------------------------------
@routes.get(f"{PREFIX}/appointments")
async def all_appointments(request: web.Request) -> web.Response:
    store = request.app[EMULATOR].store
    ordered = sorted(store.appointments.values(), key=lambda a: (a.start, a.id))
    return web.json_response([full(store, a) for a in ordered])


@routes.get(f"{PREFIX}/appointments/{{id}}")
async def one_appointment(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    return web.json_response(full(emulator.store, _found(emulator, request.match_info["id"])))


@routes.get(f"{PREFIX}/webhooks")
async def subscriptions(request: web.Request) -> web.Response:
    return web.json_response([h.as_json() for h in request.app[EMULATOR].hooks.hooks.values()])


@routes.get(f"{PREFIX}/webhooks/deliveries")
async def deliveries(request: web.Request) -> web.Response:
    return web.json_response(list(request.app[EMULATOR].dispatcher.log))


@routes.delete(f"{PREFIX}/webhooks/deliveries")
async def clear_deliveries(request: web.Request) -> web.Response:
    request.app[EMULATOR].dispatcher.log.clear()
    return web.Response(status=204)


# --- faults -------------------------------------------------------------------------------------------
@routes.get(f"{PREFIX}/faults")
async def list_faults(request: web.Request) -> web.Response:
    return web.json_response([f.as_json() for f in request.app[EMULATOR].faults.faults])


@routes.post(f"{PREFIX}/faults")
async def add_fault(request: web.Request) -> web.Response:
    emulator = request.app[EMULATOR]
    body = await read_json(request)
    try:
        fault = emulator.faults.add(body)
    except FaultProblem as exc:
        raise BadRequest(str(exc)) from None
    return web.json_response(fault.as_json(), status=201)


@routes.delete(f"{PREFIX}/faults")
async def clear_faults(request: web.Request) -> web.Response:
    request.app[EMULATOR].faults.clear()
    return web.Response(status=204)


@routes.get(f"{PREFIX}/webhooks/faults")
async def webhook_faults(request: web.Request) -> web.Response:
    return web.json_response(request.app[EMULATOR].dispatcher.faults.as_json())


@routes.post(f"{PREFIX}/webhooks/faults")
async def set_webhook_faults(request: web.Request) -> web.Response:
    dispatcher = request.app[EMULATOR].dispatcher
    body = await read_json(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object: drop, duplicate, delayMs, reorder")
    names = {"drop": "drop", "duplicate": "duplicate", "delayMs": "delay_ms", "reorder": "reorder"}
    unknown = set(body) - set(names)
    if unknown:
        raise BadRequest(f"unknown key(s) {sorted(unknown)}; use drop, duplicate, delayMs, reorder")
    for key, value in body.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise BadRequest(f"'{key}' must be a non-negative integer")
    for key, value in body.items():
        setattr(dispatcher.faults, names[key], value)
    return web.json_response(dispatcher.faults.as_json())


@routes.delete(f"{PREFIX}/webhooks/faults")
async def clear_webhook_faults(request: web.Request) -> web.Response:
    dispatcher = request.app[EMULATOR].dispatcher
    dispatcher.faults.drop = dispatcher.faults.duplicate = dispatcher.faults.delay_ms = dispatcher.faults.reorder = 0
    dispatcher.release_held()
    return web.Response(status=204)
