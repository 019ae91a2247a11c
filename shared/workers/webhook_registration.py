"""Registering the connector for Dime.Scheduler's appointment webhooks (idempotent).

Called by the `sync_resources` timer on every run, so a lost or deleted registration comes back.
"""

from __future__ import annotations

from shared.services import Services


def ensure_scheduler_webhooks(services: Services) -> None:
    """Make sure AppointmentCreated/Updated/Deleted each post to `scheduler_notifications` exactly once."""
    raise NotImplementedError("implemented with the planning → Outlook worker")
