"""`poll_planning` and `reconcile_exchange` against a growing history.

A tenant of tracked mailboxes with a few current appointments synced the normal way; then, level by
level (0, 10,000 and 100,000 in the full size), the rows years of work leave behind are added: each
historical appointment exists on the board (it ended long before the sync window) and has its
`OutlookCopy` and numeric-id rows in `mappings`, written through the connector's own `MappingStore`
(in table batches, so seeding is quick). At each level both timers are run through the host's admin
call and timed by the dev host (the invocation's own duration); `reconcile_exchange` also until the
delta rounds it enqueues have drained; `poll_planning`'s figure is its own invocation plus those of
the slices it fans out (`timer_ms`, `slices`, `drained_s` in the detail). Target: flat in history —
the growth figure is the duration at the largest history over the duration with none (floored at
100 ms, so noise on a tiny duration does not count), ≤ 2. A run still going after the cap is reported
as not finished (no value), with how far it got.
"""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from bench.core import Context, Figure
from devtools.benchstack.stack import BenchStack
from devtools.benchstack.tenant import appointment, quiet_graph, seed_history, tomorrow, track

FLOOR_MS = 100.0
QUIET_S = 0.3  # settle's quiet check: the queues idle twice this far apart


def _timed(stack: BenchStack, function: str, cap: float) -> dict[str, Any]:
    stack.reset_probes()
    stack.ds_control("POST", "/stats/reset")
    began = time.time()
    invocation = stack.run_function_and_wait(function, timeout=cap)
    devhost = stack.bench("devhost", "GET", "/stats")
    ds = stack.ds_control("GET", "/stats").json()["requests"]
    out: dict[str, Any] = {
        "ms": round(invocation["seconds"] * 1000, 1) if invocation else None,
        "finished": invocation is not None,
        "waited_s": round(time.time() - began, 1),
        "table_ops": sum(s["count"] for s in devhost["storage"] if s["service"] == "table" and s["function"] == function),
        "queue_puts": sum(s["count"] for s in devhost["storage"] if s["service"] == "queue" and s["kind"] == "put"
                          and s["function"] == function),
        "scheduler_requests": ds,
    }
    return out


def _poll_timed(stack: BenchStack, tenant: Any, cap: float) -> dict[str, Any]:
    """The timer only fans out (one `PollSlice` per 100 resources): the poll's cost is the timer's
    invocation plus each slice's invocation on the queue worker (the figure; as if run one after
    another), and `drained_s` the wall time until the planning queue is idle again (less the one quiet
    check `settle` waits), which adds the queue listener's polling. Table operations of both functions."""
    since = time.time()
    out = _timed(stack, "poll_planning", cap)
    began = time.monotonic()
    tenant.settle(cap, quiet=QUIET_S)
    out["drained_s"] = round(max(0.0, time.monotonic() - began - QUIET_S), 2)
    slices = stack.invocations("apply_planning_changes", since)
    devhost = stack.bench("devhost", "GET", "/stats")
    out["timer_ms"] = out["ms"]
    out["slices"] = len(slices)
    out["ms"] = round((out["ms"] or 0) + sum(i["seconds"] for i in slices) * 1000, 1) if out["finished"] else None
    out["table_ops"] = sum(s["count"] for s in devhost["storage"] if s["service"] == "table"
                           and s["function"] in ("poll_planning", "apply_planning_changes"))
    out["scheduler_requests"] = stack.ds_control("GET", "/stats").json()["requests"]
    return out


def _growth(results: dict[int, dict[str, Any]]) -> float | None:
    levels = sorted(results)
    first, last = results[levels[0]]["ms"], results[levels[-1]]["ms"]
    if first is None or last is None:
        return None
    return round(float(last) / max(float(first), FLOOR_MS), 2)


