"""The emulator's own request/response objects.

Real HTTP requests and the inner requests of a ``$batch`` are both turned into a
:class:`GraphRequest` and run through one pipeline, so counting, throttling and fault injection
behave the same for both.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from multidict import CIMultiDict, MultiDict

from .errors import body_read_error


@dataclass
class GraphRequest:
    method: str
    segments: list[str]  # decoded path segments after /v1.0
    query: MultiDict[str]
    headers: CIMultiDict[str]
    body: bytes | None
    base_url: str  # scheme://host:port, for absolute links
    inner: bool = False
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    params: list[str] = field(default_factory=list)  # path parameters, set by the router

    @property
    def path(self) -> str:
        return "/v1.0/" + "/".join(self.segments)

    def json(self) -> Any:
        """The body as JSON; malformed or missing → 400 like Graph."""
        if not self.body or not self.body.strip():
            raise body_read_error("Empty Payload. JSON content expected.")
        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise body_read_error(f"Invalid JSON. {exc}") from None

    def json_object(self) -> dict[str, Any]:
        data = self.json()
        if not isinstance(data, dict):
            raise body_read_error("Invalid JSON. An object was expected.")
        return data

    def prefer(self) -> dict[str, str]:
        return parse_prefer(self.headers.getall("Prefer", []))


@dataclass
class GraphResponse:
    status: int
    body: Any = None  # JSON-able, or None for no content
    headers: dict[str, str] = field(default_factory=dict)


def parse_prefer(values: list[str]) -> dict[str, str]:
    """Merge repeated and comma-separated ``Prefer`` headers into {lower-case name: value}."""
    prefs: dict[str, str] = {}
    for header in values:
        for part in _split_outside_quotes(header, ","):
            name, _, value = part.strip().partition("=")
            if name:
                prefs[name.strip().lower()] = value.strip().strip('"')
    return prefs


def _split_outside_quotes(text: str, sep: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def applied(prefs: list[str]) -> dict[str, str]:
    return {"Preference-Applied": ", ".join(prefs)} if prefs else {}

