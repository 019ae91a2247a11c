"""Registering the connector for Dime.Scheduler's appointment webhooks (idempotent).

Called by the `sync_resources` timer on every run, so a lost or deleted registration comes back.

Dime.Scheduler routes an appointment's webhooks by the appointment's Source App (its job's back
office: BC, CRM, ...), then by Source Type (docs: integrations/webhook): a hook registered under the
connector's own `DS_SOURCE_APP` would never hear of the planners' appointments. So the connector
registers, for each Source App it follows, one hook per event type. The Source Apps it follows:
- those listed in `DS_WEBHOOK_SOURCE_APPS`,
- those of the appointments in the planning window of the resources Dime.Scheduler marks for the
  Exchange integration (tracked or about to be: the first run, before any is tracked, finds them too),
  found at each run,
- those it registered before (a Source App with no appointment in the window today keeps its hooks).
A planner's appointment of a Source App the connector has not seen yet reaches Outlook through
`poll_planning` (the safety net), and its Source App gets hooks at the next run.

Each hook points at `{CONNECTOR_PUBLIC_URL}/api/scheduler/notifications?event=created|updated|deleted
&secret=<secret>` (the payload does not say which event it is). The hook id and a fingerprint of that
URL are remembered in the `cursors` table (`webhook` / `<event>|<source app>`), so a run with nothing
to do makes no write. Where Dime.Scheduler lists its hooks (`GET /webhooks`), the list is checked
too: a remembered hook it no longer has is registered again, and a hook with exactly our URL and
Source App is adopted instead of duplicated (e.g. after the cursor row was lost). A changed URL or
rotated secret replaces the old hook. Rows of the former one-hook-per-event scheme (`webhook` /
`<event>`, registered under `DS_SOURCE_APP`) are unregistered and dropped.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from connector.errors import PlanningError
from connector.model import Appointment, InvalidPayload
from connector.services import Services
from connector.stores.repositories import safe_key

log = logging.getLogger(__name__)

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


def _row_key(event: str, source_app: str) -> str:
    return safe_key(f"{event}|{source_app.casefold()}")


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


def _integrated_resources(services: Services) -> list[str]:
    """Numbers of the resources Dime.Scheduler marks `ExchangeIntegrationEnabled`."""
    numbers = []
    for data in services.planning.list_resources():
        enabled = _pick(data, "exchangeIntegrationEnabled")
        number = _pick(data, "resourceNo")
        if number and (enabled is True or str(enabled).lower() == "true"):
            numbers.append(str(number))
    return sorted(numbers)


def _pick(data: Any, name: str) -> Any:
    if not isinstance(data, Mapping):
        return None
    return next((v for k, v in data.items() if isinstance(k, str) and k.casefold() == name.casefold()), None)


def window_source_apps(services: Services, now: datetime | None = None) -> list[str]:
    """The Source Apps of the appointments in the planning window of the integrated resources."""
    resources = _integrated_resources(services)
    if not resources:
        return []
    settings = services.settings
    moment = now or datetime.now(UTC)
    start = moment - timedelta(days=settings.sync_window_past_days)
    end = moment + timedelta(days=settings.sync_window_future_days)
    found: dict[str, str] = {}
    for data in services.planning.appointments(start, end, resources):
        try:
            source_app = Appointment.from_payload(data).source_app
        except InvalidPayload:
            continue  # the poll reports unreadable appointments
        if source_app and len(source_app) <= 30:
            found.setdefault(source_app.casefold(), source_app)
    return list(found.values())


def followed_source_apps(services: Services, remembered: list[str]) -> list[str]:
    """Configured, then remembered, then discovered Source Apps; case-insensitively distinct."""
    found: dict[str, str] = {}
    for name in (*services.settings.planning.webhook_source_apps, *remembered, *window_source_apps(services)):
        found.setdefault(name.casefold(), name)
    return list(found.values())


def ensure_scheduler_webhooks(services: Services) -> list[str]:
    """Make sure each followed Source App has exactly one hook per event type posting to
    `scheduler_notifications`; returns the Source Apps followed."""
    cursors = services.repositories.cursors
    cursors.ensure()
    rows = list(cursors.partition(CURSOR_PARTITION))
    live = _live_hooks(services)
    for row in rows:
        if row.row_key in EVENT_NAMES:  # the former scheme: one hook per event under DS_SOURCE_APP
            if row.data.get("HookId"):
                services.planning.delete_webhook(row.row_key, str(row.data["HookId"]))
            cursors.delete(CURSOR_PARTITION, row.row_key)
    remembered = [str(r.data["SourceApp"]) for r in rows if r.row_key not in EVENT_NAMES and r.data.get("SourceApp")]
    source_apps = followed_source_apps(services, remembered)
    for source_app in source_apps:
        for event, name in EVENT_NAMES.items():
            _ensure_one(services, live, event, name, source_app)
    return source_apps


def _ensure_one(services: Services, live: dict[str, list[dict[str, Any]]] | None, event: str, name: str,
                source_app: str) -> None:
    cursors = services.repositories.cursors
    url = notification_url(services, name)
    fingerprint = _fingerprint(url)
    key = _row_key(event, source_app)
    row = cursors.get(CURSOR_PARTITION, key)
    known_id = str(row.data.get("HookId") or "") if row else ""
    same_url = row is not None and row.data.get("Fingerprint") == fingerprint
    live_ids = {str(h.get("id")) for h in live.get(event, [])} if live is not None else None
    if known_id and same_url and (live_ids is None or known_id in live_ids):
        return  # registered and still there
    if known_id and not same_url:
        services.planning.delete_webhook(event, known_id)  # old URL or secret: replace it
    adopted = next((str(h["id"]) for h in (live or {}).get(event, [])
                    if h.get("notificationURL") == url and h.get("id")
                    and str(h.get("sourceApp") or "").casefold() == source_app.casefold()), None)
    hook_id = adopted or services.planning.register_webhook(
        event, url, f"Exchange connector: {source_app} appointment {name}", source_app)
    cursors.upsert(CURSOR_PARTITION, key, {"HookId": hook_id, "Fingerprint": fingerprint, "SourceApp": source_app,
                                           "RegisteredAt": datetime.now(UTC).isoformat()})
    log.info("registered the %s webhook for Source App %s", event, source_app)
