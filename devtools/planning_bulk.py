"""The bulk re-plan scenario, run by the e2e test and `bench/planning_bulk.py`.

1. N appointments over R tracked resources (round robin) are planned on the board (each fires its
   AppointmentCreated webhook) → N events.
2. Every appointment is moved by an hour (AppointmentUpdated webhooks) → N PATCHes.
3. The same N update deliveries are replayed to the connector → no write.
Each phase waits for the planning queue to drain and reads the Graph emulator's counters.
"""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from devtools.local_stack import Stack, wait_until
from devtools.planning_tenant import Tenant, appointment, replay_webhook, setup_tenant, tag_of


@dataclass
class BulkResult:
    appointments: int
    resources: list[str]
    create_writes: int = 0
    create_round_trips: int = 0
    move_writes: int = 0
    move_round_trips: int = 0
    replay_writes: int = 0
    replay_round_trips: int = 0
    seconds: dict[str, float] = field(default_factory=dict)
    events_per_resource: dict[str, int] = field(default_factory=dict)


def _graph_counts(tenant: Tenant) -> tuple[Counter[str], int]:
    stats = tenant.http.get(f"{tenant.stack.graph.url}/_emulator/stats").json()
    return Counter(stats["requests"]), int(stats["roundTrips"])


def _writes(requests: Counter[str]) -> int:
    return sum(n for key, n in requests.items() if key.split(" ")[0] in ("POST", "PATCH", "DELETE") and "/events" in key)


def _wait_for(tenant: Tenant, writes: int, timeout: float) -> None:
    """Until the Graph writes reach `writes` and the planning queue is empty."""
    wait_until(lambda: _writes(_graph_counts(tenant)[0]) >= writes and tenant.queue_idle(), timeout=timeout,
               interval=0.5, what=f"{writes} Graph writes and an empty planning queue")


def run_bulk(stack: Stack, count: int, resource_count: int, timeout: float = 240) -> BulkResult:
    resources = [f"R{i:03d}" for i in range(resource_count)]
    tenant = setup_tenant(stack, resources)
    try:
        return _run(tenant, count, resources, timeout)
    finally:
        tenant.close()


def _run(tenant: Tenant, count: int, resources: list[str], timeout: float) -> BulkResult:
    stack = tenant.stack
    resource_count = len(resources)
    result = BulkResult(count, resources)
    base = (datetime.now(UTC) + timedelta(days=1)).replace(hour=6, minute=0, second=0, microsecond=0)
    bodies = [appointment(f"Bulk {i}", [resources[i % resource_count]],
                          start=base + timedelta(days=i // (resource_count * 10), hours=i % 10), hours=1)
              for i in range(count)]

    stack.graph_control("POST", "/stats/reset")
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        guids = list(pool.map(tenant.create, bodies))
    _wait_for(tenant, count, timeout)
    result.seconds["create"] = round(time.monotonic() - began, 2)
    requests, trips = _graph_counts(tenant)
    result.create_writes, result.create_round_trips = _writes(requests), trips

    stack.graph_control("POST", "/stats/reset")
    began = time.monotonic()
    moved: list[dict[str, Any]] = []

    def move(pair: tuple[str, dict[str, Any]]) -> dict[str, Any]:
        guid, body = pair
        start = datetime.fromisoformat(body["StartDate"].replace("Z", "+00:00")) + timedelta(hours=1)
        return tenant.patch(guid, {"StartDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                   "EndDate": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")})

    with ThreadPoolExecutor(8) as pool:
        moved = list(pool.map(move, zip(guids, bodies, strict=True)))
    _wait_for(tenant, count, timeout)
    result.seconds["move"] = round(time.monotonic() - began, 2)
    requests, trips = _graph_counts(tenant)
    result.move_writes, result.move_round_trips = _writes(requests), trips

    stack.graph_control("POST", "/stats/reset")
    began = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda payload: replay_webhook(tenant, "updated", payload), moved))
    assert statuses == [200] * count
    wait_until(tenant.queue_idle, timeout=timeout, interval=0.5, what="the replayed webhooks processed")
    result.seconds["replay"] = round(time.monotonic() - began, 2)
    requests, trips = _graph_counts(tenant)
    result.replay_writes, result.replay_round_trips = _writes(requests), trips

    wanted = set(guids)
    for no in resources:
        result.events_per_resource[no] = sum(1 for e in tenant.events(no) if tag_of(e) in wanted)
    return result
