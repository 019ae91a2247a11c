"""Point the official ``dimescheduler`` SDK (or any httpx client) at the emulator::

    client = DimeSchedulerClient("dev-api-key", transport=emulator_transport("http://127.0.0.1:7073"))

The rewriting transports are the connector's own (``connector.gateways.transport``), so the tests use
exactly what the planning gateway uses.
"""

from __future__ import annotations

import httpx

from connector.gateways.transport import AsyncBaseUrlTransport, BaseUrlTransport


def emulator_transport(base_url: str) -> httpx.BaseTransport:
    """For ``DimeSchedulerClient(api_key, transport=emulator_transport(url))``."""
    return BaseUrlTransport(base_url)


def emulator_async_transport(base_url: str) -> httpx.AsyncBaseTransport:
    return AsyncBaseUrlTransport(base_url)
