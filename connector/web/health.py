"""Health report: liveness plus one check per dependency (storage, Graph, Dime.Scheduler).

Checks run concurrently, each bounded by a timeout, and the report is cached briefly so that a
monitor polling the endpoint does not multiply calls to Graph and Dime.Scheduler. Errors are reduced
to their type and `error_summary` of the message: no secrets, no URLs with keys.

The endpoint is anonymous (probes cannot sign in), so what an anonymous caller sees is only the overall
status and whether each dependency is up (`public_view`): error text and configuration tell an
attacker which services, tenants and URLs sit behind the app, and an upstream error can echo more.
The full report is for admins (the same Easy Auth admin principal as the admin API).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connector.config import Settings, describe
from connector.errors import error_summary

Probe = Callable[[], Awaitable[None]]  # raises (or times out) when the dependency is not usable
CHECK_TIMEOUT_SECONDS = 5.0
CACHE_SECONDS = 5.0


@dataclass(frozen=True)
class CheckResult:
    ok: bool
    latency_ms: int
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        answer: dict[str, Any] = {"ok": self.ok, "latencyMs": self.latency_ms}
        if self.error:
            answer["error"] = self.error
        return answer


async def _timed(check: Callable[[], Awaitable[None]]) -> CheckResult:
    started = time.monotonic()
    try:
        await asyncio.wait_for(check(), CHECK_TIMEOUT_SECONDS)
    except TimeoutError:
        return CheckResult(False, int((time.monotonic() - started) * 1000), f"no answer within {CHECK_TIMEOUT_SECONDS:g} s")
    except Exception as exc:  # a health check reports every failure, it never raises
        return CheckResult(False, int((time.monotonic() - started) * 1000),
                           f"{type(exc).__name__}: {error_summary(str(exc))}")
    return CheckResult(True, int((time.monotonic() - started) * 1000))


def public_view(report: dict[str, Any]) -> dict[str, Any]:
    """What anyone may see: the overall status and each dependency's ok, no latency, error or config."""
    return {"status": report["status"],
            "checks": {name: {"ok": bool(check["ok"])} for name, check in report["checks"].items()}}


class HealthReporter:
    """Builds (and briefly caches) the health report from one probe per dependency.

    The probes are given (the services wire them to their clients): health reaches into nothing."""

    def __init__(self, settings: Settings, storage: Probe, graph: Probe, planning: Probe) -> None:
        self._settings = settings
        self._probes = {"storage": storage, "graph": graph, "planning": planning}
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._lock = asyncio.Lock()

    async def report(self) -> dict[str, Any]:
        async with self._lock:
            if self._cached and time.monotonic() - self._cached[0] < CACHE_SECONDS:
                return self._cached[1]
            results = await asyncio.gather(*(_timed(probe) for probe in self._probes.values()))
            checks = dict(zip(self._probes, results, strict=True))
            report = {
                "status": "ok" if all(c.ok for c in checks.values()) else "degraded",
                "checks": {name: c.to_json() for name, c in checks.items()},
                "config": describe(self._settings),
            }
            self._cached = (time.monotonic(), report)
            return report
