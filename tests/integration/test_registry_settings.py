"""Tracked-resource registry and resource settings against Azurite."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from connector.config import load_settings
from connector.model import Sensitivity, ShowAs
from connector.stores.registry import ResourceRecord, ResourceRegistry, Status, SubscriptionIndex, client_state_hash
from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, TableRepository
from connector.stores.settings import SettingsError, SettingsStore, parse_settings, settings_to_json
from connector.stores.storage import StorageClients
from connector.sync.to_planning import PrivateItems, ResourceSettings
from devtools.local_settings import local_values


def table(connection: str, prefix: str) -> TableRepository:
    clients = StorageClients(load_settings(local_values(storage=connection)).storage)
    repo = TableRepository(clients.table(prefix + uuid.uuid4().hex[:12]))
    repo.ensure()
    return repo


@pytest.fixture()
def registry(storage_connection_string: str) -> ResourceRegistry:
    return ResourceRegistry(table(storage_connection_string, "reg"))


@pytest.fixture()
def store(storage_connection_string: str) -> SettingsStore:
    return SettingsStore(table(storage_connection_string, "set"))


def test_registry_tracks_resources_and_indexes_users(registry: ResourceRegistry) -> None:
    expiry = datetime(2026, 11, 25, 10, tzinfo=UTC)
    registry.save(ResourceRecord("ALICE", "alice@x.example", "Alice", "user-a", subscription_id="s1",
                                 subscription_expiry=expiry))
    registry.save(ResourceRecord("ZED", "zed@x.example", status=Status.UNKNOWN_EMAIL, last_error="not a Graph user"))
    assert set(registry.tracked()) == {"ALICE"}
    assert registry.by_user("user-a").subscription_expiry == expiry  # type: ignore[union-attr]
    updated = registry.update("ALICE", error_count=2, last_error="Graph 503")
    assert updated is not None and registry.get("ALICE") == updated
    assert registry.update("NOBODY", error_count=1) is None


def test_a_mailbox_change_takes_the_old_index_row_with_it(registry: ResourceRegistry) -> None:
    registry.save(ResourceRecord("ALICE", "alice@x.example", "Alice", "user-a"))
    registry.update("ALICE", user_id="user-b", email="alice@y.example")
    assert registry.by_user("user-a") is None  # the old mailbox no longer leads to Alice
    assert registry.by_user("user-b").resource_no == "ALICE"  # type: ignore[union-attr]


def test_a_stale_index_row_is_not_followed(storage_connection_string: str) -> None:
    repo = table(storage_connection_string, "reg")
    registry = ResourceRegistry(repo)
    registry.save(ResourceRecord("ALICE", "alice@x.example", "Alice", "user-b"))
    repo.upsert("user", "user-a", {"resource_no": "ALICE"})  # left by an older version or a crash
    assert registry.by_user("user-a") is None


class _Interleaved(TableRepository):
    """Runs another writer's change between this writer's read and its write, once."""

    def __init__(self, inner: TableRepository, between: object) -> None:
        super().__init__(inner._client)
        self.between = between

    def replace(self, partition_key: str, row_key: str, data: dict[str, object], etag: str) -> str:  # type: ignore[override]
        if self.between is not None:
            between, self.between = self.between, None
            between()  # type: ignore[operator]
        return super().replace(partition_key, row_key, data, etag)


def test_a_late_sync_note_cannot_resurrect_an_untracked_resource(storage_connection_string: str) -> None:
    repo = table(storage_connection_string, "reg")
    owner = ResourceRegistry(repo)
    owner.save(ResourceRecord("ALICE", "alice@x.example", "Alice", "user-a", subscription_id="s1"))
    untrack = lambda: owner.update("ALICE", status=Status.UNTRACKED, subscription_id="")  # noqa: E731
    worker = ResourceRegistry(_Interleaved(repo, untrack))
    worker.note_sync("ALICE", "to_outlook", datetime(2026, 12, 6, 9, tzinfo=UTC))
    record = owner.get("ALICE")
    assert record is not None and record.status == Status.UNTRACKED and record.subscription_id == ""
    assert record.last_sync_to_outlook is None  # its premise (tracked) failed on the fresh row: no write


class _Counting(TableRepository):
    def __init__(self, inner: TableRepository) -> None:
        self.__dict__.update(inner.__dict__)
        self.reads = 0

    def get(self, partition_key: str, row_key: str):  # type: ignore[no-untyped-def]
        self.reads += 1
        return super().get(partition_key, row_key)


def test_sync_notes_read_the_resource_at_most_once_a_minute_unless_an_error_was_recorded(
        storage_connection_string: str) -> None:
    repo = _Counting(table(storage_connection_string, "reg"))
    registry = ResourceRegistry(repo)
    registry.save(ResourceRecord("ALICE", "alice@x.example", "Alice", "user-a"))
    nine = datetime(2026, 12, 6, 9, tzinfo=UTC)
    registry.note_sync("ALICE", "to_outlook", nine)
    repo.reads = 0
    for second in range(1, 60):  # a busy minute: no read per change
        registry.note_sync("ALICE", "to_outlook", nine.replace(second=second))
    assert repo.reads == 0
    registry.update("ALICE", last_error="Graph 503")  # recorded here: the next success clears it at once
    registry.note_sync("ALICE", "to_outlook", nine.replace(second=59))
    record = registry.get("ALICE")
    assert record is not None and record.last_error == "" and record.last_sync_to_outlook == nine.replace(second=59)
    ResourceRegistry(repo).update("ALICE", last_error="Graph 503")  # another process records an error:
    registry.note_sync("ALICE", "to_outlook", nine.replace(minute=1))  # cleared within a minute of the last look
    assert (record := registry.get("ALICE")) is not None and record.last_error == "Graph 503"
    registry.note_sync("ALICE", "to_outlook", nine.replace(minute=2))
    assert (record := registry.get("ALICE")) is not None and record.last_error == ""


def test_concurrent_field_updates_both_land(storage_connection_string: str) -> None:
    repo = table(storage_connection_string, "reg")
    owner = ResourceRegistry(repo)
    owner.save(ResourceRecord("ALICE", "alice@x.example", "Alice", "user-a"))
    other = lambda: owner.update("ALICE", time_zone="Romance Standard Time")  # noqa: E731
    ResourceRegistry(_Interleaved(repo, other)).update("ALICE", last_error="Graph 503")
    record = owner.get("ALICE")
    assert record is not None and (record.time_zone, record.last_error) == ("Romance Standard Time", "Graph 503")


def test_subscription_index_checks_client_state_in_constant_time(registry: ResourceRegistry) -> None:
    registry.remember_subscription(SubscriptionIndex("sub-1", "ALICE", "user-a", client_state_hash("s3cret")))
    index = registry.subscription("sub-1")
    assert index is not None and index.accepts("s3cret")
    assert not index.accepts("S3CRET") and not index.accepts(None)
    registry.forget_subscription("sub-1")
    assert registry.subscription("sub-1") is None


def test_settings_default_masked_private_items_and_follow_the_mode(store: SettingsStore) -> None:
    assert store.ensure_account("ALICE") and not store.ensure_account("ALICE")
    assert store.effective("ALICE").private_items is PrivateItems.MASKED
    own = store.own("ALICE")
    store.save_own("ALICE", parse_settings({"privateItems": "shown"}, own.settings), own.locks, own.etag)
    assert store.effective("ALICE").private_items is PrivateItems.SHOWN
    store.save_mode("global")
    assert store.effective("ALICE").private_items is PrivateItems.MASKED
    with pytest.raises(SettingsError):
        store.save_mode("anarchy")


def test_stale_settings_write_is_refused(store: SettingsStore) -> None:
    store.ensure_account("BOB")
    first = store.own("BOB")
    store.save_own("BOB", first.settings, frozenset({"privateItems"}), first.etag)
    with pytest.raises(ConcurrencyConflict):
        store.save_own("BOB", first.settings, frozenset(), first.etag)
    with pytest.raises(AlreadyExists):
        store.save_own("BOB", first.settings, frozenset(), None)
    assert store.own("BOB").locks == {"privateItems"}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"colour": "red"}, "colour"), ({"showAs": ["busy", "asleep"]}, "showAs"), ({"showAs": "busy"}, "showAs"),
     ({"privateItems": "visible"}, "privateItems"), ({"syncToPlanning": "yes"}, "syncToPlanning"),
     (["not", "an", "object"], "body")],
)
def test_invalid_settings_name_the_field(body: object, field: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_settings(body, ResourceSettings())
    assert caught.value.field == field


def test_settings_json_round_trip() -> None:
    settings = ResourceSettings(False, frozenset({ShowAs.OOF}), frozenset({Sensitivity.PRIVATE}), PrivateItems.HIDDEN)
    assert parse_settings(settings_to_json(settings), ResourceSettings(), partial=False) == settings
