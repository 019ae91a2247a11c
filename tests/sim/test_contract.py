"""The simulation's stand-ins are held to the real thing: the same script runs against an in-memory fake
and against Azurite or the Graph emulator (through the connector's own repositories and gateway), and
what a caller can observe must be the same. When an emulator becomes stricter, this is where a fake that
stayed kind is caught."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any, TypeVar

import httpx
import pytest
from azure.core.exceptions import HttpResponseError
from azure.data.tables import TableErrorCode

from connector.config import GraphAuthMode, GraphConfig, Secret, load_settings
from connector.errors import GraphError
from connector.gateways.graph import ExchangeGateway
from connector.stores.repositories import AlreadyExists, ConcurrencyConflict, TableRepository
from connector.stores.storage import StorageClients
from connector.sync.status import TAG_PROPERTY_ID
from devtools.graph_emulator import GraphEmulatorConfig
from devtools.graph_emulator import create_app as create_graph_app
from devtools.local_settings import local_values
from devtools.serve import ServerThread
from devtools.sim.graph import FakeGraph
from devtools.sim.storage import FakeStorage, FakeTable

T = TypeVar("T")
START = datetime(2026, 3, 2, tzinfo=UTC)


class Direct:
    """The simulation's I/O points with no scheduler behind them: every call just happens."""

    faults_on = False
    loop = SimpleNamespace(time=lambda: 0.0)
    model = SimpleNamespace(connector_wrote=lambda *args: None)  # the oracle's log: not under test here

    async def io(self, label: str, effect: Callable[[], T]) -> T:
        return effect()

    def io_sync(self, label: str, effect: Callable[[], T] | None = None) -> T | None:
        return effect() if effect else None

    def inner_fault(self) -> None:
        return None

    def token_expired(self) -> bool:
        return False

    def trace(self, text: str) -> None:
        pass


# -- tables ------------------------------------------------------------------------------------------
def table_script(table: TableRepository) -> list[Any]:
    seen: list[Any] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except (AlreadyExists, ConcurrencyConflict) as exc:
            return type(exc).__name__

    etag = table.insert("a|g1", "R1", {"Value": 1, "at": "2026-03-01T00:00:00+00:00"})
    seen.append(attempt(lambda: table.insert("a|g1", "R1", {"Value": 2})))
    row = table.get("a|g1", "R1")
    seen.append(row is not None and row.etag == etag and row.data["Value"] == 1)
    fresh = table.replace("a|g1", "R1", {"Value": 3, "at": "2026-03-05T00:00:00+00:00"}, etag)
    seen.append(attempt(lambda: table.replace("a|g1", "R1", {"Value": 4}, etag)))  # stale ETag
    seen.append(attempt(lambda: table.delete("a|g1", "R1", etag)))  # stale ETag
    table.upsert("a|g2", "R1", {"Value": 5, "at": "2026-02-01T00:00:00+00:00"})
    table.upsert("e|u1", "k", {"Value": 6})
    table.upsert("e|u1", "k2", {"Value": 8, "EndsAt": "2026-03-04T10:00:00"})
    table.upsert("e|u1", "k3", {"Value": 9, "EndsAt": "2026-02-27T10:00:00"})
    table.upsert("e|u2", "k4", {"Value": 10, "EndsAt": "2026-03-09T10:00:00"})
    seen.append(sorted((r.partition_key, r.row_key) for r in table.partition("a|g1")))
    seen.append(sorted((r.partition_key, r.row_key) for r in table.query("PartitionKey ge 'a|' and PartitionKey lt 'a}'")))
    seen.append(sorted((r.partition_key, r.data["Value"]) for r in table.query("at lt '2026-03-02T00:00:00+00:00'")))
    # a mailbox's live index rows (the poll): a row without the column is not returned
    seen.append(sorted(r.row_key for r in table.query("PartitionKey eq 'e|u1' and EndsAt ge '2026-03-01T00:00:00'")))
    table.delete("a|g1", "R1", fresh)
    seen.append(table.get("a|g1", "R1"))
    table.delete("a|g1", "R1")  # already gone: fine
    seen.append(attempt(lambda: table.replace("a|g1", "R1", {"Value": 7}, fresh)))  # gone: a conflict
    # a transaction of upserts over a partition's existing and new rows, past one request's 100
    table.upsert_many("e|u1", {f"b{n:03d}": {"Value": n} for n in range(120)} | {"k": {"Value": 11}})
    seen.append(sorted((r.row_key, r.data["Value"]) for r in table.partition("e|u1"))[:3])
    seen.append(len(list(table.partition("e|u1"))))
    return seen


