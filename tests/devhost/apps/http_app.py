"""Probe app for HTTP triggers: route templates, constraints, methods, auth levels, errors, outputs."""

from __future__ import annotations

import json
import logging
import os
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def _json(data: object, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(data), status_code=status, mimetype="application/json")


@app.route(route="health", methods=["GET"])
def health(req: func.HttpRequest) -> func.HttpResponse:
    logging.getLogger("probe.http").info("probe health called")
    return _json({"status": "ok"})


@app.route(route="items/{id:int}", methods=["GET"])
def item_by_id(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "item_by_id", "route": dict(req.route_params)})


@app.route(route="things/{id:guid}")
def thing(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "thing", "route": dict(req.route_params)})


@app.route(route="words/{x:alpha}/{n:int?}")
def word(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "word", "route": dict(req.route_params)})


@app.route(route="users/{name}")  # declared first on purpose: the literal route must still win
def user_by_name(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "user_by_name", "route": dict(req.route_params)})


@app.route(route="users/me")
def user_me(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "user_me"})


@app.route(route="opt/{name?}")
def optional(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "optional", "route": dict(req.route_params)})


@app.route(route="files/{*path}")
def files(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "files", "route": dict(req.route_params)})


@app.route(route="env/%ECHO_ROUTE%")
def env_route(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "env_route", "setting": os.environ.get("PROBE_SETTING")})


@app.route(route="only-post", methods=[func.HttpMethod.POST])
def only_post(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "only_post"})


@app.route(route="secured", auth_level=func.AuthLevel.FUNCTION)
def secured(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "secured"})


@app.route(route="master-only", auth_level=func.AuthLevel.ADMIN)
def admin_only(req: func.HttpRequest) -> func.HttpResponse:
    return _json({"fn": "admin_only"})


@app.route(route="echo", methods=["POST", "PUT"])
async def echo(req: func.HttpRequest) -> func.HttpResponse:
    body = {
        "method": req.method,
        "url": req.url,
        "params": dict(req.params),
        "header": req.headers.get("X-Probe"),
        "principal": req.headers.get("X-MS-CLIENT-PRINCIPAL-NAME"),
        "body": req.get_body().decode(),
        "thread": threading.current_thread().name,
    }
    resp = func.HttpResponse(json.dumps(body), status_code=201, mimetype="application/json", headers={"X-Out": "1"})
    resp.headers.add_header("Set-Cookie", "a=1")
    resp.headers.add_header("Set-Cookie", "b=2")
    return resp


@app.route(route="text")
def text(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("plain", status_code=202, charset="utf-8")


@app.route(route="sync-context")
def sync_context(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return _json(
        {
            "function_name": context.function_name,
            "invocation_id": context.invocation_id,
            "thread": threading.current_thread().name,
        }
    )


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise RuntimeError("probe failure")


@app.route(route="administration/thing")
def reserved(req: func.HttpRequest) -> func.HttpResponse:
    """The real host puts this function in an error state: routes may not start with admin/runtime."""
    return _json({"fn": "reserved"})


@app.route(route="enqueue", methods=["POST"])
@app.queue_output(arg_name="out", queue_name="%OUT_QUEUE%", connection="AzureWebJobsStorage")
def enqueue(req: func.HttpRequest, out: func.Out[str]) -> func.HttpResponse:
    out.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)
