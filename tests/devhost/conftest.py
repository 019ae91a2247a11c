"""Fixtures for the dev host conformance tests: temp script roots, started hosts, queue clients."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

from devtools.devhost import DevHost

FAST_QUEUES = {"maxPollingInterval": "00:00:00.200", "visibilityTimeout": "00:00:00.2", "maxDequeueCount": 3}


def write_root(path: Path, host_json: dict[str, Any] | None = None, values: dict[str, str] | None = None) -> Path:
    """A script root with host.json (and local.settings.json when ``values`` is given)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "host.json").write_text(json.dumps({"version": "2.0", **(host_json or {})}))
    if values is not None:
        (path / "local.settings.json").write_text(json.dumps({"IsEncrypted": False, "Values": values}))
    return path


def wait_for(predicate: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll until ``predicate()`` is truthy and return it; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


StartHost = Callable[..., DevHost]


@pytest.fixture
def start_host(tmp_path: Path) -> Iterator[StartHost]:
    """``start_host(app_ref, settings, host_json=..., **kwargs)``: a started DevHost, stopped at teardown."""
    hosts: list[DevHost] = []

    def start(app_ref: str, settings: dict[str, str], host_json: dict[str, Any] | None = None, **kwargs: Any) -> DevHost:
        root = write_root(tmp_path / f"root{len(hosts)}", host_json)
        host = DevHost(app_ref, root, settings=settings, **kwargs)
        host.start()
        hosts.append(host)
        return host

    yield start
    for host in reversed(hosts):
        host.stop()


@pytest.fixture
def queue_client(storage_connection_string: str) -> Callable[..., QueueClient]:
    """``queue_client(name, base64=True)``: a client that creates the queue and encodes like producers do."""

    def make(name: str, base64: bool = True) -> QueueClient:
        policies: dict[str, Any] = (
            {"message_encode_policy": TextBase64EncodePolicy(), "message_decode_policy": TextBase64DecodePolicy()}
            if base64
            else {}
        )
        client = QueueClient.from_connection_string(storage_connection_string, name, **policies)
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        return client

    return make