def test_the_fake_table_behaves_like_azurite(storage_connection_string: str) -> None:
    import uuid

    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    name = "contract" + uuid.uuid4().hex[:8]
    real = TableRepository(clients.table(name))
    real.ensure()
    try:
        expected = table_script(real)
    finally:
        clients.table_service.delete_table(name)
    assert expected[:3] == ["AlreadyExists", True, "ConcurrencyConflict"]  # the script means something
    assert table_script(TableRepository(FakeTable(name))) == expected  # type: ignore[arg-type]


def size_script(table: TableRepository) -> list[Any]:
    """Table Storage's size limits as a caller meets them: a string property of 64 KiB (32,768 UTF-16 code
    units) is stored, one more is refused; a binary one likewise; an entity past 1 MiB is refused; a
    transaction with one refused row writes none; a refused replace leaves the row as it was."""
    seen: list[Any] = []

    def attempt(fn: Callable[[], Any]) -> Any:
        try:
            fn()
            return "stored"
        except HttpResponseError as exc:
            code = getattr(exc, "error_code", None)
            return type(exc).__name__, exc.status_code, str(getattr(code, "value", code))

    seen.append(attempt(lambda: table.upsert("p", "s1", {"S": "x" * 32768})))
    seen.append(attempt(lambda: table.upsert("p", "s2", {"S": "x" * 32769})))
    seen.append(attempt(lambda: table.upsert("p", "s3", {"S": "\u00e9" * 32769})))  # UTF-16 code units count
    seen.append(attempt(lambda: table.upsert("p", "s4", {"S": "\u00e9" * 20000})))  # 40,000 UTF-8 bytes: fine
    seen.append(attempt(lambda: table.upsert("p", "b1", {"B": b"x" * 65536})))
    seen.append(attempt(lambda: table.upsert("p", "b2", {"B": b"x" * 65537})))
    seen.append(attempt(lambda: table.upsert("p", "e1", {f"S{i}": "x" * 32000 for i in range(40)})))  # > 1 MiB
    seen.append(attempt(lambda: table.upsert("p", "e2", {f"S{i}": "x" * 16000 for i in range(30)})))  # < 1 MiB
    row = table.get("p", "s1")
    assert row is not None
    seen.append(attempt(lambda: table.replace("p", "s1", {"S": "y" * 40000}, row.etag)))
    kept = table.get("p", "s1")
    seen.append(kept is not None and kept.data["S"] == "x" * 32768 and kept.etag == row.etag)
    seen.append(attempt(lambda: table.upsert_many("q", {"t1": {"S": "small"}, "t2": {"S": "x" * 32769}})))
    seen.append(sorted(r.row_key for r in table.partition("q")))  # all or nothing
    seen.append(sorted(r.row_key for r in table.partition("p")))
    return seen


def test_the_fake_table_enforces_the_size_limits_like_azurite(storage_connection_string: str) -> None:
    import uuid

    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    name = "contract" + uuid.uuid4().hex[:8]
    real = TableRepository(clients.table(name))
    real.ensure()
    try:
        expected = size_script(real)
    finally:
        clients.table_service.delete_table(name)
    assert expected[0] == "stored" and expected[1] == ("HttpResponseError", 400, "PropertyValueTooLarge")
    assert expected[6] == ("HttpResponseError", 400, "EntityTooLarge")  # the script means something
    assert size_script(TableRepository(FakeTable(name))) == expected  # type: ignore[arg-type]


