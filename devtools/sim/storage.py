"""In-memory Table Storage and queues with the semantics the connector relies on: ETags (insert fails on
an existing row, a conditional replace or delete fails on a changed row), the three OData filter shapes the
stores use, Table Storage's size limits (a string or binary property up to 64 KiB, an entity up to 1 MiB
and 255 properties, keys and Timestamp included), and queues with visibility delays and dequeue counts.

They stand in for the SDK clients (`TableClient`, `QueueClient`), so the connector's own repositories
and queue senders run unchanged on top of them. `tests/sim/test_contract.py` holds them to Azurite.

Every table operation (and every message the connector sends) is one I/O point of its own: it runs
through `FakeStorage.hazard`, which may crash the calling process or fail before or after the effect, so
a crash can fall between two writes of one store call (an entity group transaction is one point: all or
nothing). `storage_faults` draws the errors the SDKs raise there (timeouts, 5xx, an answer lost after the
write, the SDK's retry meeting 409 or 412). The calls are synchronous (the stores run in
`asyncio.to_thread`), so a point here does not let other tasks run in between: the interleaving of
store calls is at their `to_thread` points.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, TypeVar

from azure.core import MatchConditions
from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableEntity, TableErrorCode, TableTransactionError, UpdateMode

T = TypeVar("T")
# Runs one storage operation (`label`, its `effect`): the place to crash or fail around it.
Hazard = Callable[[str, Callable[[], Any]], Any]


def no_hazard(label: str, effect: Callable[[], T]) -> T:
    return effect()


def crash_points(sim: Any, rng: random.Random, probability: float) -> Hazard:
    """A hazard for a simulated world: the calling process dies before or after the operation with
    `probability` each (drawn from `rng`, so the rest of a seed's schedule stays as it was), while the
    world's faults are on. Operations outside any process (the world's own checks) never crash."""

    def hazard(label: str, effect: Callable[[], T]) -> T:
        crash_here(sim, rng, probability, f"storage {label}")
        result = effect()
        crash_here(sim, rng, probability, f"after storage {label}")
        return result

    return hazard


# What the Table and Queue SDKs raise to the caller once their own retry policy gave up (5xx and timeouts
# are retried there): (when, exception). "before": nothing happened; "after": the operation took effect and
# its answer was lost; "retried": it took effect, its answer was lost and the SDK's retry met the service's
# answer to the same request again (an insert: 409 EntityAlreadyExists; a conditional write: 412; a message:
# sent twice). Azure documents 500 OperationTimedOut as "may or may not have succeeded".
STORAGE_FAULTS: tuple[tuple[str, Callable[[str], BaseException]], ...] = (
    ("before", lambda label: ServiceRequestError(f"{label}: connection timed out (simulated)")),
    ("before", lambda label: _service_error(503, "ServerBusy", "Server Busy", f"{label}: the server is busy")),
    ("before", lambda label: _service_error(500, "InternalError", "Internal Server Error", f"{label}: internal error")),
    ("after", lambda label: ServiceResponseError(f"{label}: read timed out (simulated)")),
    ("after", lambda label: _service_error(500, "OperationTimedOut", "Operation could not be completed within the "
                                           "specified time.", f"{label}: the operation timed out")),
    ("retried", lambda label: ServiceResponseError(f"{label}: read timed out (simulated)")),
)


def _service_error(status: int, code: str, reason: str, message: str) -> HttpResponseError:
    """An `HttpResponseError` with the fields the storage SDKs set from the service's answer."""
    error = HttpResponseError(message=f"{message} (simulated)\nErrorCode:{code}")
    error.status_code, error.reason = status, reason
    error.error_code = code  # type: ignore[attr-defined]  # as the SDK's own errors carry it
    return error


