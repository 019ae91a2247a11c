"""Table Storage repositories: point reads by (PartitionKey, RowKey) and optimistic concurrency.

Every write that two workers can meet goes through an ETag: `insert` fails on an existing row,
`replace(..., etag=...)` fails if someone wrote in between. Callers see `AlreadyExists` and
`ConcurrencyConflict`, never the SDK's exception types, so the sync code stays SDK-free.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from azure.data.tables import TableClient, UpdateMode

from connector.stores.storage import StorageClients

# Table names (the admin monitor and the operations guide refer to them).
MAPPINGS_TABLE = "mappings"
SUBSCRIPTIONS_TABLE = "subscriptions"
SETTINGS_TABLE = "settings"
ACTIVITY_TABLE = "activity"
CURSORS_TABLE = "cursors"
WINDOW_TABLE = "window"  # the connector's events that end in or after the poll's window (see stores/mappings.py)
TABLES: tuple[str, ...] = (MAPPINGS_TABLE, SUBSCRIPTIONS_TABLE, SETTINGS_TABLE, ACTIVITY_TABLE, CURSORS_TABLE,
                           WINDOW_TABLE)

# Table Storage's limit for one entity group transaction (the 4 MiB payload limit is far off for the
# small rows batched here).
BATCH_ROWS = 100
_FORBIDDEN_KEY_CHARS = set("/\\#?\t\n\r")


def safe_key(value: str) -> str:
    """Percent-encode the characters Table Storage forbids in keys (/ \\ # ? and control characters)."""
    return quote(value, safe=" -_.@!$&'()*+,;=:~")


class AlreadyExists(Exception):
    """An insert met an existing row."""


class ConcurrencyConflict(Exception):
    """A conditional write met a row changed (or deleted) since it was read."""


@dataclass(frozen=True)
class Row:
    """A table row as read: its properties (keys included) and the ETag to write it back with."""

    partition_key: str
    row_key: str
    data: dict[str, Any]
    etag: str


def check_key(value: str) -> str:
    """Table keys must not contain / \\ # ? or control characters; fail loudly rather than corrupt."""
    if not value or any(c in _FORBIDDEN_KEY_CHARS or ord(c) < 32 for c in value) or len(value) > 1024:
        raise ValueError(f"invalid table key {value!r}")
    return value


def _row(entity: Mapping[str, Any]) -> Row:
    data = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
    return Row(str(entity["PartitionKey"]), str(entity["RowKey"]), data, str(entity.metadata["etag"]))  # type: ignore[attr-defined]


class TableRepository:
    """Rows of one table, addressed by (partition key, row key)."""

    def __init__(self, client: TableClient) -> None:
        self._client = client

    def ensure(self) -> None:
        with contextlib.suppress(ResourceExistsError):
            self._client.create_table()

    def get(self, partition_key: str, row_key: str) -> Row | None:
        try:
            return _row(self._client.get_entity(check_key(partition_key), check_key(row_key)))
        except ResourceNotFoundError:
            return None

    def insert(self, partition_key: str, row_key: str, data: Mapping[str, Any]) -> str:
        """Create the row; `AlreadyExists` if it is there. Returns the new ETag."""
        entity = {**data, "PartitionKey": check_key(partition_key), "RowKey": check_key(row_key)}
        try:
            return str(self._client.create_entity(entity)["etag"])
        except ResourceExistsError:
            raise AlreadyExists(f"{partition_key}/{row_key}") from None

    def replace(self, partition_key: str, row_key: str, data: Mapping[str, Any], etag: str) -> str:
        """Replace the row only if it still has `etag`; `ConcurrencyConflict` otherwise."""
        entity = {**data, "PartitionKey": check_key(partition_key), "RowKey": check_key(row_key)}
        try:
            result = self._client.update_entity(
                entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
            )
        except (ResourceModifiedError, ResourceNotFoundError):
            ours = self._holds_our_write(partition_key, row_key, data)
            if ours is None:
                raise ConcurrencyConflict(f"{partition_key}/{row_key}") from None
            return ours
        return str(result["etag"])

    def _holds_our_write(self, partition_key: str, row_key: str, data: Mapping[str, Any]) -> str | None:
        """After a conditional write answered 412: the row's ETag when it holds exactly what was written. A
        write can take effect and its answer be lost (a read timeout); the SDK then sends it again and meets
        its own write, which is a success, not someone else's. (An insert's 409 stays "it exists": callers use
        it to learn whether they created the row.)"""
        row = self.get(partition_key, row_key)
        return row.etag if row is not None and row.data == dict(data) else None

    def upsert(self, partition_key: str, row_key: str, data: Mapping[str, Any]) -> str:
        """Write the row whatever is there (last writer wins): only for rows one writer owns."""
        entity = {**data, "PartitionKey": check_key(partition_key), "RowKey": check_key(row_key)}
        return str(self._client.upsert_entity(entity, mode=UpdateMode.REPLACE)["etag"])

    def upsert_many(self, partition_key: str, rows: Mapping[str, Mapping[str, Any]]) -> None:
        """Write rows of one partition whatever is there, in entity group transactions (up to
        BATCH_ROWS rows a request, each request all or nothing): for rows one writer owns."""
        entities = [{**data, "PartitionKey": check_key(partition_key), "RowKey": check_key(row_key)}
                    for row_key, data in rows.items()]
        for first in range(0, len(entities), BATCH_ROWS):
            self._client.submit_transaction([("upsert", entity, {"mode": UpdateMode.REPLACE})
                                             for entity in entities[first:first + BATCH_ROWS]])

    def delete(self, partition_key: str, row_key: str, etag: str | None = None) -> None:
        """Delete the row (idempotent); with `etag`, only if unchanged since read."""
        try:
            if etag is None:
                self._client.delete_entity(check_key(partition_key), check_key(row_key))
            else:
                self._client.delete_entity(
                    check_key(partition_key), check_key(row_key), etag=etag, match_condition=MatchConditions.IfNotModified
                )
        except ResourceModifiedError:
            raise ConcurrencyConflict(f"{partition_key}/{row_key}") from None
        except ResourceNotFoundError:
            pass

    def partition(self, partition_key: str) -> Iterator[Row]:
        escaped = check_key(partition_key).replace("'", "''")
        return self.query(f"PartitionKey eq '{escaped}'")

    def query(self, odata_filter: str) -> Iterator[Row]:
        """Rows matching an OData filter built by this code (never from user input)."""
        for entity in self._client.query_entities(odata_filter):
            yield _row(entity)


class Repositories:
    """The connector's tables."""

    def __init__(self, clients: StorageClients) -> None:
        self.mappings = TableRepository(clients.table(MAPPINGS_TABLE))
        self.subscriptions = TableRepository(clients.table(SUBSCRIPTIONS_TABLE))
        self.settings = TableRepository(clients.table(SETTINGS_TABLE))
        self.activity = TableRepository(clients.table(ACTIVITY_TABLE))
        self.cursors = TableRepository(clients.table(CURSORS_TABLE))
        self.window = TableRepository(clients.table(WINDOW_TABLE))

    def ensure(self) -> None:
        for repo in (self.mappings, self.subscriptions, self.settings, self.activity, self.cursors, self.window):
            repo.ensure()