def test_the_fake_table_holds_azures_stricter_limits() -> None:
    """Where Azure documents a limit Azurite does not check (255 properties; an entity's size counted
    as UTF-16 with per-property overhead), the fake keeps Azure's: code that passes it passes both."""
    table = TableRepository(FakeTable("strict"))  # type: ignore[arg-type]
    table.upsert("p", "n252", {f"P{i}": 1 for i in range(252)})
    with pytest.raises(HttpResponseError) as many:
        table.upsert("p", "n253", {f"P{i}": 1 for i in range(253)})
    assert getattr(many.value, "error_code", None) == TableErrorCode.TOO_MANY_PROPERTIES
    with pytest.raises(HttpResponseError) as big:  # 544,000 UTF-8 bytes (Azurite stores it) but 1.09 MB in UTF-16
        table.upsert("p", "e3", {f"S{i}": "x" * 32000 for i in range(17)})
    assert getattr(big.value, "error_code", None) == TableErrorCode.ENTITY_TOO_LARGE
    assert sorted(r.row_key for r in table.partition("p")) == ["n252"]


def test_the_fake_queue_refuses_a_stale_pop_receipt_like_azurite(storage_connection_string: str) -> None:
    import uuid

    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    clients = StorageClients(load_settings(local_values(storage=storage_connection_string)).storage)
    fake = FakeStorage(lambda: 0.0)
    name = "contract" + uuid.uuid4().hex[:8]
    real_queue = clients.queue(name)
    real_queue.create_queue()
    try:
        for queue in (real_queue, fake.queue(name)):
            sent = queue.send_message("hello", visibility_timeout=0)
            later = queue.send_message("later", visibility_timeout=60)
            taken = next(iter(queue.receive_messages(messages_per_page=1, visibility_timeout=30)))
            assert taken.content == "hello" and taken.id == sent.id
            with pytest.raises(HttpResponseError) as mismatch:  # the receipt changed when the message was taken
                queue.delete_message(sent.id, sent.pop_receipt)
            assert not isinstance(mismatch.value, ResourceNotFoundError)
            queue.delete_message(later.id, later.pop_receipt)  # not taken yet: its own receipt deletes it
            with pytest.raises(ResourceNotFoundError):  # and a second time it is gone
                queue.delete_message(later.id, later.pop_receipt)
    finally:
        real_queue.delete_queue()


# -- Graph ---------------------------------------------------------------------------------------------
GraphScript = Callable[[Any, str], Awaitable[list[Any]]]


async def graph_script(graph: Any, user_id: str) -> list[Any]:
    """What the connector relies on: transactionId, the tag, changeKey, 404s, delta with @removed, $batch."""
    seen: list[Any] = []
    tag = [{"id": TAG_PROPERTY_ID, "value": "guid-1"}]
    body = {"subject": "Job", "start": {"dateTime": "2026-03-03T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-03T10:00:00", "timeZone": "UTC"}, "transactionId": "dsx-contract-1",
            "singleValueExtendedProperties": tag}
    first = await graph.create_event(user_id, body)
    again = await graph.create_event(user_id, body)
    seen.append(("repeat create is the same event", again["id"] == first["id"]))
    updated = await graph.update_event(user_id, first["id"], {"subject": "Job v2"})
    seen.append(("changeKey moves", updated["changeKey"] != first["changeKey"], updated["subject"]))
    found = await graph.find_events_by_property(user_id, TAG_PROPERTY_ID, "guid-1")
    seen.append(("found by tag", [e["id"] for e in found] == [first["id"]]))
    page = await graph.delta_page(user_id, start=START, end=START + timedelta(days=7))
    items, link = list(page.items), page.delta_link
    while page.next_link:
        page = await graph.delta_page(user_id, link=page.next_link)
        items += page.items
        link = page.delta_link
    seen.append(("full round lists it", [i["id"] for i in items if i["id"] == first["id"]] == [first["id"]]))
    assert link is not None
    seen.append(("deleted", await graph.delete_event(user_id, first["id"]), await graph.delete_event(user_id, first["id"])))
    page = await graph.delta_page(user_id, link=link)
    seen.append(("removed in the next round", [("@removed" in i) for i in page.items if i["id"] == first["id"]]))
    try:
        await graph.update_event(user_id, first["id"], {"subject": "x"})
        seen.append("patched a deleted event")
    except GraphError as exc:
        seen.append(("patch of a deleted event", exc.status))
    answer = await graph.batch({"requests": [
        {"id": "1", "method": "POST", "url": f"/users/{user_id}/events",
         "body": {**body, "transactionId": "dsx-contract-2"}, "headers": {"Content-Type": "application/json"}},
        {"id": "2", "method": "PATCH", "url": f"/users/{user_id}/events/{first['id']}", "body": {"subject": "y"},
         "headers": {"Content-Type": "application/json"}}]})
    statuses = sorted((r["id"], r["status"]) for r in answer["responses"])
    seen.append(("batch", statuses))
    return seen


