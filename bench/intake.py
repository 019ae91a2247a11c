"""Webhook intake: `POST /api/graph/notifications` (valid notifications of tracked subscriptions) and
`POST /api/scheduler/notifications` (valid secret and payload), at 1, 8 and 32 concurrent clients.

Closed loop: each client sends its next request when the previous one is answered; a level runs
`seconds` after a short warm-up. Figures: p50/p95/p99 latency and the sustained rate per level; the
targets (≥ 400 req/s, p99 ≤ 100 ms) apply at 32 clients. The queue workers are switched off in this
dev host (`AzureWebJobs.<fn>.Disabled`): on Flex Consumption HTTP triggers scale in their own group,
so the intake's instances do not run the workers. Each level gets a fresh stack (an intake-only
host leaves every accepted message on its queue, and Azurite slows down under a backlog). Detail per
level: CPU milliseconds per request of the dev host, Azurite and the load generator, the answers by
status (a failed or timed-out request counts as status 0, never stops the run); at the highest
level also a sampled profile of the dev host, taken in a separate short run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import time
from collections.abc import Callable
from typing import Any

import aiohttp

from bench.core import Context, Figure, percentile, rounded
from devtools.benchstack.stack import BenchStack
from devtools.benchstack.tenant import Tenant, appointment, quiet_graph, tomorrow, track
from devtools.scheduler_emulator.config import SchedulerEmulatorConfig
from devtools.scheduler_emulator.payloads import View, incoming
from devtools.scheduler_emulator.planner import create_appointment
from devtools.scheduler_emulator.store import Store

REQUEST_TIMEOUT = 10.0
WORKERS_OFF = {"AzureWebJobs.apply_exchange_changes.Disabled": "true",
               "AzureWebJobs.apply_planning_changes.Disabled": "true"}


def graph_bodies(tenant: Tenant) -> Callable[[int], bytes]:
    """Valid change notifications, one item each, round robin over the tracked subscriptions."""
    subscriptions = [(tenant.user_ids[no], *tenant.client_states[no]) for no in tenant.resources]

    def body(n: int) -> bytes:
        user_id, subscription_id, client_state = subscriptions[n % len(subscriptions)]
        resource = f"Users/{user_id}/Events/AAMkBench{n:08d}="
        return json.dumps({"value": [{
            "subscriptionId": subscription_id, "clientState": client_state, "changeType": "updated",
            "resource": resource, "subscriptionExpirationDateTime": "2099-01-01T00:00:00Z",
            "resourceData": {"@odata.type": "#Microsoft.Graph.Event", "@odata.id": resource, "id": f"AAMkBench{n:08d}="},
            "tenantId": "00000000-0000-4000-8000-00000000aaaa",
        }]}).encode()

    return body


def scheduler_bodies(tenant: Tenant) -> Callable[[int], bytes]:
    """Appointment webhook payloads exactly as the emulator renders them (`appointment-incoming`)."""
    store = Store()
    payloads = []
    for i, no in enumerate(tenant.resources):
        store.upsert_resource({"resourceNo": no, "email": f"{no.lower()}@bench.example"})
        appt = create_appointment(store, appointment(f"Intake {i}", [no], tomorrow()), "planner")
        payloads.append(json.dumps(incoming(store, appt, View.of(SchedulerEmulatorConfig()))).encode())
    return lambda n: payloads[n % len(payloads)]


async def _load(url: str, body: Callable[[int], bytes], clients: int, seconds: float, warmup: float) -> dict[str, Any]:
    """Closed loop: `clients` senders, each sending its next request when the previous one ended.
    A request that fails or takes over REQUEST_TIMEOUT counts as an error (status 0), never stops the run."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    counter = itertools.count()
    began = time.perf_counter()
    measure_from, measure_to = began + warmup, began + warmup + seconds

    async def client(session: aiohttp.ClientSession) -> None:
        while True:
            sent = time.perf_counter()
            if sent >= measure_to:
                return
            try:
                async with session.post(url, data=body(next(counter)), headers={"Content-Type": "application/json"}) as r:
                    await r.read()
                    status = r.status
            except (TimeoutError, aiohttp.ClientError):
                status = 0
            done = time.perf_counter()
            if sent >= measure_from and done <= measure_to + REQUEST_TIMEOUT:
                latencies.append(done - sent)
                statuses[status] = statuses.get(status, 0) + 1

    connector = aiohttp.TCPConnector(limit=clients, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)) as session:
        await asyncio.gather(*(client(session) for _ in range(clients)))
    return {"latencies": latencies, "statuses": statuses}


