"""Planning → Outlook in bulk, with the Graph emulator's real per-mailbox limits on (4 concurrent
requests and 10,000 per 10 minutes per mailbox, at most 4 inner requests of a `$batch` at a time).

Two scenarios on a tenant tracked by the real `sync_resources` (so every write also comes back as a
change notification, whose delta round the connector recognises as its own echo):

- **many mailboxes**: N appointments round robin over M resources, planned on the board at once
  (8 planner hands), then every one moved by an hour, then every one saved again unchanged (the
  webhooks fire, nothing may be written);
- **one busy mailbox**: N appointments for one resource, planned at once. Graph's budget for one
  mailbox is 10,000 requests per 10 minutes = 16.7/s: the target is 90 % of it (15 writes/s).

An event write takes Outlook a while (100 to 500 ms is common); the emulator answers in a millisecond
unless told otherwise, which would make every batch return before the next writes arrive. The bench
gives each event write `WRITE_LATENCY_MS` (the low end), held inside the mailbox's concurrency slot.

Figures per phase: Graph writes per second (first to last write), Graph writes per change (1.00;
0 for the replay), write round trips per write (HTTP requests that carried writes: `$batch` POSTs
and direct writes, ≤ 0.1 means full batches), Table Storage operations per change made by the
planning worker (≤ 4) and by every function together (the echo rounds included), the fraction of
Graph's ceiling reached; and the dev host's peak RSS after the whole run (< 300 MB). Detail: where
the phase's CPU went (each process), time inside each emulator's handlers, 429s, storage operations
by function and kind.

    python -m bench.planning_bulk [--appointments 1000] [--resources 50]   # the many-mailbox phases alone, as JSON
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.core import ROOT, Context, Figure, rounded
from devtools.benchstack.stack import BenchStack, wait_until
from devtools.benchstack.tenant import Tenant, appointment, iso, quiet_graph, tomorrow, track

WRITE_LATENCY_MS = 100  # per event create / update / delete, inside the mailbox's slot
BUDGET_PER_SECOND = 10_000 / 600  # Graph: requests per mailbox per second, averaged over its 10-minute window
WRITE_METHODS = ("POST", "PATCH", "DELETE")


@dataclass
class Phase:
    name: str
    changes: int
    writes: int
    write_round_trips: int
    round_trips: int
    seconds: float  # first planner action to last write (or to the queues drained, without writes)
    write_seconds: float  # first write to last write
    storage: list[dict[str, Any]]
    cpu: dict[str, float]
    handlers: dict[str, float]
    throttled: int
    graph_requests: dict[str, int]  # every request Graph counts against a mailbox ($batch inner ones included)
    scheduler_requests: dict[str, int]  # Dime.Scheduler API calls (the planner's own actions are not API calls)

    def table_ops(self, function: str | None = None) -> int:
        """Table operations on entities (creating the tables, once per process, is not counted)."""
        return sum(s["count"] for s in self.storage if s["service"] == "table" and s["kind"] != "table_admin"
                   and (function is None or s["function"] == function))

    def queue_ops(self) -> int:
        return sum(s["count"] for s in self.storage if s["service"] == "queue")

    @property
    def writes_per_second(self) -> float:
        span = self.write_seconds if self.writes > 1 and self.write_seconds > 0 else self.seconds
        return self.writes / span if span > 0 else float("nan")

    def detail(self) -> dict[str, Any]:
        by_function: Counter[str] = Counter()
        for s in self.storage:
            by_function[f"{s['function']} {s['service']} {s['kind']}"] += s["count"]
        return {
            "changes": self.changes, "graph_writes": self.writes, "write_round_trips": self.write_round_trips,
            "all_graph_round_trips": self.round_trips, "throttled_429": self.throttled,
            "graph_requests_per_change": round(sum(n for k, n in self.graph_requests.items() if "$batch" not in k)
                                               / max(self.changes, 1), 2),
            "graph_requests": dict(sorted(self.graph_requests.items(), key=lambda kv: -kv[1])),
            "scheduler_requests": self.scheduler_requests,
            "seconds_first_action_to_last_write": round(self.seconds, 2),
            "seconds_first_to_last_write": round(self.write_seconds, 2),
            "table_ops_all_functions": self.table_ops(), "queue_ops_all": self.queue_ops(),
            "storage_ops": dict(sorted(by_function.items(), key=lambda kv: -kv[1])),
            "cpu_seconds": {k: round(v, 2) for k, v in self.cpu.items()},
            "emulator_handler_seconds": {k: round(v, 2) for k, v in self.handlers.items()},
        }


def _graph_round_trips(stack: BenchStack) -> tuple[int, int]:
    """(HTTP requests that carried writes, every HTTP request) the Graph emulator answered."""
    routes = stack.bench("graph", "GET", "/stats")["handlers"]["by_route"]
    writes = sum(r["count"] for key, r in routes.items()
                 if key.split(" ")[0] in WRITE_METHODS and ("$batch" in key or "/events" in key))
    return writes, sum(r["count"] for r in routes.values())


def _phase(stack: BenchStack, tenant: Tenant, name: str, actions: list[Any], expected_writes: int,
           timeout: float) -> Phase:
    stack.reset_probes()
    stack.graph_control("POST", "/stats/reset")
    stack.ds_control("POST", "/stats/reset")
    cpu_before, handlers_before = stack.cpu_seconds(), stack.handler_seconds()
    began = time.time()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda action: action(), actions))
    # Every webhook delivered, every write made, the queues drained (echo rounds included).
    wait_until(lambda: stack.ds_control("GET", "/stats").json()["webhooks"]["delivered"] >= len(actions),
               timeout, 0.2, f"{name}: the planner's webhooks delivered")
    wait_until(lambda: stack.bench("graph", "GET", "/stats")["writes"] >= expected_writes, timeout, 0.5,
               f"{name}: {expected_writes} Graph writes")
    tenant.settle(timeout, quiet=1.0)
    cpu_after, handlers_after = stack.cpu_seconds(), stack.handler_seconds()
    writes = stack.bench("graph", "GET", "/writes", params={"since": str(began), "actor": "connector"})["value"]
    times = sorted(w["t"] for w in writes)
    seconds = (times[-1] - began) if times else (time.time() - began)
    write_trips, trips = _graph_round_trips(stack)
    graph_stats = stack.graph_control("GET", "/stats").json()
    return Phase(
        name=name, changes=len(actions), writes=len(writes), write_round_trips=write_trips, round_trips=trips,
        seconds=seconds, write_seconds=(times[-1] - times[0]) if len(times) > 1 else 0.0,
        storage=stack.bench("devhost", "GET", "/stats")["storage"],
        cpu={k: cpu_after[k] - cpu_before.get(k, 0.0) for k in cpu_after},
        handlers={k: handlers_after[k] - handlers_before[k] for k in handlers_after},
        throttled=int(graph_stats["throttled"]),
        graph_requests={k: int(v) for k, v in graph_stats["requests"].items()},
        scheduler_requests={k: int(v) for k, v in stack.ds_control("GET", "/stats").json()["requests"].items()},
    )


def _plan_all(tenant: Tenant, count: int, resources: list[str], timeout: float) -> tuple[list[str], Phase, list[dict[str, Any]]]:
    base = tomorrow(6)
    bodies = [appointment(f"Bulk {i}", [resources[i % len(resources)]],
                          base + timedelta(days=i // (len(resources) * 10), hours=i % 10)) for i in range(count)]
    guids: list[str] = [""] * count

    def create(i: int) -> Any:
        def act() -> None:
            guids[i] = tenant.plan(bodies[i])
        return act

    phase = _phase(tenant.stack, tenant, "create", [create(i) for i in range(count)], count, timeout)
    return guids, phase, bodies


def run_many(tenant: Tenant, count: int, timeout: float) -> list[Phase]:
    guids, create, bodies = _plan_all(tenant, count, tenant.resources, timeout)

    def move(guid: str, body: dict[str, Any]) -> Any:
        start = datetime.fromisoformat(body["StartDate"].replace("Z", "+00:00")) + timedelta(hours=1)
        return lambda: tenant.replan(guid, {"StartDate": iso(start), "EndDate": iso(start + timedelta(hours=1))})

    moved = _phase(tenant.stack, tenant, "move", [move(g, b) for g, b in zip(guids, bodies, strict=True)], count, timeout)
    # The same appointments saved again with nothing changed: each fires AppointmentUpdated.
    replay = _phase(tenant.stack, tenant, "replay", [(lambda g=g: tenant.replan(g, {})) for g in guids], 0, timeout)
    return [create, moved, replay]


def _figures(prefix: str, phases: list[Phase], mailboxes: int, busy: bool) -> list[Figure]:
    figures: list[Figure] = []
    for phase in phases:
        p = f"{prefix}.{phase.name}"
        per_change = phase.changes or 1
        worker_ops = phase.table_ops("apply_planning_changes") / per_change
        if phase.name == "replay":
            figures.append(Figure(f"{p}.graph_writes_per_change", "writes", rounded(phase.writes / per_change, 3), "== 0",
                                  detail=phase.detail()))
        else:
            ceiling = BUDGET_PER_SECOND * mailboxes
            figures += [
                Figure(f"{p}.writes_per_s", "writes/s", rounded(phase.writes_per_second), ">= 15" if busy else None,
                       detail=phase.detail()),
                Figure(f"{p}.graph_writes_per_change", "writes", rounded(phase.writes / per_change, 3), "== 1.00"),
                Figure(f"{p}.round_trips_per_write", "requests", rounded(phase.write_round_trips / max(phase.writes, 1), 3),
                       "<= 0.1"),
                Figure(f"{p}.graph_ceiling_fraction", "fraction", rounded(phase.writes_per_second / ceiling, 3),
                       ">= 0.9" if busy else None,
                       note=f"of {mailboxes} mailbox(es) x {BUDGET_PER_SECOND:.1f} requests/s"),
            ]
        figures.append(Figure(f"{p}.table_ops_per_change", "operations", rounded(worker_ops, 2), "<= 4",
                              note="the planning worker's own",
                              detail={"all_functions": rounded(phase.table_ops() / per_change, 2)}))
    return figures


def run(ctx: Context) -> list[Figure]:
    many, mailboxes = ctx.size((12, 3), (200, 20), (500, 50))
    busy = ctx.size(10, 120, 300)
    timeout = ctx.size(120, 600, 900)
    figures: list[Figure] = []
    with ctx.stack("bulk") as stack:
        quiet_graph(stack)
        for method, route in (("POST", "/v1.0/users/{id}/events"), ("PATCH", "/v1.0/users/{id}/events/{id}"),
                              ("DELETE", "/v1.0/users/{id}/events/{id}")):
            stack.graph_control("POST", "/faults", json={"method": method, "route": route,
                                                         "latencyMs": WRITE_LATENCY_MS}).raise_for_status()
        ctx.log(f"bulk: tracking {mailboxes} + 1 mailboxes")
        tenant = track(stack, [f"BK{i:03d}" for i in range(mailboxes)] + ["BUSY"])
        spread = Tenant(stack, tenant.resources[:-1], tenant.user_ids, tenant.client_states)
        ctx.log(f"bulk: {many} appointments over {mailboxes} mailboxes (create, move, replay)")
        stack.bench("devhost", "POST", "/profile/start")
        phases = run_many(spread, many, timeout)
        profile = stack.bench("devhost", "POST", "/profile/stop", params={"top": "30"})
        figures += _figures("bulk.many", phases, mailboxes, busy=False)
        figures[0].detail["profile_devhost"] = profile
        ctx.log(f"bulk: {busy} appointments for one busy mailbox")
        one = Tenant(stack, ["BUSY"], tenant.user_ids, tenant.client_states)
        _, create, _ = _plan_all(one, busy, ["BUSY"], timeout)
        figures += _figures("bulk.busy", [create], 1, busy=True)
        figures.append(Figure("rss.devhost_peak_mb", "MB", stack.devhost_peak_rss_mb(), "< 300",
                              note="the dev host process (the function app) at the end of the bulk run"))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=50)
    args = parser.parse_args()
    ctx = Context(mode="full", run_dir=ROOT / ".run" / "bench")
    with ctx.stack("planning_bulk") as stack:
        quiet_graph(stack)
        tenant = track(stack, [f"BK{i:03d}" for i in range(args.resources)])
        phases = run_many(tenant, args.appointments, timeout=900)
    print(json.dumps({p.name: {"writes": p.writes, "write_round_trips": p.write_round_trips,
                               "writes_per_second": round(p.writes_per_second, 1), "seconds": round(p.seconds, 2),
                               "table_ops_per_change": round(p.table_ops("apply_planning_changes") / p.changes, 2)}
                      for p in phases}))


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
