"""Cold start: what a new Functions instance pays before it can answer.

- import of the webhook path (`functions.graph_webhooks`, the module behind
  `/api/graph/notifications`) and of the whole app (`function_app`), each in a fresh interpreter,
  timed inside it (interpreter start-up excluded), median of several runs; target < 300 ms for the
  webhook path. Detail: modules loaded, and the heaviest imports (`python -X importtime`).
- first answer after start: from spawning the dev host process to the first accepted
  `POST /api/scheduler/notifications` (Python start-up, the host, the app's import, the storage
  clients, one queue put).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

from bench.core import ROOT, Context, Figure, rounded
from devtools.benchstack.stack import BenchStack
from devtools.benchstack.tenant import appointment, tomorrow
from devtools.local_settings import local_values
from devtools.scheduler_emulator.config import SchedulerEmulatorConfig
from devtools.scheduler_emulator.payloads import View, incoming
from devtools.scheduler_emulator.planner import create_appointment
from devtools.scheduler_emulator.store import Store

_PROBE = """
import json, sys, time
before = set(sys.modules)
began = time.perf_counter()
import {module}
seconds = time.perf_counter() - began
print(json.dumps({{"seconds": seconds, "modules": len(set(sys.modules) - before)}}))
"""


def _env() -> dict[str, str]:
    """The app's settings (pointing nowhere: importing must not call anything), as the host sets them."""
    return {**os.environ, **local_values()}


def import_time(module: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def heaviest_imports(module: str, top: int = 12) -> list[dict[str, object]]:
    """Import time by top-level package, anywhere in the import tree (`-X importtime` self times)."""
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"], cwd=ROOT, env=_env(),
                         capture_output=True, text=True, check=True)
    packages: dict[str, int] = {}
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, _cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if own.isdigit():
            root = name.split(".")[0]
            packages[root] = packages.get(root, 0) + int(own)
    ranked = sorted(packages.items(), key=lambda kv: -kv[1])[:top]
    return [{"package": name, "ms": round(us / 1000, 1)} for name, us in ranked]


def _notification() -> bytes:
    store = Store()
    store.upsert_resource({"resourceNo": "COLD", "email": "cold@bench.example"})
    appt = create_appointment(store, appointment("Cold start", ["COLD"], tomorrow()), "planner")
    return json.dumps(incoming(store, appt, View.of(SchedulerEmulatorConfig()))).encode()


def first_answer(stack: BenchStack) -> float:
    """Milliseconds from spawning a new dev host to its first accepted Dime.Scheduler notification."""
    body = _notification()
    began = time.monotonic()
    part = stack.start_app(name="devhost")  # spawns, then waits for the probe (which answers once listening)
    url = f"{part.url}/api/scheduler/notifications?event=updated&secret={stack.settings['SCHEDULER_WEBHOOK_SECRET']}"
    while True:
        response = stack.http.post(url, content=body, headers={"Content-Type": "application/json"})
        if response.status_code == 200:
            return (time.monotonic() - began) * 1000
        if time.monotonic() - began > 120:
            raise TimeoutError(f"the new dev host never accepted a notification ({response.status_code})")
        time.sleep(0.01)


def run(ctx: Context) -> list[Figure]:
    runs = ctx.size(1, 3, 5)
    figures: list[Figure] = []
    for label, module, target in (("webhook_path", "functions.graph_webhooks", "< 300"), ("app", "function_app", None)):
        ctx.log(f"cold_start: importing {module} in {runs} fresh interpreter(s)")
        import_time(module)  # once to warm the file cache: a fresh interpreter, not a cold disk
        samples = [import_time(module) for _ in range(runs)]
        detail = {"runs_ms": [round(s["seconds"] * 1000, 1) for s in samples], "modules": int(samples[0]["modules"]),
                  "heaviest_top_level_imports": heaviest_imports(module)}
        figures.append(Figure(f"cold.import_{label}_ms", "ms", rounded(statistics.median(s["seconds"] for s in samples) * 1000),
                              target, note=module, detail=detail))
    with ctx.stack("cold_start") as stack:
        ctx.log(f"cold_start: first answer of a new dev host, {runs} time(s)")
        answers = [first_answer(stack) for _ in range(runs)]
    figures.append(Figure("cold.first_answer_ms", "ms", rounded(statistics.median(answers)), None,
                          note="spawn → first accepted scheduler notification",
                          detail={"runs_ms": [round(a, 1) for a in answers]}))
    return figures
