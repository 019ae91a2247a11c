"""Probe app for queue triggers: retries then success, poison, concurrency, encodings.

Bookkeeping lives in module-level state, exposed over HTTP (``GET /api/state``) so tests observe it
the way they observe any function app: over the wire.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import defaultdict

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_lock = threading.Lock()
attempts: dict[str, list[int]] = defaultdict(list)  # key -> dequeue counts seen
succeeded: list[str] = []
bodies: list[dict[str, object]] = []
slow_state = {"in_flight": 0, "max_in_flight": 0, "done": 0, "permits": 0, "released": False}


@app.queue_trigger(arg_name="msg", queue_name="%FLAKY_QUEUE%", connection="AzureWebJobsStorage")
def flaky(msg: func.QueueMessage) -> None:
    """Body ``{"key": k, "fail": n}``: raise on the first n deliveries, then succeed."""
    data = json.loads(msg.get_body())
    with _lock:
        attempts[data["key"]].append(msg.dequeue_count or 0)
        tries = len(attempts[data["key"]])
        bodies.append({"id": msg.id, "body": msg.get_body().decode(), "dequeue_count": msg.dequeue_count})
    if tries <= int(data.get("fail", 0)):
        raise RuntimeError(f"probe failure {tries} for {data['key']}")
    with _lock:
        succeeded.append(data["key"])


@app.queue_trigger(arg_name="msg", queue_name="%DOOMED_QUEUE%", connection="AzureWebJobsStorage")
async def doomed(msg: func.QueueMessage) -> None:
    with _lock:
        attempts["doomed:" + msg.get_body().decode()].append(msg.dequeue_count or 0)
    raise ValueError("always fails")


@app.queue_trigger(arg_name="msg", queue_name="%SLOW_QUEUE%", connection="AzureWebJobsStorage")
async def slow(msg: func.QueueMessage) -> None:
    slow_state["in_flight"] += 1  # runs on the host loop: no lock needed
    slow_state["max_in_flight"] = max(slow_state["max_in_flight"], slow_state["in_flight"])
    try:
        while not slow_state["released"]:
            if slow_state["permits"]:  # let exactly one waiting invocation finish
                slow_state["permits"] -= 1
                break
            await asyncio.sleep(0.02)
    finally:
        slow_state["in_flight"] -= 1
        slow_state["done"] += 1


@app.route(route="state", methods=["GET"])
def state(req: func.HttpRequest) -> func.HttpResponse:
    with _lock:
        data = {"attempts": dict(attempts), "succeeded": list(succeeded), "bodies": list(bodies), "slow": slow_state}
    return func.HttpResponse(json.dumps(data), mimetype="application/json")


@app.route(route="release", methods=["POST"])
def release(req: func.HttpRequest) -> func.HttpResponse:
    """``?one=1`` lets one slow invocation finish; otherwise all of them (and later ones) finish."""
    if req.params.get("one"):
        slow_state["permits"] += 1
    else:
        slow_state["released"] = True
    return func.HttpResponse(status_code=204)
