"""The planning worker's storage guards against Azurite: the per-appointment lease (one writer per
appointment across instances) and the parking of queue messages that can never be processed."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from connector.stores.repositories import TableRepository
from connector.stores.storage import StorageClients
from connector.workers.to_outlook import LEASE_SECONDS, acquire_lease, release_lease


@pytest.fixture()
def cursors(storage_connection_string: str) -> TableRepository:
    from connector.config import load_settings
    from devtools.local_settings import local_values

    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    table = TableRepository(clients.table("cur" + uuid.uuid4().hex[:10]))
    table.ensure()
    return table


def test_only_one_owner_holds_an_appointment_lease(cursors: TableRepository) -> None:
    first = acquire_lease(cursors, "g1", "worker-a")
    assert first is not None
    assert acquire_lease(cursors, "g1", "worker-b") is None  # the loser retries later
    assert acquire_lease(cursors, "g2", "worker-b") is not None  # other appointments are independent
    release_lease(cursors, "g1", first)
    assert acquire_lease(cursors, "g1", "worker-b") is not None


def test_an_expired_lease_is_taken_over_and_the_old_owner_cannot_release_it(cursors: TableRepository) -> None:
    now = datetime.now(UTC)
    stale = acquire_lease(cursors, "g1", "crashed", now - timedelta(seconds=LEASE_SECONDS + 1))
    assert stale is not None
    taken = acquire_lease(cursors, "g1", "worker-b", now)
    assert taken is not None
    release_lease(cursors, "g1", stale)  # ETag moved on: a no-op, the new owner keeps it
    assert acquire_lease(cursors, "g1", "worker-c", now) is None
    release_lease(cursors, "g1", taken)
    assert cursors.get("lease|appointment", "g1") is None
