"""One pipeline for every Graph request, outer or inside a ``$batch``:
count → authenticate → route → throttle → inject faults → handle → Graph-shaped errors."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from . import batch, routes
from .errors import GraphError, error_body
from .faults import fault_error
from .messages import GraphRequest, GraphResponse

if TYPE_CHECKING:
    from .core import Emulator

log = logging.getLogger("graph_emulator")
_UNAUTHORIZED = {"WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"'}


def _authenticate(emu: Emulator, req: GraphRequest) -> None:
    header = req.headers.get("Authorization", "").strip()
    scheme, _, token = header.partition(" ")
    if not header:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token is empty.", dict(_UNAUTHORIZED))
    if scheme.lower() != "bearer" or not token.strip():
        raise GraphError(401, "InvalidAuthenticationToken", "IDX14100: JWT is not well formed.", dict(_UNAUTHORIZED))
    if emu.config.token is not None and token.strip() != emu.config.token:
        raise GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.",
                         dict(_UNAUTHORIZED))


def error_response(emu: Emulator, req: GraphRequest, exc: GraphError) -> GraphResponse:
    client_id = req.headers.get("client-request-id", req.request_id)
    date = emu.now().strftime("%Y-%m-%dT%H:%M:%S")
    body = error_body(exc.code, exc.message, date, req.request_id, client_id)
    return GraphResponse(exc.status, body, dict(exc.headers))


async def execute(emu: Emulator, req: GraphRequest) -> GraphResponse:
    route, params, path_known = routes.match(req.method, req.segments)
    emu.stats.requests[f"{req.method} {route.template if route else '(unmatched)'}"] += 1
    try:
        if not req.inner:
            _authenticate(emu, req)
        if route is None:
            if path_known:
                raise GraphError(405, "Request_BadRequest", f"The HTTP method '{req.method}' is not allowed here.")
            raise GraphError(400, "BadRequest", f"Resource not found for the segment '{'/'.join(req.segments)}'.")
        if req.inner and route.handler is batch.run_batch:
            raise GraphError(400, "BadRequest", "A $batch request can't contain another $batch.")
        req.params = params
        response = await _admitted(emu, req, route)
    except GraphError as exc:
        response = error_response(emu, req, exc)
    except Exception as exc:  # a bug must never take the emulator down: answer like Graph would
        log.exception("unhandled error for %s %s", req.method, req.path)
        response = error_response(emu, req, GraphError(500, "InternalServerError", f"{type(exc).__name__}: {exc}"))
    if response.status == 429:
        emu.stats.throttled += 1
    response.headers["request-id"] = req.request_id
    response.headers["client-request-id"] = req.headers.get("client-request-id", req.request_id)
    return response


async def _admitted(emu: Emulator, req: GraphRequest, route: routes.Route) -> GraphResponse:
    """Throttle, then inject faults, then run the handler; the mailbox slot is held throughout."""
    mailbox: str | None = None
    names: set[str] = set()
    if route.template.startswith("/v1.0/users/{id}"):
        user = emu.store.find_user(req.params[0])
        names = {user.id.lower(), user.user_principal_name.lower()} if user else {req.params[0].lower()}
        if routes.is_mailbox_route(route):
            mailbox = user.id.lower() if user else req.params[0].lower()
    if route.template.startswith("/v1.0/subscriptions") and req.method in ("POST", "PATCH", "DELETE"):
        emu.throttle.admit_subscription_write()
    if mailbox is not None:
        emu.throttle.admit(mailbox)
    try:
        rule = emu.faults.take(req.method, route.template, names)
        if rule is not None:
            emu.stats.faults_injected += 1
            if rule.latency_ms:
                await asyncio.sleep(rule.latency_ms / 1000)
            if rule.status is not None:
                raise fault_error(rule)
        return await route.handler(emu, req)
    finally:
        if mailbox is not None:
            emu.throttle.release(mailbox)