@pytest.fixture(scope="module")
def graph_server() -> Iterator[ServerThread]:
    server = ServerThread(create_graph_app(GraphEmulatorConfig())).start()
    try:
        yield server
    finally:
        server.stop()


async def _emulator_user(url: str, upn: str) -> tuple[ExchangeGateway, str]:
    """A user seeded in the emulator at `url`, and the connector's own gateway to it."""
    httpx.post(f"{url}/_emulator/seed", json={"users": [
        {"displayName": upn.split("@")[0], "userPrincipalName": upn, "mail": upn}]}, timeout=10).raise_for_status()
    gateway = ExchangeGateway(GraphConfig(
        base_url=f"{url}/v1.0", auth_mode=GraphAuthMode.STATIC_TOKEN, tenant_id=None, client_id=None,
        client_secret=None, client_certificate=None, static_token=Secret("dev-graph-token"),
        managed_identity_client_id=None))
    user = await gateway.get_user(upn)
    assert user is not None
    return gateway, str(user["id"])


async def test_the_fake_graph_behaves_like_the_graph_emulator(graph_server: ServerThread) -> None:
    logging.disable(logging.CRITICAL)
    upn = "contract@contoso.example"
    gateway, user_id = await _emulator_user(graph_server.url, upn)
    expected = await graph_script(gateway, user_id)
    assert expected[0] == ("repeat create is the same event", True)

    fake = FakeGraph(Direct())  # type: ignore[arg-type]
    fake.add_user("u-contract", upn)
    assert await graph_script(fake, "u-contract") == expected


async def repeat_script(graph: Any, user_id: str) -> list[Any]:
    """A repeated transactionId while its event exists and after it was deleted (the "conflict" variant)."""
    seen: list[Any] = []
    body = {"subject": "Job", "start": {"dateTime": "2026-03-03T09:00:00", "timeZone": "UTC"},
            "end": {"dateTime": "2026-03-03T10:00:00", "timeZone": "UTC"}, "transactionId": "dsx-contract-9"}
    first = await graph.create_event(user_id, body)
    for when in ("while it exists", "after its deletion"):
        try:
            await graph.create_event(user_id, body)
            seen.append((when, "created"))
        except GraphError as exc:
            seen.append((when, exc.status, exc.transient))
        await graph.delete_event(user_id, first["id"])
    return seen


async def test_the_fake_graph_answers_a_repeated_transaction_id_like_the_emulators_conflict_variant() -> None:
    logging.disable(logging.CRITICAL)
    server = ServerThread(create_graph_app(GraphEmulatorConfig(repeated_transaction="conflict"))).start()
    try:
        upn = "repeat@contoso.example"
        gateway, user_id = await _emulator_user(server.url, upn)
        expected = await repeat_script(gateway, user_id)
    finally:
        server.stop()
    assert expected == [("while it exists", 409, False), ("after its deletion", 409, False)]
    fake = FakeGraph(Direct())  # type: ignore[arg-type]
    fake.repeated_transaction = "conflict"
    fake.add_user("u-repeat", upn)
    assert await repeat_script(fake, "u-repeat") == expected