def run(ctx: Context) -> list[Figure]:
    levels = ctx.size([0, 50], [0, 1_000, 5_000], [0, 10_000, 100_000])
    mailboxes = ctx.size(2, 10, 10)
    current = ctx.size(4, 20, 50)
    cap = ctx.size(60.0, 120.0, 180.0)
    figures: list[Figure] = []
    poll: dict[int, dict[str, Any]] = {}
    skipped: dict[int, float] = {}  # level -> poll_planning's predicted duration (ms)
    reconcile: dict[int, dict[str, Any]] = {}
    with ctx.stack("history") as stack:
        quiet_graph(stack)
        tenant = track(stack, [f"HI{i:03d}" for i in range(mailboxes)])
        start = tomorrow(9)
        for i in range(current):
            tenant.plan(appointment(f"Current {i}", [tenant.resources[i % mailboxes]], start + timedelta(hours=i)))
        tenant.settle(300, quiet=1.0)
        stack.run_function_and_wait("reconcile_exchange", timeout=120)  # every mailbox has its delta link
        tenant.settle(300, quiet=0.5)
        seeded = 0
        for level in levels:
            predicted = _predicted_ms(poll, level)
            if predicted is not None and predicted > cap * 1000:
                # Seeding this level takes minutes; a run that cannot finish within the cap tells nothing more.
                ctx.log(f"history: skipping {level}: poll_planning would take about {predicted / 1000:.0f} s")
                skipped[level] = predicted
                break
            if level > seeded:
                ctx.log(f"history: seeding {level - seeded} historical appointments (to {level})")
                began = time.monotonic()
                batches = seed_history(tenant, level - seeded, first=seeded)
                ctx.log(f"history: seeded in {time.monotonic() - began:.1f} s ({batches} table transactions)")
                seeded = level
            ctx.log(f"history: reconcile_exchange and poll_planning with {level} historical mappings")
            result = _timed(stack, "reconcile_exchange", cap)
            drain_began = time.monotonic()
            tenant.settle(cap)
            result["rounds_drained_s"] = round(time.monotonic() - drain_began + (result["ms"] or 0) / 1000, 2)
            reconcile[level] = result
            poll[level] = _poll_timed(stack, tenant, cap)
            if not poll[level]["finished"]:
                ctx.log(f"history: poll_planning did not finish within {cap:g} s at {level}; stopping here")
                break
    for name, results in (("poll_planning", poll), ("reconcile_exchange", reconcile)):
        for level, result in results.items():
            note = "" if result["finished"] else f"not finished after {cap:g} s"
            figures.append(Figure(f"history.{name}.h{level}", "ms", result["ms"], None, note=note, detail=result))
        for level in levels:
            if level in results:
                continue
            detail = {"predicted_ms": round(skipped[level])} if name == "poll_planning" and level in skipped else {}
            why = (f"not run: poll_planning would take about {skipped[level] / 1000:.0f} s (cap {cap:g} s), "
                   "extrapolated from the levels below") if level in skipped else "not run (an earlier level did not finish)"
            figures.append(Figure(f"history.{name}.h{level}", "ms", None, None, note=why, detail=detail))
        finished = {lv: r for lv, r in results.items() if r["finished"]}
        largest = max(finished, default=0)
        slope = ((finished[largest]["ms"] - finished[0]["ms"]) / largest * 1000) if largest and 0 in finished else None
        figures.append(Figure(
            f"history.{name}.growth", "ratio", _growth(finished) if largest else None, "<= 2",
            note=f"h{largest} / max(h0, {FLOOR_MS:g} ms)" + ("" if largest == levels[-1] else f"; h{levels[-1]} not measured"),
            detail={"ms_per_1000_historical_mappings": round(slope, 1) if slope is not None else None}))
    return figures


def _predicted_ms(poll: dict[int, dict[str, Any]], level: int) -> float | None:
    """poll_planning's duration at `level`, extrapolated linearly from the two largest levels measured."""
    done = sorted(lv for lv, r in poll.items() if r["finished"])
    if len(done) < 2:
        return None
    a, b = done[-2], done[-1]
    slope = (poll[b]["ms"] - poll[a]["ms"]) / (b - a)
    return float(poll[b]["ms"] + slope * (level - b))
