"""A Graph endpoint that does not answer (refused, reset, timed out) is a transient failure: the change is
retried later, never parked and never left to the host's blind retries."""

from __future__ import annotations

import socket

import pytest

from connector.config import load_settings
from connector.errors import GraphError
from connector.gateways.graph import ExchangeGateway
from connector.workers.retry import classify
from devtools.azurite import free_port
from devtools.local_settings import local_values


@pytest.fixture
def silent_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    port = free_port()
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0
    return port


async def test_a_refused_connection_is_a_transient_graph_error(silent_port: int) -> None:
    settings = load_settings(local_values(graph_url=f"http://127.0.0.1:{silent_port}/v1.0"))
    gateway = ExchangeGateway(settings.graph)
    with pytest.raises(GraphError) as caught:
        await gateway.get_user("alice@contoso.test")
    assert caught.value.status == 0 and caught.value.code == "NetworkError" and caught.value.transient
    failure = classify(caught.value)
    assert failure is not None and failure.transient


async def test_a_batch_that_cannot_be_sent_is_transient_too(silent_port: int) -> None:
    settings = load_settings(local_values(graph_url=f"http://127.0.0.1:{silent_port}/v1.0"))
    with pytest.raises(GraphError) as caught:
        await ExchangeGateway(settings.graph).batch({"requests": [{"id": "1", "method": "GET", "url": "/users"}]})
    assert caught.value.transient
