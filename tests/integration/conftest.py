"""The local stack in-process for integration tests: both emulators, Azurite, and dev hosts.

Every server listens on a free port, so a running `make run` never collides with a test run.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.azurite import free_port
from devtools.devhost import DevHost
from devtools.graph_emulator import GraphEmulatorConfig
from devtools.graph_emulator import create_app as create_graph_app
from devtools.local_settings import local_values
from devtools.scheduler_emulator import SchedulerEmulatorConfig
from devtools.scheduler_emulator import create_app as create_scheduler_app
from devtools.serve import ServerThread

ROOT = Path(__file__).resolve().parents[2]
PROBE_ROOT = Path(__file__).resolve().parent / "apps" / "probe"


@pytest.fixture(scope="module")
def graph_emulator() -> Iterator[ServerThread]:
    server = ServerThread(create_graph_app(GraphEmulatorConfig())).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def scheduler_emulator() -> Iterator[ServerThread]:
    server = ServerThread(create_scheduler_app(SchedulerEmulatorConfig())).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def probe_host() -> Iterator[DevHost]:
    """A dev host running the probe app: records whatever webhooks reach it."""
    host = DevHost("probe_app:app", PROBE_ROOT, settings={}, port=free_port())
    host.start()
    try:
        yield host
    finally:
        host.stop()


def probe_received(host: DevHost, channel: str) -> list[Any]:
    return list(httpx.get(f"{host.url}/api/probe/received/{channel}", timeout=10).json())


def stack_settings(graph: ServerThread, scheduler: ServerThread, storage: str, public_url: str,
                   **overrides: str) -> dict[str, str]:
    values = local_values(graph_url=f"{graph.url}/v1.0", scheduler_url=scheduler.url, public_url=public_url,
                          storage=storage)
    values.update(overrides)
    return values
