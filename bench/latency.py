"""A change reaching the other side, one change at a time, both directions.

- **planning → Outlook**: the planner moves an appointment on the board (the Dime.Scheduler
  emulator's planner API, which fires the webhook); the time runs until the Graph emulator has
  completed the connector's event write for it.
- **Outlook → planning**: a person renames an event in Outlook (the Graph emulator's API, which
  sends the change notification); the time runs until the Dime.Scheduler emulator has applied the
  connector's import carrying the new subject.

Both ends are timestamped by the emulators themselves (their `/_bench/writes` log, read with a long
poll), so polling adds nothing to the figure. The steady series makes one change a second (each
waits for the previous one to arrive; echoes overlap the next change, as in real use). The idle
series lets the connector drain and waits 5 s before each change: the queue listeners have backed
off by then (host.json `maxPollingInterval`), which is what a quiet tenant sees. Detail: the median
time to the webhook, in the intake, waiting in the queue and in the worker, and the milliseconds per
change spent inside each emulator's handlers (the emulator's share).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from bench.core import Context, Figure, percentile, rounded
from devtools.benchstack.stack import BenchStack
from devtools.benchstack.tenant import Tenant, appointment, graph_time, iso, quiet_graph, tomorrow, track

TIMEOUT = 30.0  # a change that takes longer is reported as this (and misses the target)
PACE = 1.0  # seconds from one change to the next in the steady series


def _wait_write(stack: BenchStack, part: str, since: float, **where: str) -> float:
    """Seconds from `since` to the first matching write the emulator completed (TIMEOUT if none)."""
    found = stack.bench(part, "GET", "/writes", params={"since": str(since), "timeout": str(TIMEOUT), **where},
                        timeout=TIMEOUT + 10)["value"]
    return found[0]["t"] - since if found else TIMEOUT


def _stages(stack: BenchStack, since: float, intake: str, worker: str) -> dict[str, float] | None:
    """Where one change's time went: until the webhook reached the app, waiting in the queue, the worker."""
    found = stack.bench("devhost", "GET", "/invocations", params={"since": str(since)})["value"]
    first_intake = next((i for i in found if i["function"] == intake), None)
    if first_intake is None:
        return None
    received = first_intake["started"] + first_intake["seconds"]
    first_work = next((i for i in found if i["function"] == worker and i["started"] >= received), None)
    if first_work is None:
        return None
    return {"to_webhook_ms": (first_intake["started"] - since) * 1000, "intake_ms": first_intake["seconds"] * 1000,
            "queue_wait_ms": (first_work["started"] - received) * 1000, "worker_ms": first_work["seconds"] * 1000}


def _series(stack: BenchStack, tenant: Tenant, count: int, idle: float, change: Callable[[int], float],
            functions: tuple[str, str]) -> dict[str, object]:
    handlers_before = stack.handler_seconds()
    samples = []
    stages: list[dict[str, float]] = []
    tenant.settle(60)
    for n in range(count):
        if idle:  # a quiet connector (the previous change's echo done), then a quiet pause
            tenant.settle(60)
            time.sleep(idle)
        since = time.time()
        samples.append(change(n) * 1000)
        if not idle:  # a steady stream: one change every PACE seconds (start to start), echoes overlapping
            time.sleep(max(0.0, since + PACE - time.time()))
        deadline = time.monotonic() + 3  # the worker's invocation is logged when it ends
        while (found := _stages(stack, since, *functions)) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if found:
            stages.append(found)
    tenant.settle(60)
    handlers_after = stack.handler_seconds()
    share = {f"{p}_emulator_ms_per_change": round((handlers_after[p] - handlers_before[p]) * 1000 / max(count, 1), 2)
             for p in handlers_after}
    medians = {f"median_{k}": rounded(percentile([s[k] for s in stages], 50)) for k in (stages[0] if stages else {})}
    return {"samples": samples, "share": {**share, **medians}}


def _figures(prefix: str, result: dict[str, object]) -> list[Figure]:
    samples: list[float] = result["samples"]  # type: ignore[assignment]
    detail = {"changes": len(samples), "max_ms": rounded(max(samples, default=float("nan"))), **result["share"]}  # type: ignore[dict-item]
    return [
        Figure(f"{prefix}.p50", "ms", rounded(percentile(samples, 50)), detail=detail),
        Figure(f"{prefix}.p95", "ms", rounded(percentile(samples, 95))),
        Figure(f"{prefix}.p99", "ms", rounded(percentile(samples, 99)), "< 2000"),
    ]


def run(ctx: Context) -> list[Figure]:
    count = ctx.size(3, 20, 50)
    idle_count = ctx.size(1, 3, 8)
    idle = ctx.size(1.0, 5.0, 5.0)  # the smoke test only checks the shape
    figures: list[Figure] = []
    with ctx.stack("latency") as stack:
        quiet_graph(stack)
        tenant = track(stack, ["LAT000", "LAT001"])
        # planning → Outlook: one appointment per resource, moved by 15 minutes per change.
        start = tomorrow(8)
        guids = [tenant.plan(appointment(f"Latency {i}", [no], start)) for i, no in enumerate(tenant.resources)]
        tenant.settle(120, quiet=0.5)
        moves = [0, 0]

        def move(n: int) -> float:
            which = n % 2
            moves[which] += 1
            begin = start + timedelta(minutes=15 * moves[which])
            since = time.time()
            tenant.replan(guids[which], {"StartDate": iso(begin), "EndDate": iso(begin + timedelta(hours=1))})
            return _wait_write(stack, "graph", since, mailbox=tenant.user_ids[tenant.resources[which]], actor="connector")

        ctx.log(f"latency planning → Outlook: {count} changes, then {idle_count} after {idle:g} s idle")
        path = ("scheduler_notifications", "apply_planning_changes")
        figures += _figures("latency.to_outlook", _series(stack, tenant, count, 0, move, path))
        figures += _figures("latency.to_outlook.idle", _series(stack, tenant, idle_count, idle, move, path))

        # Outlook → planning: one Outlook item per resource, renamed per change.
        events = []
        for i, no in enumerate(tenant.resources):
            body = {"subject": f"Outlook {i}", "start": graph_time(start + timedelta(hours=3)),
                    "end": graph_time(start + timedelta(hours=4)), "showAs": "busy",
                    "body": {"contentType": "text", "content": "bench"}}
            events.append((no, tenant.outlook("POST", no, json=body)["id"]))
        tenant.settle(120, quiet=1.0)

        def rename(n: int) -> float:
            no, event_id = events[n % 2]
            subject = f"Edit {n} {time.time():.3f}"
            since = time.time()
            tenant.outlook("PATCH", no, f"/{event_id}", json={"subject": subject})
            return _wait_write(stack, "scheduler", since, subject=subject)

        ctx.log(f"latency Outlook → planning: {count} changes, then {idle_count} after {idle:g} s idle")
        path = ("graph_notifications", "apply_exchange_changes")
        figures += _figures("latency.to_planning", _series(stack, tenant, count, 0, rename, path))
        figures += _figures("latency.to_planning.idle", _series(stack, tenant, idle_count, idle, rename, path))
    return figures
