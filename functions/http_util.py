"""Turning the API core's answers and errors into HTTP responses (shared by the HTTP blueprints)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import azure.functions as func

from connector.web.monitor import MonitorError
from connector.web.settings_api import Answer, ApiError

JSON = "application/json"


def json_response(body: Any, status: int = 200, etag: str | None = None) -> func.HttpResponse:
    headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
    if etag:
        headers["ETag"] = etag
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype=JSON, headers=headers)


def answer(call: Callable[[], Answer | Any]) -> func.HttpResponse:
    """Run an API call; `ApiError`/`MonitorError` become their status with a JSON error naming the field."""
    try:
        result = call()
    except ApiError as exc:
        return json_response(exc.body(), exc.status)
    except MonitorError as exc:
        error: dict[str, Any] = {"message": str(exc)}
        if exc.field:
            error["field"] = exc.field
        return json_response({"error": error}, exc.status)
    if isinstance(result, Answer):
        return json_response(result.body, result.status, result.etag)
    return json_response(result)
