"""Queue triggers and queue output bindings on Azure Storage queues (Azurite locally).

Mirrors the real host's queue listener: up to ``batchSize`` messages per poll, a new poll once no more
than ``newBatchThreshold`` are still running (so at most ``batchSize + newBatchThreshold`` in flight),
exponential back-off from 100 ms up to ``maxPollingInterval`` while the queue is empty, delete on
success, ``visibilityTimeout`` on failure, and ``<queue>-poison`` once ``maxDequeueCount`` is reached.
Message bodies are base64 text unless ``messageEncoding`` is ``none``.

A connection is the name of an app setting (default ``AzureWebJobsStorage``, also tried with the
``AzureWebJobs`` prefix) holding a connection string, or identity-style ``<name>__queueServiceUri`` /
``<name>__accountName`` (with ``<name>__clientId``) used with ``DefaultAzureCredential``.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from azure.core.exceptions import ResourceExistsError, ResourceNotFoundError
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueMessage as StorageMessage
from azure.storage.queue.aio import QueueClient, QueueServiceClient

from .errors import DevHostError
from .invocation import Invoker
from .loader import FunctionSpec, OutputBinding
from .settings import QueueOptions

log = logging.getLogger("devhost")

MIN_POLL = 0.1  # the real host's minimum polling interval
LEASE = 600  # seconds a received message stays invisible while it runs (renewed at half-time)
_DEV_STORAGE = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
)


@dataclass(frozen=True)
class Connection:
    """A resolved storage connection: a connection string or a service URI used with an identity."""

    setting: str
    connection_string: str | None = None
    service_uri: str | None = None
    client_id: str | None = None


def resolve_connection(name: str | None) -> Connection:
    setting = name or "AzureWebJobsStorage"
    for candidate in (setting, f"AzureWebJobs{setting}"):
        if value := os.environ.get(candidate):
            if value.replace(" ", "").lower().startswith("usedevelopmentstorage=true"):
                value = _DEV_STORAGE  # the SDK does not understand the shorthand
            return Connection(setting, connection_string=value)
        uri = os.environ.get(f"{candidate}__queueServiceUri")
        account = os.environ.get(f"{candidate}__accountName")
        if uri or account:
            uri = uri or f"https://{account}.queue.core.windows.net"
            return Connection(setting, service_uri=uri, client_id=os.environ.get(f"{candidate}__clientId"))
    raise DevHostError(
        f"storage connection '{setting}' is not configured: set the app setting '{setting}' to a connection "
        f"string (or '{setting}__queueServiceUri' for an identity-based connection)"
    )


class QueueClients:
    """One service client per connection, closed together on stop."""

    def __init__(self) -> None:
        self._services: dict[Connection, QueueServiceClient] = {}
        self._credentials: list[Any] = []

    def queue(self, connection: Connection, queue_name: str) -> QueueClient:
        service = self._services.get(connection)
        if service is None:
            if connection.connection_string:
                service = QueueServiceClient.from_connection_string(connection.connection_string)
            else:
                from azure.identity.aio import DefaultAzureCredential  # only needed for identity connections

                credential = DefaultAzureCredential(managed_identity_client_id=connection.client_id)
                self._credentials.append(credential)
                service = QueueServiceClient(connection.service_uri or "", credential=credential)
            self._services[connection] = service
        return service.get_queue_client(queue_name)

    async def close(self) -> None:
        for service in self._services.values():
            await service.close()
        for credential in self._credentials:
            await credential.close()
        self._services.clear()


async def ensure_queue(client: QueueClient) -> None:
    with contextlib.suppress(ResourceExistsError):
        await client.create_queue()


def encode(body: bytes, encoding: str) -> str:
    return base64.b64encode(body).decode("ascii") if encoding == "base64" else body.decode("utf-8")


def decode(content: str, encoding: str) -> bytes:
    if encoding == "base64":
        return base64.b64decode(content, validate=True)
    return content.encode("utf-8")


def _as_bytes(value: Any) -> list[bytes]:
    """Queue output values, as the worker accepts them: str, bytes, QueueMessage, or a list of those."""
    if isinstance(value, list):
        return [b for item in value for b in _as_bytes(item)]
    if isinstance(value, str):
        return [value.encode("utf-8")]
    if isinstance(value, bytes):
        return [value]
    if isinstance(value, QueueMessage):
        return [value.get_body()]
    raise TypeError(f"a queue output binding cannot send {type(value).__name__}")


class QueueOutputs:
    """Sends the values of ``queue`` output bindings (``func.Out`` or ``$return``)."""

    def __init__(self, clients: QueueClients, options: QueueOptions) -> None:
        self.clients = clients
        self.options = options
        self._targets: dict[int, tuple[Connection, str]] = {}

    def prepare(self, binding: OutputBinding, queue_name: str) -> None:
        self._targets[id(binding)] = (resolve_connection(binding.raw.get("connection")), queue_name)

    async def send(self, binding: OutputBinding, value: Any) -> None:
        connection, queue_name = self._targets[id(binding)]
        client = self.clients.queue(connection, queue_name)
        for body in _as_bytes(value):
            await send_creating(client, encode(body, self.options.message_encoding))


async def send_creating(client: QueueClient, content: str) -> None:
    """Send a message, creating the queue when it does not exist (as the host's bindings do)."""
    try:
        await client.send_message(content)
    except ResourceNotFoundError:
        await ensure_queue(client)
        await client.send_message(content)


class QueueListener:
    """Polls one queue for one function until stopped."""

    def __init__(
        self,
        spec: FunctionSpec,
        queue_name: str,
        connection: Connection,
        options: QueueOptions,
        invoker: Invoker,
        clients: QueueClients,
    ) -> None:
        self.spec = spec
        self.queue_name = queue_name
        self.options = options
        self.invoker = invoker
        self.client = clients.queue(connection, queue_name)
        self.poison = clients.queue(connection, f"{queue_name}-poison")
        self._in_flight: set[asyncio.Task[None]] = set()
        self._slot_freed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            await asyncio.wait_for(ensure_queue(self.client), 10)
        except Exception as exc:  # the listener retries; a storage outage must not stop the host
            log.warning("Queue '%s' could not be created yet: %s", self.queue_name, exc)
        self._task = asyncio.create_task(self._poll(), name=f"queue:{self.spec.name}")

    async def stop(self, drain: float = 10) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=drain)
        for task in list(self._in_flight):  # still running after the drain: cancel, releasing the message
            task.cancel()
        if self._in_flight:
            await asyncio.wait(self._in_flight, timeout=5)

    async def _poll(self) -> None:
        delay = MIN_POLL
        while not self._stopping.is_set():
            if len(self._in_flight) > self.options.new_batch_threshold:
                self._slot_freed.clear()
                await self._wait(self._slot_freed, None)
                continue
            try:
                messages = [
                    m
                    async for m in self.client.receive_messages(
                        max_messages=self.options.batch_size,
                        messages_per_page=self.options.batch_size,
                        visibility_timeout=LEASE,
                    )
                ]
            except Exception as exc:
                log.warning("Polling queue '%s' failed: %s", self.queue_name, exc)
                messages = []
            if messages:
                delay = MIN_POLL
                for message in messages:
                    task = asyncio.create_task(self._process(message))
                    self._in_flight.add(task)
                    task.add_done_callback(self._done)
                continue
            await self._wait(self._stopping, delay)
            delay = min(delay * 2, max(self.options.max_polling_interval, MIN_POLL))

    async def _wait(self, event: asyncio.Event, timeout: float | None) -> None:
        stop = asyncio.ensure_future(self._stopping.wait())
        other = asyncio.ensure_future(event.wait())
        await asyncio.wait({stop, other}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        other.cancel()

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._slot_freed.set()

    async def _process(self, message: StorageMessage) -> None:
        receipt = [message.pop_receipt]  # the lease renewal replaces the pop receipt
        try:
            dequeue_count = message.dequeue_count or 1
            if dequeue_count > self.options.max_dequeue_count:
                await self._to_poison(message, receipt[0])
                return
            renewal = asyncio.create_task(self._renew(message, receipt))
            try:
                ok = await self._invoke(message)
            except asyncio.CancelledError:  # host shutdown: make the message visible again right away
                await asyncio.wait_for(self.client.update_message(message.id, receipt[0], visibility_timeout=0), 5)
                raise
            finally:
                renewal.cancel()
            if ok:
                await self.client.delete_message(message.id, receipt[0])
            elif dequeue_count >= self.options.max_dequeue_count:
                await self._to_poison(message, receipt[0])
            else:
                await self.client.update_message(message.id, receipt[0], visibility_timeout=int(self.options.visibility_timeout))
        except Exception:
            log.exception("Queue '%s': bookkeeping for message %s failed", self.queue_name, message.id)

    async def _invoke(self, message: StorageMessage) -> bool:
        detail = f"Queue={self.queue_name}, MessageId={message.id}, DequeueCount={message.dequeue_count}"
        try:
            body = decode(message.content or "", self.options.message_encoding)
        except (binascii.Error, ValueError):
            log.error("Executed 'Functions.%s' (Failed, %s): the message is not valid base64", self.spec.name, detail)
            return False
        msg = QueueMessage(  # type: ignore[no-untyped-call]
            id=message.id,
            body=body,
            dequeue_count=message.dequeue_count,
            insertion_time=message.inserted_on,
            expiration_time=message.expires_on,
            time_next_visible=message.next_visible_on,
            pop_receipt=message.pop_receipt,
        )
        try:
            await self.invoker.invoke(self.spec, msg, detail=detail)
        except Exception:  # logged by the invoker
            return False
        return True

    async def _renew(self, message: StorageMessage, receipt: list[str | None]) -> None:
        while True:
            await asyncio.sleep(LEASE / 2)
            updated = await self.client.update_message(message.id, receipt[0], visibility_timeout=LEASE)
            receipt[0] = updated.pop_receipt

    async def _to_poison(self, message: StorageMessage, pop_receipt: str | None) -> None:
        await send_creating(self.poison, message.content or "")  # same encoding: the raw text is copied
        await self.client.delete_message(message.id, pop_receipt)
        log.warning(
            "Message %s has reached MaxDequeueCount of %d; moved to queue '%s-poison'",
            message.id,
            self.options.max_dequeue_count,
            self.queue_name,
        )


def manual_message(body: str) -> QueueMessage:
    """The message an admin invocation passes: the input as body, dequeue count 1."""
    now = datetime.now(UTC)
    return QueueMessage(  # type: ignore[no-untyped-call]
        id=str(uuid.uuid4()), body=body.encode("utf-8"), dequeue_count=1, insertion_time=now
    )
