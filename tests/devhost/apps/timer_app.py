"""Probe app for timer triggers: %SETTING% schedules, run_on_startup, no overlap, manual runs."""

from __future__ import annotations

import json
import threading
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_lock = threading.Lock()
runs: dict[str, list[dict[str, object]]] = {"ticker": [], "manual": [], "busy": []}
busy_state = {"running": 0, "max_running": 0, "released": False}


@app.timer_trigger(arg_name="timer", schedule="%TICK_SCHEDULE%", run_on_startup=True)
def ticker(timer: func.TimerRequest) -> None:
    with _lock:
        runs["ticker"].append({"past_due": timer.past_due, "at": time.time()})


@app.timer_trigger(arg_name="timer", schedule="0 0 0 1 1 *")
def manual(timer: func.TimerRequest) -> None:
    with _lock:
        runs["manual"].append({"past_due": timer.past_due, "at": time.time()})


@app.timer_trigger(arg_name="timer", schedule="%BUSY_SCHEDULE%")
def busy(timer: func.TimerRequest) -> None:
    """Blocks (in the thread pool) until released, so later ticks find it busy."""
    with _lock:
        busy_state["running"] += 1
        busy_state["max_running"] = max(busy_state["max_running"], busy_state["running"])
        runs["busy"].append({"past_due": timer.past_due, "at": time.time()})
    deadline = time.monotonic() + 20
    while not busy_state["released"] and time.monotonic() < deadline:
        time.sleep(0.02)
    with _lock:
        busy_state["running"] -= 1


@app.route(route="state", methods=["GET"])
def state(req: func.HttpRequest) -> func.HttpResponse:
    with _lock:
        data = {"runs": runs, "busy": busy_state}
    return func.HttpResponse(json.dumps(data), mimetype="application/json")


@app.route(route="release", methods=["POST"])
def release(req: func.HttpRequest) -> func.HttpResponse:
    busy_state["released"] = True
    return func.HttpResponse(status_code=204)
