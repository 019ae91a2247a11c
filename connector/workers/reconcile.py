"""The `reconcile_exchange` timer: the safety net for missed Graph notifications.

Every tracked mailbox with a Graph user gets one delta round (an `exchange-changes` message); the
round itself, with its lease and delta link, is the exchange-changes worker's.
"""

from __future__ import annotations

from connector.messages import ExchangeChange
from connector.services import Services
from connector.stores.registry import Status


def reconcile_exchange(app: Services) -> int:
    """Enqueue one delta round per tracked mailbox; returns how many were enqueued."""
    records = [r for r in app.registry.all() if r.status == Status.TRACKED and r.user_id]
    for record in records:
        app.work_queues.send_exchange_change(ExchangeChange(user_id=record.user_id, reason="reconcile"))
    return len(records)
