"""Fixtures shared by every test: a real Azurite, started once per session on free ports."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from devtools.azurite import Azurite, start_azurite


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    instance = start_azurite()
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="session")
def storage_connection_string(azurite: Azurite) -> str:
    return azurite.connection_string
