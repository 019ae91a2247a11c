"""The aiohttp application: ``/v1.0`` (Graph) and ``/_emulator`` (control plane)."""

from __future__ import annotations

import json
from urllib.parse import unquote

from aiohttp import web
from multidict import CIMultiDict, MultiDict

from . import control
from .config import GraphEmulatorConfig
from .core import Emulator
from .messages import GraphRequest, GraphResponse

JSON_TYPE = "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8"


def _to_web(response: GraphResponse) -> web.Response:
    headers = dict(response.headers)
    if response.body is None:
        return web.Response(status=response.status, headers=headers)
    headers["Content-Type"] = JSON_TYPE
    return web.Response(status=response.status, body=json.dumps(response.body).encode(), headers=headers)


async def _graph(request: web.Request) -> web.Response:
    emu = request.app[control.EMULATOR]
    emu.stats.round_trips += 1
    raw = request.rel_url.raw_path[len("/v1.0"):].strip("/")
    segments = [unquote(s) for s in raw.split("/")] if raw else []
    body = await request.read() if request.body_exists else None
    graph_request = GraphRequest(
        method=request.method.upper(),
        segments=segments,
        query=MultiDict(request.rel_url.query),
        headers=CIMultiDict(request.headers),
        body=body,
        base_url=f"{request.scheme}://{request.host}",
    )
    return _to_web(await emu.execute(graph_request))


async def _close(app: web.Application) -> None:
    emu = app[control.EMULATOR]
    emu.close()
    if emu.session is not None:
        await emu.session.close()


def create_app(config: GraphEmulatorConfig | None = None) -> web.Application:
    """A fresh emulator (its own state) as an aiohttp application."""
    emu = Emulator(config or GraphEmulatorConfig())
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[control.EMULATOR] = emu
    app.router.add_route("*", "/v1.0", _graph)
    app.router.add_route("*", "/v1.0/{tail:.*}", _graph)
    control.register(app.router)
    app.on_cleanup.append(_close)
    return app
