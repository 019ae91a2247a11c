"""Queue senders for the two work queues (Azure Storage queues through azure-storage-queue).

`exchange-changes` carries two message kinds: `ExchangeChange` (a mailbox's delta round) and
`SubscriptionLifecycle` (a renewal or recreation the lifecycle webhook hands off); no extra queue,
so nothing new to provision, monitor or grant.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, replace

from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError

from connector.messages import ExchangeChange, PlanningChange, PollSlice, ResourceCheck, SubscriptionLifecycle
from connector.stores.storage import (
    EXCHANGE_CHANGES_QUEUE,
    PLANNING_CHANGES_QUEUE,
    WORK_QUEUES,
    StorageClients,
    poison_queue_name,
)
from connector.telemetry import current_trace_context


@dataclass(frozen=True)
class Sent:
    """A message as sent: enough to delete it again while nobody has taken it (see `WorkQueues.cancel`)."""

    queue: str
    message_id: str
    pop_receipt: str


def send_text(clients: StorageClients, queue: str, content: str, delay_seconds: int | None = None) -> Sent:
    """Send one message, creating the queue the first time (a fresh storage account, or a poison
    queue nothing has written to yet)."""
    client = clients.queue(queue)
    try:
        sent = client.send_message(content, visibility_timeout=delay_seconds)
    except ResourceNotFoundError:
        with contextlib.suppress(ResourceExistsError):
            client.create_queue()
        sent = client.send_message(content, visibility_timeout=delay_seconds)
    return Sent(queue, str(sent.id), str(sent.pop_receipt))


class WorkQueues:
    """Enqueues work for the queue-triggered workers; messages are base64 text like the host expects."""

    def __init__(self, clients: StorageClients) -> None:
        self._clients = clients

    def ensure(self) -> None:
        """Create the work queues and their poison queues if missing (idempotent)."""
        for name in WORK_QUEUES:
            for queue in (name, poison_queue_name(name)):
                with contextlib.suppress(ResourceExistsError):
                    self._clients.queue(queue).create_queue()

    def send_exchange_change(self, message: ExchangeChange, delay_seconds: int | None = None) -> Sent:
        message = replace(message, trace_context=message.trace_context or current_trace_context())
        return send_text(self._clients, EXCHANGE_CHANGES_QUEUE, message.to_json(), delay_seconds)

    def send_lifecycle(self, message: SubscriptionLifecycle, delay_seconds: int | None = None) -> None:
        """Lifecycle work travels on `exchange-changes` too (its worker tells the kinds apart)."""
        message = replace(message, trace_context=message.trace_context or current_trace_context())
        send_text(self._clients, EXCHANGE_CHANGES_QUEUE, message.to_json(), delay_seconds)

    def send_resource_check(self, message: ResourceCheck) -> None:
        """`sync_resources`' per-resource checks travel on `exchange-changes` too."""
        message = replace(message, trace_context=message.trace_context or current_trace_context())
        send_text(self._clients, EXCHANGE_CHANGES_QUEUE, message.to_json())

    def send_poll_slice(self, message: PollSlice) -> None:
        """`poll_planning`'s slices travel on `planning-changes` (its worker tells the kinds apart)."""
        message = replace(message, trace_context=message.trace_context or current_trace_context())
        send_text(self._clients, PLANNING_CHANGES_QUEUE, message.to_json())

    def send_planning_change(self, message: PlanningChange, delay_seconds: int | None = None) -> None:
        message = replace(message, trace_context=message.trace_context or current_trace_context())
        send_text(self._clients, PLANNING_CHANGES_QUEUE, message.to_json(), delay_seconds)

    def cancel(self, sent: Sent) -> bool:
        """Delete a message nobody has taken yet; False when it was taken (or is gone) already."""
        try:
            self._clients.queue(sent.queue).delete_message(sent.message_id, sent.pop_receipt)
        except (ResourceNotFoundError, HttpResponseError):
            return False  # dequeued meanwhile (its pop receipt changed) or deleted: it runs, or ran
        return True

    def depth(self, queue: str) -> int:
        """Approximate number of messages waiting (for the monitor and health)."""
        return int(self._clients.queue(queue).get_queue_properties().approximate_message_count or 0)
