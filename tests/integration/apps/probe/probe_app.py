"""A tiny function app that receives webhooks, so tests can see what Graph and Dime.Scheduler send.

It answers Graph's validation handshake like a well-behaved endpoint and records every notification
and webhook body; `GET /api/probe/received/{channel}` returns what arrived on that channel.
"""

import json
from typing import Any

import azure.functions as func

app = func.FunctionApp()
RECEIVED: dict[str, list[Any]] = {}


@app.route(route="probe/{channel}", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def receive(req: func.HttpRequest) -> func.HttpResponse:
    channel = req.route_params["channel"]
    token = req.params.get("validationToken")
    if token is not None:
        RECEIVED.setdefault(channel + "-handshakes", []).append(token)
        return func.HttpResponse(token, status_code=200, mimetype="text/plain")
    RECEIVED.setdefault(channel, []).append(json.loads(req.get_body() or b"null"))
    return func.HttpResponse(status_code=202 if channel.startswith("graph") else 200)


@app.route(route="probe/received/{channel}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def received(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(RECEIVED.get(req.route_params["channel"], [])), mimetype="application/json")
