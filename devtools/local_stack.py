"""The whole local stack in one process (tests and benchmarks): Azurite, both emulators and the real function app
under the dev host, all on free ports. `Stack` gives tests the handles a person would use: the
planner (Dime.Scheduler emulator control plane), a resource's Outlook (Graph API on the emulator),
the admin call that runs a timer or queue function now, and the app's own tables through `services`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from connector.services import Services, reset_services, services
from devtools.azurite import free_port, start_azurite
from devtools.devhost import DevHost
from devtools.graph_emulator import GraphEmulatorConfig
from devtools.graph_emulator import create_app as create_graph_app
from devtools.local_settings import local_values
from devtools.scheduler_emulator import SchedulerEmulatorConfig
from devtools.scheduler_emulator import create_app as create_scheduler_app
from devtools.serve import ServerThread

ROOT = Path(__file__).resolve().parents[1]
GRAPH_TOKEN = "dev-graph-token"
DS_KEY = "dev-api-key"



def wait_until(check: Callable[[], Any], timeout: float = 15, interval: float = 0.1, what: str = "condition",
               error: type[Exception] = AssertionError) -> Any:
    """Poll `check` until it returns something truthy; raise `error` naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise error(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Stack:
    app: DevHost
    graph: ServerThread
    scheduler: ServerThread
    settings: dict[str, str]

    @property
    def services(self) -> Services:
        """The app's own services (same settings): read its tables, queues and activity log."""
        return services()

    # -- a resource's Outlook, through the Graph API --------------------------------------------
    def graph_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {GRAPH_TOKEN}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.graph.url}/v1.0{path}", headers=headers, timeout=30, **kwargs)

    def graph_control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.graph.url}/_emulator{path}", timeout=30, **kwargs)

    # -- the planner and Dime.Scheduler ----------------------------------------------------------
    def ds_api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-API-KEY": DS_KEY, **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.scheduler.url}{path}", headers=headers, timeout=30, **kwargs)

    def ds_control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, f"{self.scheduler.url}/_emulator{path}", timeout=30, **kwargs)

    # -- the function app --------------------------------------------------------------------------
    def run_function(self, name: str, input: str = "") -> None:
        """Run a timer or queue function now, as `POST /admin/functions/{name}` does under func start."""
        response = httpx.post(f"{self.app.url}/admin/functions/{name}", json={"input": input}, timeout=30)
        assert response.status_code == 202, response.text

    def stats(self, side: str) -> dict[str, int]:
        server = self.graph if side == "graph" else self.scheduler
        return dict(httpx.get(f"{server.url}/_emulator/stats", timeout=10).json()["requests"])


@contextmanager
def stack_factory() -> Iterator[Callable[..., Stack]]:
    """A factory: `start(graph_config=..., scheduler_config=..., **settings)`; everything it started
    stops when the block ends. A new stack stops the one started before it: two hosts on one Azurite
    would take each other's queue messages (and write to each other's emulators).

    Each factory has its own in-memory Azurite (about a second to start): the tests use one per
    module, so no table row or queue message of one module can leak into another's."""
    started: list[tuple[DevHost, ServerThread, ServerThread]] = []
    azurite = start_azurite()
    storage_connection_string = azurite.connection_string

    def start(graph_config: GraphEmulatorConfig | None = None,
              scheduler_config: SchedulerEmulatorConfig | None = None, app_ref: str = "function_app:app",
              root: Path = ROOT, **overrides: str) -> Stack:
        stop_all()
        graph = ServerThread(create_graph_app(graph_config or GraphEmulatorConfig())).start()
        scheduler = ServerThread(create_scheduler_app(scheduler_config or SchedulerEmulatorConfig())).start()
        port = free_port()
        settings = local_values(graph_url=f"{graph.url}/v1.0", scheduler_url=scheduler.url,
                                public_url=f"http://127.0.0.1:{port}", storage=storage_connection_string)
        settings.update(overrides)
        reset_services()
        app = DevHost(app_ref, root, settings=settings, port=port, timers=False)
        app.start()
        started.append((app, graph, scheduler))
        return Stack(app, graph, scheduler, settings)

    def stop_all() -> None:
        while started:  # last in, first out: each restores what it found
            app, graph, scheduler = started.pop()
            app.stop()
            graph.stop()
            scheduler.stop()

    try:
        yield start
    finally:
        stop_all()
        reset_services()
        azurite.stop()