def _level(stack: BenchStack, name: str, url: str, body: Callable[[int], bytes], clients: int, seconds: float,
           warmup: float) -> list[Figure]:
    cpu_before = stack.cpu_seconds()
    result = asyncio.run(_load(url, body, clients, seconds, warmup))
    cpu_after = stack.cpu_seconds()
    latencies = [x * 1000 for x in result["latencies"]]
    ok = sum(n for status, n in result["statuses"].items() if 200 <= status < 300)
    count = len(latencies)
    rate = ok / seconds  # accepted notifications per second
    # CPU spent over warm-up + measurement, per request of that whole span (close enough per request).
    spent = {p: cpu_after[p] - cpu_before.get(p, 0.0) for p in ("devhost", "azurite", "harness")}
    span_requests = max(1, round(count * (seconds + warmup) / seconds))
    detail = {
        "requests": count, "non_2xx": count - ok, "statuses": {str(k): v for k, v in result["statuses"].items()},
        "cpu_ms_per_request": {p: round(s * 1000 / span_requests, 3) for p, s in spent.items()},
    }
    big = clients == 32
    prefix = f"intake.{name}.c{clients}"
    return [
        Figure(f"{prefix}.rate", "req/s", rounded(rate), ">= 400" if big else None, detail=detail),
        Figure(f"{prefix}.p50", "ms", rounded(percentile(latencies, 50))),
        Figure(f"{prefix}.p95", "ms", rounded(percentile(latencies, 95))),
        Figure(f"{prefix}.p99", "ms", rounded(percentile(latencies, 99)), "<= 100" if big else None),
    ]


def _ceiling(name: str, cpu_ms: dict[str, float]) -> Figure:
    """The rate this machine's CPU allows at all: its cores over the CPU one request costs the dev host,
    Azurite and the load generator together (all three share the cores here; in Azure only the first)."""
    cores = os.cpu_count() or 1
    total = sum(cpu_ms.values())
    return Figure(f"intake.{name}.cpu_ceiling", "req/s", rounded(cores * 1000 / total) if total else None,
                  note=f"{cores} cores / {total:.2f} ms CPU per request (dev host + Azurite + load generator)",
                  detail={"cpu_ms_per_request": cpu_ms})


def queue_put_cost(connection_string: str, count: int) -> Figure:
    """CPU of one queue put by the Storage SDK in this process (the intake's only I/O), against Azurite:
    what bounds one Python worker's intake rate, whatever the connector does around it."""
    from connector.config import Secret, StorageConfig
    from connector.messages import ExchangeChange
    from connector.stores.queues import WorkQueues
    from connector.stores.storage import StorageClients

    queues = WorkQueues(StorageClients(StorageConfig(Secret(connection_string), None, None)))
    queues.ensure()
    message = ExchangeChange(user_id="bench-user", reason="notification")
    for _ in range(min(count, 20)):  # connections and first-call caches
        queues.send_exchange_change(message)
    started = time.process_time()
    for _ in range(count):
        queues.send_exchange_change(message)
    per_put = (time.process_time() - started) * 1000 / count
    return Figure("intake.queue_put_cpu", "ms", rounded(per_put),
                  note=f"azure-storage-queue send_message, {count} puts in one thread: one Python worker "
                       f"process tops out near {1000 / per_put:.0f} puts/s on its core")


def run(ctx: Context) -> list[Figure]:
    levels = ctx.size([1, 4], [1, 8, 32], [1, 8, 32])
    seconds = ctx.size(1.0, 4.0, 10.0)
    warmup = ctx.size(0.3, 1.0, 2.0)
    mailboxes = ctx.size(2, 4, 8)
    figures: list[Figure] = []
    for name in ("graph", "scheduler"):
        for clients in levels:
            # A fresh stack per level: Azurite slows down, and finally stalls, after some ten thousand
            # queue messages, and an intake-only host leaves every message it accepts on the queue.
            with ctx.stack(f"intake-{name}-{clients}") as stack:
                quiet_graph(stack)
                tenant = track(stack, [f"IN{i:03d}" for i in range(mailboxes)])
                stack.start_app(**WORKERS_OFF)  # the same tables and subscriptions; an HTTP-only instance
                if name == "graph":
                    url, body = f"{stack.app_url}/api/graph/notifications", graph_bodies(tenant)
                else:
                    secret = stack.settings["SCHEDULER_WEBHOOK_SECRET"]
                    url = f"{stack.app_url}/api/scheduler/notifications?event=updated&secret={secret}"
                    body = scheduler_bodies(tenant)
                ctx.log(f"intake {name} at {clients} client(s) for {seconds:g} s")
                found = _level(stack, name, url, body, clients, seconds, warmup)
                if clients == levels[-1]:  # where a notification's time goes in the dev host (a separate run)
                    stack.bench("devhost", "POST", "/profile/start")
                    asyncio.run(_load(url, body, clients, min(seconds, 3.0), 0))
                    found[0].detail["profile_devhost"] = stack.bench("devhost", "POST", "/profile/stop",
                                                                     params={"top": "25"})
                figures += found
                if clients == levels[-1]:
                    figures.append(_ceiling(name, found[0].detail["cpu_ms_per_request"]))
                if name == "graph" and clients == levels[-1]:
                    figures.append(queue_put_cost(stack.azurite.connection_string, ctx.size(200, 1000, 2000)))
    return figures
