"""Registering the connector for Dime.Scheduler's appointment webhooks (idempotent).

Called by the `sync_resources` timer on every run, so a lost or deleted registration comes back.

One hook per event type (Dime.Scheduler's payload does not say which event it is), each pointing at
`{CONNECTOR_PUBLIC_URL}/api/scheduler/notifications?event=created|updated|deleted&secret=<secret>`.
The hook id and a fingerprint of that URL are remembered in the `cursors` table (`webhook` /
`<event>`), so a run with nothing to do makes no write. Where Dime.Scheduler lists its hooks
(`GET /webhooks`), the list is checked too: a remembered hook it no longer has is registered again,
and a hook with exactly our URL is adopted instead of duplicated (e.g. after the cursor row was
lost). A changed URL or rotated secret replaces the old hook.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connector.errors import PlanningError
from connector.services import Services

CURSOR_PARTITION = "webhook"
EVENT_NAMES: Mapping[str, str] = {
    "AppointmentCreated": "created", "AppointmentUpdated": "updated", "AppointmentDeleted": "deleted",
}


def notification_url(services: Services, event_name: str) -> str:
    settings = services.settings
    secret = quote(settings.scheduler_webhook_secret.reveal(), safe="")
    return f"{settings.scheduler_notification_url}?event={event_name}&secret={secret}"


def _fingerprint(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()  # the URL holds the secret: never stored as such


def _live_hooks(services: Services) -> dict[str, list[dict[str, Any]]] | None:
    """Registered hooks by event, or None where Dime.Scheduler does not list them."""
    from dimescheduler.api.crud import CrudApi

    planning = services.planning
    try:
        data = planning._call("list webhooks", CrudApi(planning.client.appointments._dispatcher, "/webhooks").get_all)
    except PlanningError as exc:
        if exc.transient:
            raise
        return None  # not offered (404/405/...): the remembered hook ids are all we have
    if not isinstance(data, list):
        return None
    hooks: dict[str, list[dict[str, Any]]] = {}
    for hook in data:
        if isinstance(hook, dict):
            hooks.setdefault(str(hook.get("event") or ""), []).append(hook)
    return hooks


def ensure_scheduler_webhooks(services: Services) -> None:
    """Make sure AppointmentCreated/Updated/Deleted each post to `scheduler_notifications` exactly once."""
    cursors = services.repositories.cursors
    cursors.ensure()
    live = _live_hooks(services)
    for event, name in EVENT_NAMES.items():
        url = notification_url(services, name)
        fingerprint = _fingerprint(url)
        row = cursors.get(CURSOR_PARTITION, event)
        known_id = str(row.data.get("HookId") or "") if row else ""
        same_url = row is not None and row.data.get("Fingerprint") == fingerprint
        live_ids = {str(h.get("id")) for h in live.get(event, [])} if live is not None else None
        if known_id and same_url and (live_ids is None or known_id in live_ids):
            continue  # registered and still there
        if known_id and not same_url:
            services.planning.delete_webhook(event, known_id)  # old URL or secret: replace it
        adopted = next((str(h["id"]) for h in (live or {}).get(event, [])
                        if h.get("notificationURL") == url and h.get("id")), None)
        hook_id = adopted or services.planning.register_webhook(event, url, f"Exchange connector: appointment {name}")
        cursors.upsert(CURSOR_PARTITION, event, {"HookId": hook_id, "Fingerprint": fingerprint,
                                                 "RegisteredAt": datetime.now(UTC).isoformat()})
