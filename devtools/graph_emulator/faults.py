"""Injected faults: a matching request is delayed and/or answered with an error status."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import GraphError, bad_request, default_code, default_message


@dataclass
class FaultRule:
    id: int
    method: str | None
    route: str | None  # a route template, e.g. /v1.0/users/{id}/events/{id}
    user: str | None  # upn or id, as given
    status: int | None
    retry_after: float | None
    code: str | None
    message: str | None
    latency_ms: int
    count: int | None  # remaining firings; None = until cleared
    share: float = 1.0  # fire for this share of the matching requests (deterministic: 0.25 = every 4th)
    matched: int = 0
    fired: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "method": self.method, "route": self.route, "user": self.user, "status": self.status,
            "retryAfter": self.retry_after, "code": self.code, "message": self.message,
            "latencyMs": self.latency_ms, "count": self.count, "share": self.share, "matched": self.matched,
            "fired": self.fired,
        }


def normalize_route(route: str) -> str:
    route = "/" + route.strip().lstrip("/")
    return route if route.lower().startswith("/v1.0/") or route.lower() == "/v1.0" else "/v1.0" + route


def _number(data: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
        raise bad_request(f"'{name}' has the wrong type.")
    return value


class FaultBook:
    def __init__(self) -> None:
        self.rules: list[FaultRule] = []
        self._next_id = 1

    def add(self, data: dict[str, Any]) -> FaultRule:
        status = _number(data, "status", int)
        latency = _number(data, "latencyMs", int) or 0
        count = _number(data, "count", int)
        if status is None and not latency:
            raise bad_request("A fault needs a 'status' or a 'latencyMs'.")
        if status is not None and not 400 <= status <= 599:
            raise bad_request("'status' must be an error status (400-599).")
        if count is not None and count < 1:
            raise bad_request("'count' must be at least 1.")
        share = _number(data, "share", (int, float))
        if share is not None and not 0 < share <= 1:
            raise bad_request("'share' must be a number in (0, 1].")
        for name in ("method", "route", "user", "code", "message"):
            if data.get(name) is not None and not isinstance(data[name], str):
                raise bad_request(f"'{name}' must be a string.")
        rule = FaultRule(
            id=self._next_id,
            method=data["method"].upper() if data.get("method") else None,
            route=normalize_route(data["route"]) if data.get("route") else None,
            user=data.get("user"),
            status=status,
            retry_after=_number(data, "retryAfter", (int, float)),
            code=data.get("code"),
            message=data.get("message"),
            latency_ms=latency,
            count=count,
            share=1.0 if share is None else float(share),
        )
        self._next_id += 1
        self.rules.append(rule)
        return rule

    def take(self, method: str, template: str, mailbox_ids: set[str]) -> FaultRule | None:
        """The first live rule matching the request; consumes one of its firings."""
        for rule in self.rules:
            if rule.count is not None and rule.count <= 0:
                continue
            if rule.method and rule.method != method:
                continue
            if rule.route and rule.route.lower() != template.lower():
                continue
            if rule.user and rule.user.lower() not in mailbox_ids:
                continue
            rule.matched += 1
            if int(rule.matched * rule.share) == int((rule.matched - 1) * rule.share):
                continue  # not this one's turn: the share spreads the firings evenly
            if rule.count is not None:
                rule.count -= 1
            rule.fired += 1
            return rule
        return None


def fault_error(rule: FaultRule) -> GraphError:
    assert rule.status is not None
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        value = rule.retry_after
        headers["Retry-After"] = str(int(value)) if float(value).is_integer() else f"{value:g}"
    return GraphError(rule.status, rule.code or default_code(rule.status),
                      rule.message or default_message(rule.status, rule.code), headers)
