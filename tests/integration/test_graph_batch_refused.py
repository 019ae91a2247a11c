"""A `$batch` Graph refuses as a whole (413 too large, 400 too many requests) against the Graph emulator:
the batcher sends it again in halves, so only the write refused on its own fails."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import httpx
import pytest

from connector.errors import GraphError
from connector.gateways.batcher import GraphBatcher, WriteRequest, WriteResponse
from devtools.graph_emulator import GraphEmulatorConfig
from devtools.graph_emulator import create_app as create_graph_app
from devtools.serve import ServerThread
from tests.integration.test_sdk_against_emulators import graph_gateway, seed_user


@pytest.fixture
def strict_graph() -> Iterator[ServerThread]:
    """Batches of at most 3 requests and 6,000 bytes (the knobs; Graph's are 20 requests and 4 MB)."""
    server = ServerThread(create_graph_app(GraphEmulatorConfig(batch_max_requests=3,
                                                               batch_max_body_bytes=6000))).start()
    try:
        yield server
    finally:
        server.stop()


def _create(user: str, subject: str, body: str = "") -> WriteRequest:
    return WriteRequest("POST", f"/users/{user}/events", user, {
        "subject": subject, "body": {"contentType": "text", "content": body},
        "start": {"dateTime": "2026-03-02T08:00:00", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-02T09:00:00", "timeZone": "UTC"},
    })


async def test_a_refused_batch_goes_again_in_halves_and_only_the_oversized_write_fails(
        strict_graph: ServerThread) -> None:
    upn = f"fay-{uuid.uuid4().hex[:6]}@contoso.example"
    seed_user(strict_graph, upn)
    gateway = graph_gateway(strict_graph)
    user = await gateway.get_user(upn)
    assert user is not None
    batcher = GraphBatcher(gateway.batch, window_seconds=0.05)
    writes = [_create(user["id"], f"Job {i}", "x" * (7000 if i == 4 else 10)) for i in range(8)]
    results = await asyncio.gather(*(batcher.submit(w) for w in writes), return_exceptions=True)
    failed = {i: r for i, r in enumerate(results) if not isinstance(r, WriteResponse)}
    assert list(failed) == [4]
    assert isinstance(failed[4], GraphError) and failed[4].status == 413 and not failed[4].transient
    assert all(isinstance(r, WriteResponse) and r.status == 201 for i, r in enumerate(results) if i != 4)
    events = httpx.get(f"{strict_graph.url}/v1.0/users/{user['id']}/events?$top=50",
                       headers={"Authorization": "Bearer dev-graph-token"}, timeout=10).json()["value"]
    assert sorted(e["subject"] for e in events) == sorted(f"Job {i}" for i in range(8) if i != 4)
