"""Benchmark: the bulk re-plan (1,000 appointments over 50 resources by default) through the whole
local stack (Azurite, both emulators, the function app under the dev host). Prints one JSON object:
writes and HTTP round trips to Graph per phase (create, move, replay of the same webhooks) and the
seconds each phase took to converge.

    .venv/bin/python -m bench.planning_bulk [--appointments 1000] [--resources 50]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from devtools.azurite import free_port, start_azurite  # noqa: E402
from devtools.devhost import DevHost  # noqa: E402
from devtools.graph_emulator import GraphEmulatorConfig  # noqa: E402
from devtools.graph_emulator import create_app as create_graph_app  # noqa: E402
from devtools.local_settings import local_values  # noqa: E402
from devtools.scheduler_emulator import SchedulerEmulatorConfig  # noqa: E402
from devtools.scheduler_emulator import create_app as create_scheduler_app  # noqa: E402
from devtools.serve import ServerThread  # noqa: E402
from shared.services import reset_services  # noqa: E402
from tests.e2e.conftest import Stack  # noqa: E402
from tests.e2e.planning_bulk import run_bulk  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--appointments", type=int, default=1000)
    parser.add_argument("--resources", type=int, default=50)
    args = parser.parse_args()
    azurite = start_azurite()
    graph = ServerThread(create_graph_app(GraphEmulatorConfig())).start()
    scheduler = ServerThread(create_scheduler_app(SchedulerEmulatorConfig())).start()
    port = free_port()
    settings = local_values(graph_url=f"{graph.url}/v1.0", scheduler_url=scheduler.url,
                            public_url=f"http://127.0.0.1:{port}", storage=azurite.connection_string)
    reset_services()
    app = DevHost("function_app:app", ROOT, settings=settings, port=port, timers=False)
    app.start()
    try:
        result = run_bulk(Stack(app, graph, scheduler, settings), args.appointments, args.resources, timeout=900)
        out = asdict(result)
        out["resources"] = len(result.resources)
        out["events_per_resource"] = sorted(set(result.events_per_resource.values()))
        print(json.dumps(out))
    finally:
        app.stop()
        graph.stop()
        scheduler.stop()
        azurite.stop()


if __name__ == "__main__":
    main()
