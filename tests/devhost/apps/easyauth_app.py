"""Probe app for the Easy Auth stand-in: one anonymous function answering on every path, recording what
reached it, so a test sees exactly which requests Easy Auth let through and with which principal."""

from __future__ import annotations

import json

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
REACHED: list[dict[str, str | None]] = []  # what the app saw, in order


@app.route(route="{*path}", methods=["GET", "POST", "PUT", "DELETE"])
def anything(req: func.HttpRequest) -> func.HttpResponse:
    seen = {"method": req.method, "path": "/" + (req.route_params.get("path") or ""),
            "principal": req.headers.get("x-ms-client-principal"),
            "principal_name": req.headers.get("x-ms-client-principal-name")}
    REACHED.append(seen)
    return func.HttpResponse(json.dumps(seen), status_code=200, mimetype="application/json")
