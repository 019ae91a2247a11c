"""Injected API faults: answer matching API requests with an error status and/or extra latency.

A fault matches by HTTP method and route template (as ``GET /_emulator/stats`` spells them, e.g.
``/appointment/{id}``); either may be omitted to match every API request. ``count`` limits how many
requests it hits (unlimited when absent). The first matching fault wins. ``body`` answers that text as
it is (status 200 unless given): the odd answers a client must not mistake for data. ``envelope: true`` (for
``POST /import``) answers the status inside the import envelope, as a failing import does (so, by
default, with HTTP 200 and the failure in ``StatusCode`` / ``Content``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class FaultProblem(ValueError):
    """An invalid fault definition."""


@dataclass
class ApiFault:
    id: int
    method: str | None
    route: str | None
    status: int | None
    retry_after: float | None
    latency_ms: int
    remaining: int | None
    envelope: bool = False
    body: str | None = None  # answered as it is (an odd answer: an empty or non-JSON body, even with 200)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "method": self.method, "route": self.route, "status": self.status,
            "retryAfter": self.retry_after, "latencyMs": self.latency_ms, "count": self.remaining,
            "envelope": self.envelope, "body": self.body,
        }


def _number(body: dict[str, Any], key: str, *, integer: bool = False) -> Any:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise FaultProblem(f"'{key}' must be a non-negative number")
    if integer and not isinstance(value, int):
        raise FaultProblem(f"'{key}' must be an integer")
    return value


class ApiFaults:
    def __init__(self) -> None:
        self.faults: list[ApiFault] = []
        self._next_id = 1

    def add(self, body: Any) -> ApiFault:
        if not isinstance(body, dict):
            raise FaultProblem("the body must be a JSON object")
        method, route = body.get("method"), body.get("route")
        if method is not None and not isinstance(method, str):
            raise FaultProblem("'method' must be a string")
        if route is not None and not (isinstance(route, str) and route.startswith("/")):
            raise FaultProblem("'route' must be a route template starting with '/', e.g. '/appointment/{id}'")
        raw = body.get("body")
        if raw is not None and not isinstance(raw, str):
            raise FaultProblem("'body' must be a string (answered as it is)")
        status = _number(body, "status", integer=True)
        if raw is not None and status is None:
            status = 200
        if status is not None and not (400 <= status <= 599 or (raw is not None and 200 <= status <= 599)):
            raise FaultProblem("'status' must be an HTTP error status (400-599), or 2xx with a 'body'")
        latency = _number(body, "latencyMs", integer=True) or 0
        if status is None and not latency:
            raise FaultProblem("give 'status' and/or 'latencyMs' (or a 'body')")
        envelope = body.get("envelope", False)
        if not isinstance(envelope, bool):
            raise FaultProblem("'envelope' must be a boolean")
        if envelope and status is None:
            raise FaultProblem("'envelope' needs a 'status'")
        count = _number(body, "count", integer=True)
        if count == 0:
            raise FaultProblem("'count' must be at least 1 (omit it for no limit)")
        fault = ApiFault(
            self._next_id, method.upper() if method else None, (route.rstrip("/") or "/") if route else None,
            status, _number(body, "retryAfter"), latency, count, envelope, raw,
        )
        self._next_id += 1
        self.faults.append(fault)
        return fault

    def take(self, method: str, route: str) -> ApiFault | None:
        """The first fault matching this request, with one use consumed."""
        for fault in self.faults:
            if (fault.method in (None, method)) and (fault.route in (None, route)):
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self.faults.remove(fault)
                return fault
        return None

    def clear(self) -> None:
        self.faults.clear()
