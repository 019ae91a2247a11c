"""End to end: `DS_WEBHOOK_SOURCE_APPS` lists the Source Apps the connector follows before any of their
appointments is in the planning window; a hook of the former scheme (one per event, under
`DS_SOURCE_APP`, which Dime.Scheduler's routing never feeds) is unregistered."""

from __future__ import annotations

from collections.abc import Callable

from connector.workers.webhook_registration import CURSOR_PARTITION, ensure_scheduler_webhooks, notification_url
from devtools.planning_tenant import appointment, setup_tenant
from tests.e2e.conftest import Stack

PERSON = "SA-CLEO"


def test_listed_source_apps_get_hooks_and_the_former_hooks_go(start_stack: Callable[..., Stack]) -> None:
    stack = start_stack(DS_WEBHOOK_SOURCE_APPS="CRM; ERP")
    tenant = setup_tenant(stack, [PERSON])  # tracks Cleo and registers the webhooks, as sync_resources does
    try:
        hooks = stack.ds_api("GET", "/webhooks").json()
        assert sorted((h["sourceApp"], h["event"]) for h in hooks) == sorted(
            (app, event) for app in ("CRM", "ERP")
            for event in ("AppointmentCreated", "AppointmentUpdated", "AppointmentDeleted"))

        # A connector upgraded from one hook per event under its own Source App.
        services = stack.services
        legacy = services.planning.register_webhook("AppointmentCreated", notification_url(services, "created"),
                                                    "Exchange connector: appointment created")
        services.repositories.cursors.upsert(CURSOR_PARTITION, "AppointmentCreated", {"HookId": legacy})
        ensure_scheduler_webhooks(services)
        after = stack.ds_api("GET", "/webhooks").json()
        assert legacy not in {h["id"] for h in after}
        assert {h["sourceApp"] for h in after} == {"CRM", "ERP"} and len(after) == 6
        assert services.repositories.cursors.get(CURSOR_PARTITION, "AppointmentCreated") is None

        guid = tenant.create(appointment("ERP work order", [PERSON], Task={
            "TaskNo": "T-9", "Job": {"SourceApp": "ERP", "SourceType": "WO", "JobNo": "WO-1"}}))
        tenant.wait_events(PERSON, guid, 1, what="the ERP appointment in Outlook by its webhook")
    finally:
        tenant.close()
