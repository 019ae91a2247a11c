"""Repositories and queue senders against a real Azurite: keys, ETags, base64 messages."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from azure.storage.queue import QueueClient

from connector.config import load_settings
from connector.messages import ExchangeChange, InvalidMessage, PlanningChange
from connector.stores.queues import WorkQueues
from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, Repositories, TableRepository, check_key
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE, StorageClients
from devtools.local_settings import local_values


@pytest.fixture()
def clients(storage_connection_string: str) -> StorageClients:
    return StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)


@pytest.fixture()
def table(clients: StorageClients) -> TableRepository:
    repo = TableRepository(clients.table("t" + uuid.uuid4().hex[:12]))
    repo.ensure()
    return repo


def test_point_read_insert_and_conflicting_insert(table: TableRepository) -> None:
    assert table.get("mailbox-1", "event-1") is None
    table.insert("mailbox-1", "event-1", {"ChangeKey": "ck1", "Hash": "h1"})
    row = table.get("mailbox-1", "event-1")
    assert row is not None and row.data["ChangeKey"] == "ck1" and row.etag
    with pytest.raises(AlreadyExists):
        table.insert("mailbox-1", "event-1", {"ChangeKey": "other"})
    assert table.get("mailbox-1", "event-1").data["ChangeKey"] == "ck1"  # type: ignore[union-attr]


def test_replace_with_stale_etag_is_refused_and_changes_nothing(table: TableRepository) -> None:
    table.insert("p", "r", {"Value": 1})
    first = table.get("p", "r")
    assert first is not None
    table.replace("p", "r", {"Value": 2}, first.etag)
    with pytest.raises(ConcurrencyConflict):
        table.replace("p", "r", {"Value": 3}, first.etag)  # a second worker with the old read
    assert table.get("p", "r").data["Value"] == 2  # type: ignore[union-attr]


def test_conditional_delete_and_idempotent_delete(table: TableRepository) -> None:
    table.insert("p", "r", {"Value": 1})
    stale = table.get("p", "r")
    assert stale is not None
    table.upsert("p", "r", {"Value": 2})
    with pytest.raises(ConcurrencyConflict):
        table.delete("p", "r", etag=stale.etag)
    table.delete("p", "r")
    table.delete("p", "r")  # already gone: no error
    assert table.get("p", "r") is None


def test_partition_query_returns_only_that_partition(table: TableRepository) -> None:
    for i in range(3):
        table.insert("alice", f"e{i}", {"N": i})
    table.insert("bob", "e0", {"N": 9})
    assert sorted(r.row_key for r in table.partition("alice")) == ["e0", "e1", "e2"]
    assert [r.data["N"] for r in table.partition("it's")] == []  # quotes are escaped, not injected


@pytest.mark.parametrize("bad", ["", "a/b", "a#b", "a?b", "a\\b", "line\nbreak"])
def test_keys_that_table_storage_forbids_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid table key"):
        check_key(bad)


def test_all_tables_can_be_created_twice(clients: StorageClients) -> None:
    repos = Repositories(clients)
    repos.ensure()
    repos.ensure()
    names = {t.name for t in clients.table_service.list_tables()}
    assert {"mappings", "subscriptions", "settings", "activity", "cursors"} <= names


def test_work_queue_messages_are_base64_json_the_host_can_decode(clients: StorageClients,
                                                                  storage_connection_string: str) -> None:
    queues = WorkQueues(clients)
    queues.ensure()
    change = ExchangeChange(user_id="user-1", reason="notification")
    queues.send_exchange_change(change)
    queues.send_planning_change(PlanningChange(appointment_guid="g-1", event="created"))
    assert queues.depth(EXCHANGE_CHANGES_QUEUE) >= 1 and queues.depth(PLANNING_CHANGES_QUEUE) >= 1
    # Read raw, as the Functions host does: base64 text that decodes to our JSON.
    raw = QueueClient.from_connection_string(storage_connection_string, EXCHANGE_CHANGES_QUEUE)
    message = raw.receive_message()
    assert message is not None
    decoded = base64.b64decode(message.content).decode()
    assert json.loads(decoded)["user_id"] == "user-1"
    assert ExchangeChange.from_json(decoded) == change


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"kind": "planning-change", "appointment_guid": "g"}',
     '{"kind": "exchange-change", "user_id": ""}', '{"kind": "exchange-change", "user_id": "u", "extra": 1}'],
)
def test_malformed_queue_messages_raise_invalid_message(text: str) -> None:
    with pytest.raises(InvalidMessage):
        ExchangeChange.from_json(text)


def test_one_http_session_serves_tables_and_queues_and_a_configured_proxy_is_still_honoured(
        clients: StorageClients, monkeypatch: pytest.MonkeyPatch) -> None:
    """Storage calls share one session whose environment was read once (requests would read proxies,
    .netrc and the CA bundle on every call); an admin's HTTPS_PROXY keeps requests reading it per call."""
    tables = clients.table_service._client._client._pipeline._transport  # type: ignore[attr-defined]
    queues = clients.queue_service._pipeline._transport  # type: ignore[attr-defined]
    assert tables.session is queues.session and tables.session.trust_env is False
    assert clients.table_service.query_tables("TableName eq 'none'") is not None  # it still reaches Azurite
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.contoso.example:3128")
    with_proxy = StorageClients(load_settings(local_values()).storage)
    assert with_proxy.table_service._client._client._pipeline._transport.session.trust_env is True  # type: ignore[attr-defined]
