"""Small HTTP helpers shared by the API and the control plane: JSON bodies and JSON errors."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aiohttp import web


class BadRequest(Exception):
    """Answered 400 with the message (by the error middleware)."""


def error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    """``{"message", "status", "error"}``: ``message`` is what the SDK's typed errors show."""
    body = {"message": message, "status": status, "error": HTTPStatus(status).phrase}
    return web.json_response(body, status=status, headers=headers)


async def read_json(request: web.Request) -> Any:
    raw = await request.read()
    if not raw.strip():
        raise BadRequest("the request has no body; send JSON")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
