"""A conditional write whose answer was lost is sent again by the storage SDK, which then meets the row it
wrote itself (412): on Azurite, that is the write's success; someone else's row is still a conflict."""

from __future__ import annotations

import uuid

import pytest

from connector.config import load_settings
from connector.stores.repositories import ConcurrencyConflict, TableRepository
from connector.stores.storage import StorageClients
from devtools.local_settings import local_values


@pytest.fixture()
def table(storage_connection_string: str) -> TableRepository:
    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    repo = TableRepository(clients.table("own" + uuid.uuid4().hex[:12]))
    repo.ensure()
    return repo


def test_a_conditional_write_met_again_by_its_retry_is_its_own_success(table: TableRepository) -> None:
    first = table.insert("lease", "mailbox", {"Holder": "run-1", "State": "running"})
    written = table.replace("lease", "mailbox", {"Holder": "run-1", "State": "done"}, first)
    # The same request again, with the ETag it was sent with (the answer to the first one was lost):
    again = table.replace("lease", "mailbox", {"Holder": "run-1", "State": "done"}, first)
    row = table.get("lease", "mailbox")
    assert row is not None and again == written == row.etag and row.data == {"Holder": "run-1", "State": "done"}


def test_someone_elses_write_is_still_a_conflict(table: TableRepository) -> None:
    first = table.insert("lease", "mailbox", {"Holder": "run-1", "State": "running"})
    table.replace("lease", "mailbox", {"Holder": "run-2", "State": "running"}, first)
    with pytest.raises(ConcurrencyConflict):
        table.replace("lease", "mailbox", {"Holder": "run-1", "State": "done"}, first)
    row = table.get("lease", "mailbox")
    assert row is not None and row.data["Holder"] == "run-2"
