"""The host's admin API, as ``func start`` exposes it locally (no key needed on loopback).

``POST /admin/functions/{name}`` with ``{"input": "..."}`` runs a timer function now (past_due False)
or a queue function with the input as the message body (dequeue count 1) and answers 202;
``GET /admin/functions`` lists the functions; ``GET /admin/host/status`` reports the host state.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from .invocation import Invoker
from .loader import FunctionSpec
from .queues import manual_message
from .timers import TimerRunner

log = logging.getLogger("devhost")
VERSION = "4.0.0-devhost"


class Admin:
    def __init__(
        self,
        functions: Sequence[FunctionSpec],
        timers: dict[str, TimerRunner],
        invoker: Invoker,
        spawn: Callable[[Any], None],
        invoke_url: Callable[[FunctionSpec], str | None],
        disabled: set[str],
        errors: dict[str, str],
    ) -> None:
        self.functions = {f.name.lower(): f for f in functions}  # function names are case-insensitive
        self.timers = timers
        self.invoker = invoker
        self.spawn = spawn
        self.invoke_url = invoke_url
        self.disabled = disabled
        self.errors = errors
        self.started = time.monotonic()
        self.instance_id = uuid.uuid4().hex

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/admin/functions/{name}", self.run)
        app.router.add_get("/admin/functions", self.list)
        app.router.add_get("/admin/host/status", self.status)

    async def run(self, request: web.Request) -> web.Response:
        spec = self.functions.get(request.match_info["name"].lower())
        if spec is None:
            return web.json_response({"error": "function not found"}, status=404)
        if spec.trigger_type == "httpTrigger":
            return web.json_response({"error": "HTTP functions are called over HTTP, not the admin API"}, status=400)
        try:
            payload = json.loads(await request.read() or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return web.json_response({"error": 'the body must be JSON like {"input": "..."}'}, status=400)
        if not isinstance(payload, dict) or not isinstance(payload.get("input", ""), str):
            return web.json_response({"error": 'the body must be JSON like {"input": "..."}'}, status=400)
        if spec.trigger_type == "timerTrigger":
            self.timers[spec.name].run_now(past_due=False, reason="admin")
        else:
            self.spawn(self._run_queue(spec, payload.get("input", "")))
        return web.Response(status=202)

    async def _run_queue(self, spec: FunctionSpec, body: str) -> None:
        message = manual_message(body)
        # a failure is logged by the invoker; a manual run has no message to retry or poison
        with contextlib.suppress(Exception):
            await self.invoker.invoke(spec, message, detail=f"Reason='admin', MessageId={message.id}, DequeueCount=1")

    async def list(self, request: web.Request) -> web.Response:
        return web.json_response(
            [
                {
                    "name": f.name,
                    "trigger": f.trigger_type,
                    "invoke_url_template": self.invoke_url(f),
                    "config": {"bindings": f.bindings},
                    "isDisabled": f.name in self.disabled,
                    "error": self.errors.get(f.name),
                }
                for f in self.functions.values()
            ]
        )

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "id": self.instance_id,
                "state": "Running",
                "version": VERSION,
                "processUptime": int((time.monotonic() - self.started) * 1000),
                "functions": len(self.functions),
            }
        )
