"""The dev host: loads the function app once and serves HTTP, queue, timer and admin triggers.

Start-up order mirrors ``func start``: app settings into the environment, ``host.json``, import the
app, ``get_functions()`` once, resolve ``%NAME%`` expressions and connections (a problem here is a
start-up error, not a runtime surprise), then listen.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Mapping, Sequence
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from devtools.serve import ServerThread

from . import settings as cfg
from .admin import Admin
from .easyauth import DEV_HOST_SETTINGS, EASY_AUTH, load_easy_auth
from .errors import DevHostError
from .http import DEFAULT_MIDDLEWARES, HttpDispatcher, build_routes
from .invocation import Invoker, thread_pool
from .loader import FunctionSpec, LoadedApp, load_app
from .queues import QueueClients, QueueListener, QueueOutputs, resolve_connection
from .timers import Schedule, TimerRunner

log = logging.getLogger("devhost")


class DevHost:
    """Runs a Python v2 function app in-process, on a background thread.

    ``settings`` are app settings that win over the environment and ``local.settings.json``
    (``settings_file``, default ``<root>/local.settings.json``, whose values yield to variables already
    set in the environment). Every environment change is undone by :meth:`stop`. ``timers=False``
    leaves timers to manual (admin) runs only.
    """

    def __init__(
        self,
        app_ref: str = "function_app:app",
        root: Path = Path("."),
        settings: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        settings_file: Path | None = None,
        timers: bool = True,
        middlewares: Sequence[Middleware] | None = None,
    ) -> None:
        self.app_ref = app_ref
        self.root = Path(root).resolve()
        self.settings = dict(settings or {})
        self.host = host
        self.port = port
        self.settings_file = settings_file if settings_file is not None else self.root / "local.settings.json"
        self.timers_enabled = timers
        self.middlewares = list(DEFAULT_MIDDLEWARES) + list(middlewares or [])
        self.functions: list[FunctionSpec] = []
        self._env = cfg.Environment()
        self._loaded: LoadedApp | None = None
        self._server: ServerThread | None = None
        self._pool = thread_pool()
        self._clients = QueueClients()
        self._listeners: list[QueueListener] = []
        self._timers: dict[str, TimerRunner] = {}
        self._background: set[asyncio.Task[None]] = set()
        self._disabled: set[str] = set()
        self._errors: dict[str, str] = {}  # function name -> why the host put it in an error state
        self._routes: dict[str, str] = {}
        self._prefix = "api"

    @property
    def url(self) -> str:
        """Base URL without a trailing slash, e.g. ``http://127.0.0.1:7071``."""
        if self._server is None:
            raise RuntimeError("the dev host is not running")
        return self._server.url

    @property
    def module(self) -> ModuleType:
        """The imported app module (a private copy when another host runs the same module)."""
        if self._loaded is None:
            raise RuntimeError("the dev host is not running")
        return self._loaded.module

    def start(self) -> DevHost:
        try:
            local = cfg.load_local_settings(self.settings_file)
            self._env.apply({**DEV_HOST_SETTINGS, **local.values}, self.settings)
            config = cfg.load_host_json(self.root)
            self._loaded = load_app(self.app_ref, self.root, config.functions)
            self.functions = self._loaded.functions
            app = self._build(config)
            self._server = ServerThread(app, self.host, self.port)
            self._server.start()
        except BaseException:
            self.stop()  # also stops a server thread whose port could not be bound
            raise
        self._announce(config.route_prefix)
        return self

    def stop(self) -> None:
        try:
            if self._server is not None:
                self._server.stop()  # runs on_cleanup: listeners and timers drain there
        finally:
            self._server = None
            self._cleanup()

    def _cleanup(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._env.restore()
        if self._loaded is not None:
            self._loaded.unload()

    def __enter__(self) -> DevHost:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    # -- assembly ---------------------------------------------------------------------------------

    def _build(self, config: cfg.HostConfig) -> web.Application:
        self._disabled = {f.name for f in self.functions if cfg.is_disabled(f.name)}
        active = [f for f in self.functions if f.name not in self._disabled]
        outputs = QueueOutputs(self._clients, config.queues)
        invoker = Invoker(self.root, self._pool, outputs.send)
        for spec in self.functions:
            for binding in spec.outputs:
                if binding.type == "queue":
                    name = cfg.resolve(binding.raw["queueName"], f"function '{spec.name}' output '{binding.name}'").lower()
                    outputs.prepare(binding, name)
        for spec in active:
            if spec.trigger_type == "queueTrigger":
                queue_name = cfg.resolve(spec.trigger.queue_name, f"function '{spec.name}' queue name").lower()
                connection = resolve_connection(spec.trigger.connection)
                self._listeners.append(QueueListener(spec, queue_name, connection, config.queues, invoker, self._clients))
        for spec in self.functions:  # disabled timers can still be run from the admin API
            if spec.trigger_type == "timerTrigger":
                expression = cfg.resolve(spec.trigger.schedule, f"function '{spec.name}' schedule")
                self._timers[spec.name] = TimerRunner(spec, Schedule(expression, spec.name), invoker)
        routes = build_routes(active, cfg.resolve, self._errors)
        self._routes = {r.spec.name: r.template.template for r in routes}
        self._prefix = config.route_prefix

        max_body = cfg.max_request_body_size()
        app = web.Application(middlewares=self.middlewares, client_max_size=max_body)
        app[EASY_AUTH] = load_easy_auth(self.root)  # what stands in front of the app (easyauth.py)
        admin = Admin(self.functions, self._timers, invoker, self._spawn, self._invoke_url, self._disabled, self._errors)
        admin.add_routes(app)
        app.router.add_route(
            "*",
            "/{tail:.*}",
            HttpDispatcher(routes, config.route_prefix, invoker, cfg.function_key(), cfg.master_key(), max_body).handle,
        )
        app.on_startup.append(self._on_startup)
        app.on_cleanup.append(self._on_cleanup)
        return app

    async def _on_startup(self, app: web.Application) -> None:
        for listener in self._listeners:
            await listener.start()
        for name, runner in self._timers.items():
            runner.start(scheduled=self.timers_enabled and name not in self._disabled)

    async def _on_cleanup(self, app: web.Application) -> None:
        await asyncio.gather(*(listener.stop() for listener in self._listeners))
        await asyncio.gather(*(runner.stop() for runner in self._timers.values()))
        if self._background:
            await asyncio.wait(self._background, timeout=10)
        await self._clients.close()

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _invoke_url(self, spec: FunctionSpec) -> str | None:
        route = self._routes.get(spec.name)
        if route is None:
            return None
        return "/".join(part for part in (self.url, self._prefix, route) if part)

    def _announce(self, prefix: str) -> None:
        log.info("Dev host listening on %s (functions: %d)", self.url, len(self.functions))
        for spec in self.functions:
            where = self._invoke_url(spec) or spec.trigger_type
            state = " (disabled)" if spec.name in self._disabled else ""
            if spec.name in self._errors:
                state = f" (error: {self._errors[spec.name]})"
            log.info("  %s: %s%s", spec.name, where, state)


__all__ = ["DevHost", "DevHostError"]
