"""Start one part of the benchmark stack in this process, with its `/_bench` probe.

    python -m devtools.benchstack.launch graph --port N
    python -m devtools.benchstack.launch scheduler --port N
    python -m devtools.benchstack.launch devhost --port N --settings values.json --storage-ports B,Q,T

The emulators run with their default (strictest) configuration; a benchmark changes knobs through
their control planes. The dev host runs `function_app:app` with the settings given (timers off:
the benchmarks run timers through the admin API), counting Azure Storage calls per function.
"""

from __future__ import annotations

import argparse
import contextlib
import faulthandler
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

from devtools.benchstack.probe import Probe

ROOT = Path(__file__).resolve().parents[2]


def _graph(port: int) -> None:
    from devtools.graph_emulator import GraphEmulatorConfig, create_app
    from devtools.graph_emulator.core import Emulator
    from devtools.graph_emulator.messages import GraphRequest, GraphResponse

    probe = Probe("graph")
    original = Emulator.execute

    async def execute(self: Emulator, req: GraphRequest) -> GraphResponse:
        response = await original(self, req)
        segments = [s.lower() for s in req.segments]
        if (req.method in ("POST", "PATCH", "DELETE") and response.status < 300 and len(segments) >= 3
                and segments[0] == "users" and "events" in segments):
            subject = ""
            if req.body and req.method != "DELETE":
                with contextlib.suppress(ValueError, AttributeError):
                    subject = str(json.loads(req.body).get("subject") or "")
            probe.writes.add({"kind": "event_write", "method": req.method, "mailbox": req.segments[1],
                              "actor": req.headers.get("X-Bench-Actor", "connector"), "subject": subject,
                              "inner": req.inner})
        return response

    Emulator.execute = execute  # type: ignore[method-assign]
    app = create_app(GraphEmulatorConfig())
    app.middlewares.insert(0, probe.middleware())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _scheduler(port: int) -> None:
    from devtools.scheduler_emulator import SchedulerEmulatorConfig, create_app
    from devtools.scheduler_emulator.emulator import Emulator

    probe = Probe("scheduler")
    original = Emulator.apply_import

    def apply_import(self: Emulator, payload: Any) -> Any:
        result = original(self, payload)
        calls = payload if isinstance(payload, list) else [payload]
        for call in calls:
            if not isinstance(call, dict):
                continue
            params = dict(zip(call.get("ParameterNames") or [], call.get("ParameterValues") or [], strict=False))
            probe.writes.add({"kind": "import", "procedure": str(call.get("StoredProcedureName", "")),
                              "subject": str(params.get("Subject") or ""),
                              "exchangeId": str(params.get("ExchangeId") or ""),
                              "ok": result.store is not None, "calls": len(calls)})
        return result

    Emulator.apply_import = apply_import  # type: ignore[method-assign]
    app = create_app(SchedulerEmulatorConfig())
    app.middlewares.insert(0, probe.middleware())
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def _devhost(port: int, settings_file: Path, storage_ports: list[int]) -> int:
    from devtools.benchstack.probe import InvocationLog, StorageCounter

    counter = StorageCounter(dict(zip(storage_ports, ("blob", "queue", "table"), strict=True)))
    counter.install()
    invocations = InvocationLog()
    invocations.install()
    probe = Probe("devhost", storage=counter, invocations=invocations, time_handlers=False)

    from devtools.devhost import DevHost

    values = json.loads(settings_file.read_text())["Values"]
    host = DevHost("function_app:app", ROOT, settings=values, host="127.0.0.1", port=port,
                   settings_file=settings_file, timers=False)
    # Outermost, in front of the Easy Auth stand-in: `/_bench` is the benchmark's, not the app's, and
    # the probe times every request the app sees.
    host.middlewares.insert(0, probe.middleware())
    # The host's own "Executed ..." lines are the dev host's artefact (the real host logs them from
    # .NET, outside the worker): keep them out of the measured process.
    logging.getLogger("devhost").setLevel(logging.WARNING)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    host.start()
    try:
        while not stopping.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        host.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.benchstack.launch", description=__doc__.splitlines()[0])
    parser.add_argument("role", choices=("graph", "scheduler", "devhost"))
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--settings", type=Path, help="devhost: a local.settings.json-shaped file")
    parser.add_argument("--storage-ports", default="", help="devhost: Azurite's blob,queue,table ports")
    args = parser.parse_args(argv)
    # `kill -USR1 <pid>` writes every thread's stack to the log: the stack asks for it when a part
    # does not come up in time.
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("azure").setLevel(logging.WARNING)
    if args.role == "graph":
        _graph(args.port)
    elif args.role == "scheduler":
        _scheduler(args.port)
    else:
        return _devhost(args.port, args.settings, [int(p) for p in args.storage_ports.split(",")])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
