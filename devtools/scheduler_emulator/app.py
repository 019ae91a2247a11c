"""``create_app``: the aiohttp application, its middlewares and lifecycle.

Middlewares, outermost first:
- ``errors``: every failure becomes a JSON answer (the server never crashes on bad input).
- ``api_gate``: for API routes (everything outside ``/_emulator``), count the request under its
  route template, apply an injected fault, then check ``X-API-KEY`` (401 when missing or wrong).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from . import api, control
from .config import SchedulerEmulatorConfig
from .emulator import EMULATOR, Emulator
from .imports import envelope
from .jsonhttp import BadRequest, error

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except BadRequest as exc:
        return error(400, str(exc))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        text = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return error(exc.status, text or exc.reason, headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # a bug in the emulator must still answer, not kill the server
        log.exception("emulator failed on %s %s", request.method, request.path)
        return error(500, f"the emulator failed: {type(exc).__name__}: {exc}")


def route_template(request: web.Request) -> str | None:
    """The matched route's template (``/appointment/{id}``), or None for an unknown path."""
    if request.match_info.http_exception is not None:
        return None
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else None


@web.middleware
async def api_gate(request: web.Request, handler: Handler) -> web.StreamResponse:
    if request.path == control.PREFIX or request.path.startswith(control.PREFIX + "/"):
        return await handler(request)
    emulator = request.app[EMULATOR]
    route = route_template(request)
    if route is None:
        emulator.unmatched[f"{request.method} {request.path}"] += 1
    else:
        emulator.requests[f"{request.method} {route}"] += 1
    fault = emulator.faults.take(request.method, route or request.path)
    if fault is not None:
        if fault.latency_ms:
            await asyncio.sleep(fault.latency_ms / 1000)
        if fault.status is not None:
            headers = {}
            if fault.retry_after is not None:
                ra = fault.retry_after
                headers["Retry-After"] = str(int(ra)) if float(ra).is_integer() else str(ra)
            if fault.body is not None:
                return web.Response(status=fault.status, body=fault.body.encode(), headers=headers,
                                    content_type="application/json")
            if fault.envelope:
                status, body = envelope(emulator.config, fault.status, f"injected fault #{fault.id}")
                return web.json_response(body, status=status, headers=headers)
            return error(fault.status, f"injected fault #{fault.id}", headers=headers)
    if request.headers.get("X-API-KEY") not in emulator.config.api_keys:
        return error(401, "missing or invalid X-API-KEY header")
    return await handler(request)


def create_app(config: SchedulerEmulatorConfig | None = None) -> web.Application:
    """The emulator as an aiohttp application (serve it with ``ServerThread`` or ``web.run_app``)."""
    app = web.Application(middlewares=[errors, api_gate], client_max_size=16 * 1024 * 1024)
    app[EMULATOR] = Emulator(config or SchedulerEmulatorConfig())
    app.add_routes(api.routes)
    app.add_routes(api.WEBHOOK_ROUTES)
    app.add_routes(control.routes)
    app.cleanup_ctx.append(_lifecycle)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    yield
    await app[EMULATOR].dispatcher.close()  # cancel pending deliveries, close the client session
