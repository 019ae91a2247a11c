"""HTTP triggers: routing under the route prefix, methods, auth levels and keys, request/response.

Auth levels are enforced (unlike ``func start``, which ignores them locally) so that a missing key is
caught before Azure: ``function`` accepts the function key or the master key (header
``x-functions-key`` or query ``code``), ``admin`` only the master key. Keys come from the settings
``DEVHOST_FUNCTION_KEY`` (default ``dev-function-key``) and ``DEVHOST_MASTER_KEY`` (default
``dev-master-key``). Extra aiohttp middlewares (e.g. a dev sign-in that sets Easy Auth's
``X-MS-CLIENT-PRINCIPAL``) go into :data:`DEFAULT_MIDDLEWARES` or ``DevHost(middlewares=...)``.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from aiohttp import web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict

from .easyauth import easy_auth_middleware
from .invocation import Invoker
from .loader import FunctionSpec
from .routes import RouteTemplate

log = logging.getLogger("devhost")

# The one place to plug request middlewares in (applied to functions and admin routes alike):
# the dev-only stand-in for App Service Authentication (see easyauth.py). It sits in front of
# everything, as Easy Auth does in Azure; which paths need a session comes from the script root's
# infra/app/anonymous-paths.json (the list auth.bicep loads), put on the app by the dev host.
DEFAULT_MIDDLEWARES: list[Middleware] = [easy_auth_middleware()]

_HOME = "<html><body><h1>Your Functions app is up and running (devhost)</h1></body></html>"


@dataclass
class HttpRoute:
    spec: FunctionSpec
    template: RouteTemplate
    methods: frozenset[str] | None  # None: every method
    auth_level: str  # anonymous | function | admin


def _enum_value(value: Any) -> str:
    return str(getattr(value, "value", value))


# The real host refuses function routes in its own route space, whatever the route prefix: the function
# is put in an error state ("The specified route conflicts with one or more built in routes.") and its
# route answers 404 while the other functions run. The dev host does the same, loudly.
RESERVED_ROUTE_PREFIXES = ("admin", "runtime")
RESERVED_ROUTE_ERROR = "The specified route conflicts with one or more built in routes."


def build_routes(functions: Sequence[FunctionSpec], resolve: Any, errors: dict[str, str] | None = None) -> list[HttpRoute]:
    """Compile the HTTP functions' routes, most specific first; functions in error go to ``errors``."""
    routes = []
    for spec in functions:
        if spec.trigger_type != "httpTrigger":
            continue
        trigger = spec.trigger
        route = resolve(trigger.route if trigger.route is not None else spec.name, f"function '{spec.name}' route")
        if route.strip("/").lower().startswith(RESERVED_ROUTE_PREFIXES):
            log.error("Function '%s' (route '%s') is in error: %s", spec.name, route, RESERVED_ROUTE_ERROR)
            if errors is not None:
                errors[spec.name] = RESERVED_ROUTE_ERROR
            continue
        methods = frozenset(_enum_value(m).upper() for m in trigger.methods) if trigger.methods else None
        level = _enum_value(trigger.auth_level or "function").lower()
        routes.append(HttpRoute(spec, RouteTemplate(route), methods, level))
    routes.sort(key=lambda r: r.template.sort_key())
    return routes


class HttpDispatcher:
    """The catch-all aiohttp handler that runs HTTP-triggered functions."""

    def __init__(
        self,
        routes: list[HttpRoute],
        route_prefix: str,
        invoker: Invoker,
        function_key: str,
        master_key: str,
        max_body: int,
    ) -> None:
        self.max_body = max_body
        self.routes = routes
        self.prefix = f"/{route_prefix}" if route_prefix else ""
        self.invoker = invoker
        self.function_key = function_key
        self.master_key = master_key

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        if self.prefix:
            if path.lower() != self.prefix.lower() and not path.lower().startswith(self.prefix.lower() + "/"):
                return self._not_found(request)
            path = path[len(self.prefix) :]
        path = path or "/"
        method_mismatch = False
        for route in self.routes:
            params = route.template.match(path)
            if params is None:
                continue
            if route.methods is not None and request.method.upper() not in route.methods:
                method_mismatch = True
                continue
            return await self._run(route, params, request)
        if method_mismatch:
            return web.Response(status=405)
        return self._not_found(request)

    @staticmethod
    def _not_found(request: web.Request) -> web.StreamResponse:
        if request.path == "/" and request.method == "GET":
            return web.Response(text=_HOME, content_type="text/html")
        return web.Response(status=404)

    def _authorized(self, route: HttpRoute, request: web.Request) -> bool:
        if route.auth_level == "anonymous":
            return True
        key = request.headers.get("x-functions-key") or request.query.get("code") or ""
        accepted = [self.master_key] if route.auth_level == "admin" else [self.function_key, self.master_key]
        return any(hmac.compare_digest(key.encode(), k.encode()) for k in accepted)

    async def _run(self, route: HttpRoute, params: dict[str, str], request: web.Request) -> web.StreamResponse:
        if not self._authorized(route, request):
            return web.Response(status=401)
        if request.content_length is not None and request.content_length > self.max_body:
            return web.Response(status=413)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return web.Response(status=413)
        headers: dict[str, str] = {}
        for name, value in request.headers.items():  # repeated headers are joined with ',' like the host's
            key = name.lower()
            headers[key] = f"{headers[key]},{value}" if key in headers else value
        req = func.HttpRequest(
            request.method,
            str(request.url),
            headers=headers,
            params={k: ",".join(request.query.getall(k)) for k in request.query},  # repeated keys: 'a,b'
            route_params=params,
            body=body,
        )
        try:
            result = await self.invoker.invoke(route.spec, req, detail=f"{request.method} {request.path}")
        except Exception:  # logged with the traceback by the invoker; the host keeps serving
            return web.Response(status=500)
        try:
            return to_aiohttp(result)
        except Exception:
            log.exception("Function '%s' returned a value the HTTP binding cannot convert", route.spec.name)
            return web.Response(status=500)


def to_aiohttp(result: Any) -> web.Response:
    """Convert the function's return value as the worker's HTTP output converter does."""
    if result is None:
        return web.Response(status=204)
    if isinstance(result, str | bytes):
        body = result.encode() if isinstance(result, str) else result
        return web.Response(body=body, headers={"Content-Type": "text/plain; charset=utf-8"})
    if not isinstance(result, func.HttpResponse):
        raise TypeError(f"an HTTP function returned {type(result).__name__}, expected func.HttpResponse")
    headers: CIMultiDict[str] = CIMultiDict()
    for name, value in result.headers.items():  # keeps repeated headers such as Set-Cookie
        headers.add(name, value)
    if "content-type" not in headers:
        mimetype = result.mimetype
        headers["Content-Type"] = f"{mimetype}; charset={result.charset}" if mimetype.startswith("text/") else mimetype
    return web.Response(status=result.status_code, body=result.get_body(), headers=headers)
