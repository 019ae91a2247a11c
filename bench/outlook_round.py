"""Outlook → board: one full round of a mailbox holding N items (1,000 in the full size).

The items are seeded into a tracked mailbox through the Graph emulator's control plane (no
notifications), then one full round is asked for, as a resync does (an `ExchangeChange` with
`full_resync` through the host's admin call). The time runs until the Dime.Scheduler emulator has
applied the last item's import. Figures: items per second (target ≥ 200), `/import` calls per item
(one call per delta page would be 0.01 at 100 items a page), Table Storage operations per item.
Detail: Graph round trips, the planning-changes echo each import causes (Dime.Scheduler fires a
webhook per imported item), CPU per process and time inside each emulator's handlers.
"""

from __future__ import annotations

import time
from datetime import timedelta

from bench.core import Context, Figure, rounded
from connector.messages import ExchangeChange
from devtools.benchstack.stack import wait_until
from devtools.benchstack.tenant import email, graph_time, quiet_graph, tomorrow, track


def run(ctx: Context) -> list[Figure]:
    items = ctx.size(20, 300, 1000)
    timeout = ctx.size(120, 600, 900)
    with ctx.stack("outlook_round") as stack:
        quiet_graph(stack)
        tenant = track(stack, ["ROUND"])
        start = tomorrow(7)
        bodies = [{"subject": f"Round item {i}", "showAs": "busy",
                   "start": graph_time(start + timedelta(days=i % 60, minutes=10 * (i // 60))),
                   "end": graph_time(start + timedelta(days=i % 60, minutes=10 * (i // 60) + 30)),
                   "body": {"contentType": "text", "content": f"item {i}"}} for i in range(items)]
        stack.graph_control("POST", "/seed", json={"events": {email("ROUND"): bodies}}).raise_for_status()
        stack.reset_probes()
        stack.graph_control("POST", "/stats/reset")
        stack.ds_control("POST", "/stats/reset")
        cpu_before = stack.cpu_seconds()
        ctx.log(f"outlook_round: a full round of a mailbox with {items} items")
        began = time.time()
        message = ExchangeChange(user_id=tenant.user_ids["ROUND"], reason="resync", full_resync=True)
        stack.run_function("apply_exchange_changes", message.to_json())
        wait_until(lambda: stack.bench("scheduler", "GET", "/stats")["writes"] >= items, timeout, 0.2,
                   f"{items} items imported")
        imports = stack.bench("scheduler", "GET", "/writes", params={"since": str(began), "kind": "import"})["value"]
        seconds = max(i["t"] for i in imports) - began
        tenant.settle(timeout, quiet=1.0)  # the board's echo webhooks, read back by the planning worker
        cpu_after = stack.cpu_seconds()
        ds = stack.ds_control("GET", "/stats").json()
        devhost = stack.bench("devhost", "GET", "/stats")
        graph = stack.bench("graph", "GET", "/stats")
        scheduler = stack.bench("scheduler", "GET", "/stats")
        import_calls = int(ds["requests"].get("POST /import", 0))
        table_ops = {fn: sum(s["count"] for s in devhost["storage"]
                             if s["service"] == "table" and s["kind"] != "table_admin" and s["function"] == fn)
                     for fn in {s["function"] for s in devhost["storage"]}}
        detail = {
            "items": items, "imported_calls": len(imports), "seconds": round(seconds, 2),
            "import_requests": import_calls, "graph_round_trips": graph["handlers"]["requests"],
            "table_ops_by_function": table_ops,
            "echo_webhooks_to_planning_worker": devhost["invocations"].get("apply_planning_changes", {}).get("count", 0),
            "cpu_seconds": {k: round(cpu_after[k] - cpu_before.get(k, 0.0), 2) for k in cpu_after},
            "emulator_handler_seconds": {"graph": graph["handlers"]["total_seconds"],
                                         "scheduler": scheduler["handlers"]["total_seconds"]},
            "scheduler_routes": scheduler["handlers"]["by_route"],
        }
    return [
        Figure("outlook_round.items_per_s", "items/s", rounded(items / seconds if seconds > 0 else float("nan")), ">= 200",
               detail=detail),
        Figure("outlook_round.import_calls_per_item", "requests", rounded(import_calls / items, 3), "<= 0.1",
               note="one call per delta page"),
        Figure("outlook_round.table_ops_per_item", "operations",
               rounded(table_ops.get("apply_exchange_changes", 0) / items, 2), None,
               note="the exchange worker's own; the echo's are in the detail"),
    ]