def injected(error: BaseException | None) -> bool:
    """Whether `error` (or what it was raised from) is a storage fault `storage_faults` drew."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if getattr(error, "sim_storage_fault", False):
            return True
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return False


def _mark(error: BaseException) -> BaseException:
    error.sim_storage_fault = True  # type: ignore[attr-defined]
    if isinstance(error, ResourceExistsError | ResourceModifiedError | ResourceNotFoundError) and \
            error.status_code is None:  # the service's answer to the SDK's retry, with its fields
        status, code = {ResourceExistsError: (409, "EntityAlreadyExists"),
                        ResourceModifiedError: (412, "UpdateConditionNotSatisfied"),
                        ResourceNotFoundError: (404, "ResourceNotFound")}[type(error)]
        error.status_code = status
        error.error_code = code  # type: ignore[union-attr]  # as the SDK's own errors carry it
    return error


def storage_faults(sim: Any, rng: random.Random, probability: float, inner: Hazard) -> Hazard:
    """A hazard for a simulated world: with `probability` per operation (drawn from `rng`), while the world's
    faults are on, an operation of the connector (an invocation, a timer, a webhook function) fails as the SDK
    raises it after its own retries (`STORAGE_FAULTS`); `inner` (the crash points) runs around the effect."""

    def hazard(label: str, effect: Callable[[], T]) -> T:
        if not sim.faults_on or (owner_process(sim) is None and sim.current is None) or rng.random() >= probability:
            return inner(label, effect)  # type: ignore[no-any-return]
        when, make = rng.choice(STORAGE_FAULTS)
        error = _mark(make(label))
        sim.storage_faults += 1
        if when == "before":
            sim.trace(f"storage fault before {label}: {error!r}")
            raise error
        result = inner(label, effect)
        if when == "after":
            sim.trace(f"storage fault after {label}: {error!r}")
            raise error
        try:  # the SDK sends the same request again: what the service answers now is the caller's answer
            result = effect()
        except HttpResponseError as again:
            sim.trace(f"storage fault after {label}, the SDK's retry met {again!r}")
            raise _mark(again) from None
        sim.trace(f"storage fault after {label}, the SDK's retry succeeded")
        return result

    return hazard


def crash_here(sim: Any, rng: random.Random, probability: float, label: str) -> None:
    """Kill the process of the running task (as `Sim._maybe_crash` does) with `probability`."""
    process = owner_process(sim)
    if process is None or not sim.faults_on or rng.random() >= probability:
        return
    sim.trace(f"CRASH process {process.number} at {label}")
    process.alive = False
    raise sim_crash(label)


def owner_process(sim: Any) -> Any:
    """The simulated process the running task belongs to: its invocation's (or timer's), or (for the tasks
    `asyncio.gather` makes of a worker's side-by-side writes, which the world does not know) the process
    of the task that awaits it. None for the world's own code and the HTTP functions it calls inline
    (their caller, the webhook's sender, is not modelled to die)."""
    try:
        task = asyncio.current_task()
    except RuntimeError:  # no loop running: the world's own code (a test looking at the tables)
        return None
    if task is None:
        return None
    found = sim.task_process.get(task)
    if found is not None:
        return found
    return next((process for parent, process in sim.task_process.items() if _awaits(parent, task)), None)


def _awaits(waiter: Any, task: Any, depth: int = 0) -> bool:
    """Whether `waiter` (a task or future) waits, through gathers and awaited tasks, on `task`."""
    if waiter is task:
        return True
    if waiter is None or depth > 32:
        return False
    children = getattr(waiter, "_children", None) or ()  # an `asyncio.gather` future
    return any(_awaits(child, task, depth + 1) for child in children) or \
        _awaits(getattr(waiter, "_fut_waiter", None), task, depth + 1)


def sim_crash(label: str) -> BaseException:
    from devtools.sim.world import SimCrash  # the world imports this module

    return SimCrash(label)


_CLAUSE = re.compile(r"\s*(\w+)\s+(eq|ne|lt|le|gt|ge)\s+'((?:[^']|'')*)'\s*")
_OPS: dict[str, Callable[[str, str], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b, "gt": lambda a, b: a > b, "ge": lambda a, b: a >= b,
}


def parse_filter(odata: str) -> Callable[[Mapping[str, Any]], bool]:
    """`Field op 'value' [and Field op 'value' ...]`: the only shapes the stores build."""
    clauses = []
    for part in re.split(r"\s+and\s+", odata.strip()):
        match = _CLAUSE.fullmatch(part)
        if match is None:
            raise ValueError(f"filter the simulation does not understand: {odata!r}")
        clauses.append((match.group(1), _OPS[match.group(2)], match.group(3).replace("''", "'")))
    return lambda row: all(name in row and op(str(row[name]), value) for name, op, value in clauses)


# Table Storage's limits (Azure docs, "Understanding the Table service data model"): a string property holds
# up to 64 KiB of UTF-16 (32,768 code units), a binary one 64 KiB; an entity holds at most 255 properties
# (PartitionKey, RowKey and Timestamp included) and 1 MiB, sized as the service sizes it (below).
MAX_PROPERTY_BYTES = 64 * 1024
MAX_ENTITY_BYTES = 1024 * 1024
MAX_PROPERTIES = 255


def _utf16_bytes(text: str) -> int:
    return len(text.encode("utf-16-le"))


def _value_bytes(value: Any) -> int:
    """Sizeof a property value as Table Storage counts it (strings and binaries 4 bytes + content)."""
    if isinstance(value, str):
        return 4 + _utf16_bytes(value)
    if isinstance(value, bytes):
        return 4 + len(value)
    if isinstance(value, bool):
        return 1
    return 16 if isinstance(value, uuid.UUID) else 8  # numbers and dates: 8


def size_error(entity: Mapping[str, Any]) -> tuple[TableErrorCode, str] | None:
    """Why Table Storage refuses to store `entity`, or None (the strictest of Azure's documented limits
    and Azurite's checks: Azurite counts an entity's JSON bytes, Azure the formula below, which is larger)."""
    custom = {k: v for k, v in entity.items() if k not in ("PartitionKey", "RowKey")}
    for name, value in custom.items():
        content = _utf16_bytes(value) if isinstance(value, str) else len(value) if isinstance(value, bytes) else 0
        if content > MAX_PROPERTY_BYTES:
            return TableErrorCode.PROPERTY_VALUE_TOO_LARGE, f"The property value {name!r} exceeds 64 KiB."
    if len(custom) + 3 > MAX_PROPERTIES:
        return TableErrorCode.TOO_MANY_PROPERTIES, "The entity has more than 255 properties."
    size = 4 + _utf16_bytes(str(entity["PartitionKey"]) + str(entity["RowKey"])) + sum(
        8 + _utf16_bytes(name) + _value_bytes(value) for name, value in custom.items())
    if size > MAX_ENTITY_BYTES:
        return TableErrorCode.ENTITY_TOO_LARGE, "The entity is larger than the maximum allowed size (1MB)."
    return None


def _refused(code: TableErrorCode, message: str, transaction: bool = False) -> HttpResponseError:
    """The SDK's error for a 400 the service answers (inside a transaction: `TableTransactionError`)."""
    error = TableTransactionError(message=f"0:{message}") if transaction else HttpResponseError(message=message)
    error.status_code = 400
    error.error_code = code  # type: ignore[attr-defined]  # as the SDK's own errors carry it
    return error


def _keys(entity: Mapping[str, Any]) -> str:
    return f"{entity['PartitionKey']}/{entity['RowKey']}"


class FakeTable:
    """One table: rows by (PartitionKey, RowKey), each with an ETag that changes on every write."""

    def __init__(self, name: str, hazard: Hazard = no_hazard) -> None:
        self._etags = itertools.count(1)
        self.name = name
        self.rows: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        self.writes = 0
        self.reads = 0
        self._hazard = hazard

    def _io(self, operation: str, effect: Callable[[], T], keys: str = "") -> T:
        """One operation as an I/O point, labelled `<table> <operation> <partition key>/<row key>`."""
        return self._hazard(f"{self.name} {operation} {keys}".rstrip(), effect)  # type: ignore[no-any-return]

    def _store(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        refused = size_error(entity)
        if refused is not None:
            raise _refused(*refused)
        etag = f'W/"{next(self._etags)}"'
        data = dict(entity)
        self.rows[(str(data["PartitionKey"]), str(data["RowKey"]))] = (data, etag)
        self.writes += 1
        return {"etag": etag}

    @staticmethod
    def _entity(data: Mapping[str, Any], etag: str) -> TableEntity:
        entity = TableEntity(**data)
        entity._metadata = {"etag": etag, "timestamp": None}
        return entity

    # -- the TableClient surface the repositories use ------------------------------------------
    def create_table(self) -> None:
        raise ResourceExistsError("TableAlreadyExists")

    def get_entity(self, partition_key: str, row_key: str) -> TableEntity:
        return self._io("get", lambda: self._get(partition_key, row_key), f"{partition_key}/{row_key}")

    def _get(self, partition_key: str, row_key: str) -> TableEntity:
        self.reads += 1
        found = self.rows.get((partition_key, row_key))
        if found is None:
            raise ResourceNotFoundError("ResourceNotFound")
        return self._entity(*found)

    def create_entity(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        return self._io("insert", lambda: self._create(entity), _keys(entity))

    def _create(self, entity: Mapping[str, Any]) -> dict[str, Any]:
        if (str(entity["PartitionKey"]), str(entity["RowKey"])) in self.rows:
            raise ResourceExistsError("EntityAlreadyExists")
        return self._store(entity)

    def update_entity(self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE, etag: str | None = None,
                      match_condition: MatchConditions | None = None) -> dict[str, Any]:
        return self._io("update", lambda: self._update(entity, mode, etag, match_condition), _keys(entity))

    def _update(self, entity: Mapping[str, Any], mode: UpdateMode, etag: str | None,
                match_condition: MatchConditions | None) -> dict[str, Any]:
        key = (str(entity["PartitionKey"]), str(entity["RowKey"]))
        found = self.rows.get(key)
        if found is None:
            raise ResourceNotFoundError("ResourceNotFound")
        if match_condition == MatchConditions.IfNotModified and found[1] != etag:
            raise ResourceModifiedError("UpdateConditionNotSatisfied")
        data = dict(entity) if mode == UpdateMode.REPLACE else {**found[0], **entity}
        return self._store(data)

    def upsert_entity(self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE) -> dict[str, Any]:
        return self._io("upsert", lambda: self._upsert(entity, mode), _keys(entity))

    def _upsert(self, entity: Mapping[str, Any], mode: UpdateMode = UpdateMode.MERGE) -> dict[str, Any]:
        found = self.rows.get((str(entity["PartitionKey"]), str(entity["RowKey"])))
        data = dict(entity) if mode == UpdateMode.REPLACE or found is None else {**found[0], **entity}
        return self._store(data)

    def delete_entity(self, partition_key: str, row_key: str, etag: str | None = None,
                      match_condition: MatchConditions | None = None) -> None:
        self._io("delete", lambda: self._delete(partition_key, row_key, etag, match_condition),
                 f"{partition_key}/{row_key}")

    def _delete(self, partition_key: str, row_key: str, etag: str | None,
                match_condition: MatchConditions | None) -> None:
        found = self.rows.get((partition_key, row_key))
        if found is None:
            if match_condition == MatchConditions.IfNotModified:
                raise ResourceNotFoundError("ResourceNotFound")
            return  # the SDK treats a missing row as deleted
        if match_condition == MatchConditions.IfNotModified and found[1] != etag:
            raise ResourceModifiedError("UpdateConditionNotSatisfied")
        del self.rows[(partition_key, row_key)]
        self.writes += 1

    def submit_transaction(self, operations: Sequence[tuple[str, Mapping[str, Any], Mapping[str, Any]]]) -> list[Any]:
        """An entity group transaction: one partition, at most 100 rows, all or nothing (this store only
        needs upserts); one I/O point for the whole of it."""
        keys = [(str(e["PartitionKey"]), str(e["RowKey"])) for _, e, *_ in operations]
        if not 0 < len(keys) <= 100 or len({pk for pk, _ in keys}) != 1 or len(set(keys)) != len(keys):
            raise ValueError("a transaction holds 1 to 100 operations on distinct rows of one partition")
        if any(op != "upsert" for op, *_ in operations):
            raise NotImplementedError("the simulated table runs upsert transactions only")
        for _, entity, *_ in operations:  # all or nothing: a row the service refuses writes none of them
            refused = size_error(entity)
            if refused is not None:
                raise _refused(*refused, transaction=True)
        return self._io("transaction", lambda: [self._upsert(entity, **dict(options))
                                                for _, entity, options in operations], f"{keys[0][0]} ({len(keys)} rows)")

    def query_entities(self, query_filter: str, **_: Any) -> Iterator[TableEntity]:
        matches = parse_filter(query_filter)  # a filter it cannot read fails at the call, as before
        return iter(self._io("query", lambda: self._query(matches)))

    def _query(self, matches: Callable[[Mapping[str, Any]], bool]) -> list[TableEntity]:
        self.reads += 1
        return [self._entity(*self.rows[key]) for key in sorted(self.rows)  # Table Storage returns rows in key order
                if matches(self.rows[key][0])]

    def list_entities(self, **_: Any) -> Iterator[TableEntity]:
        for key in sorted(self.rows):
            yield self._entity(*self.rows[key])


@dataclass
class QueuedMessage:
    id: str
    content: str
    visible_at: float
    dequeue_count: int = 0
    pop_receipt: str = ""


@dataclass
class _Properties:
    approximate_message_count: int


class FakeQueue:
    """One queue. The simulation's host takes messages off it (`take`); the connector only sends,
    peeks (the monitor) and moves poison messages back (the monitor's Retry)."""

    def __init__(self, name: str, clock: Callable[[], float], hazard: Hazard = no_hazard) -> None:
        self._ids = itertools.count(1)
        self.name = name
        self._clock = clock
        self.messages: list[QueuedMessage] = []
        self.sent: list[str] = []  # every message ever sent (the replay check sends them again)
        self._hazard = hazard

    def create_queue(self) -> None:
        raise ResourceExistsError("QueueAlreadyExists")

    def send_message(self, content: str, visibility_timeout: int | None = None, **_: Any) -> QueuedMessage:
        return self._hazard(f"{self.name} send", lambda: self._send(content, visibility_timeout))  # type: ignore[no-any-return]

    def _send(self, content: str, visibility_timeout: int | None) -> QueuedMessage:
        message = QueuedMessage(f"{self.name}#{next(self._ids)}", content, self._clock() + (visibility_timeout or 0),
                                pop_receipt=f"r{next(self._ids)}")
        self.messages.append(message)
        self.sent.append(content)
        return replace(message)  # the sender's copy: its pop receipt does not follow later dequeues

    def get_queue_properties(self) -> _Properties:
        return _Properties(len(self.messages))

    def peek_messages(self, max_messages: int = 32, **_: Any) -> list[QueuedMessage]:
        return self.messages[:max_messages]

    def receive_messages(self, messages_per_page: int = 32, visibility_timeout: int = 30, **_: Any) -> list[QueuedMessage]:
        taken = self.visible()[:messages_per_page]
        for message in taken:
            self.dequeued(message, visibility_timeout)
        return taken

    def delete_message(self, message: QueuedMessage | str, pop_receipt: str | None = None) -> None:
        """Azure's rule: the pop receipt must be the message's current one (it changes on every dequeue)."""
        if isinstance(message, QueuedMessage):
            message, pop_receipt = message.id, message.pop_receipt
        found = next((m for m in self.messages if m.id == message), None)
        if found is None:
            raise ResourceNotFoundError("MessageNotFound")
        if found.pop_receipt != pop_receipt:
            raise HttpResponseError("PopReceiptMismatch")
        self.messages.remove(found)

    def update_message(self, message: QueuedMessage, visibility_timeout: int = 0, **_: Any) -> QueuedMessage:
        """Make a received message visible again after `visibility_timeout` (the monitor puts back what it
        did not mean to take); like Azure, it needs the current pop receipt and gives a new one."""
        found = next((m for m in self.messages if m.id == message.id), None)
        if found is None or found.pop_receipt != message.pop_receipt:
            raise HttpResponseError("PopReceiptMismatch")
        self.dequeued(found, visibility_timeout)
        found.dequeue_count -= 1
        return replace(found)

    def dequeued(self, message: QueuedMessage, visibility: float) -> None:
        """The host took the message: hidden for `visibility`, with a new pop receipt."""
        message.dequeue_count += 1
        message.visible_at = self._clock() + visibility
        message.pop_receipt = f"r{next(self._ids)}"

    def clear_messages(self) -> None:
        self.messages.clear()

    # -- the host's side -----------------------------------------------------------------------
    def visible(self) -> list[QueuedMessage]:
        now = self._clock()
        return [m for m in self.messages if m.visible_at <= now]

    def next_visible_at(self) -> float | None:
        return min((m.visible_at for m in self.messages), default=None)


@dataclass
class FakeStorage:
    """Stands in for `connector.stores.storage.StorageClients`: the same `table()` / `queue()` surface."""

    clock: Callable[[], float]
    tables: dict[str, FakeTable] = field(default_factory=dict)
    queues: dict[str, FakeQueue] = field(default_factory=dict)
    hazard: Hazard = no_hazard  # around every table operation and message sent (see the module docstring)

    def _io(self, label: str, effect: Callable[[], T]) -> T:
        return self.hazard(label, effect)  # type: ignore[no-any-return]

    def table(self, name: str) -> FakeTable:
        if name not in self.tables:
            self.tables[name] = FakeTable(name, self._io)
        return self.tables[name]

    def queue(self, name: str) -> FakeQueue:
        if name not in self.queues:
            self.queues[name] = FakeQueue(name, self.clock, self._io)
        return self.queues[name]

    @property
    def table_service(self) -> Any:
        storage = self

        class _Service:
            def list_tables(self, **_: Any) -> Iterator[str]:
                return iter(list(storage.tables))

            def get_table_client(self, name: str) -> FakeTable:
                return storage.table(name)

        return _Service()
