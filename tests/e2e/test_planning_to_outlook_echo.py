"""Echo suppression across both directions: the Graph notifications caused by the planning → Outlook
writes come back to the connector (and are replayed once more), and Dime.Scheduler receives no write."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx

from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE
from devtools.planning_tenant import appointment, email, setup_tenant
from devtools.scheduler_emulator import SchedulerEmulatorConfig
from tests.e2e.conftest import Stack, wait_until

PEOPLE = ["ECHO-ALICE", "ECHO-BOB"]


def test_notifications_about_the_connectors_own_writes_write_nothing_back(start_stack: Callable[..., Stack]) -> None:
    # Outlook items on the board have no Source App, so Dime.Scheduler's routing sends their webhooks
    # to no hook; "all" routing makes the import's webhook reach the connector, which is what the last
    # part checks (tests/e2e/test_scheduler_real_world.py covers the routed default).
    stack = start_stack(scheduler_config=SchedulerEmulatorConfig(webhook_routing="all"))
    tenant = setup_tenant(stack, PEOPLE, register=False)
    try:
        queues = stack.services.work_queues

        def idle() -> bool:
            return queues.depth(PLANNING_CHANGES_QUEUE) == 0 and queues.depth(EXCHANGE_CHANGES_QUEUE) == 0

        # sync_resources (the Outlook → planning side) tracks both, subscribes to their calendars and
        # registers the Dime.Scheduler webhooks.
        stack.run_function("sync_resources")
        wait_until(lambda: all(r.subscription_id for r in stack.services.registry.all() if r.resource_no in PEOPLE)
                   and len(stack.services.registry.tracked()) == 2, timeout=30, what="both resources tracked and subscribed")
        wait_until(idle, timeout=30, what="the first full sync done")
        stack.ds_control("POST", "/stats/reset").raise_for_status()
        delivered_before = stack.graph_control("GET", "/stats").json()["notifications"]["delivered"]

        guid = tenant.create(appointment("Echo check", PEOPLE))
        tenant.wait_events("ECHO-ALICE", guid, 1)
        tenant.patch(guid, {"Subject": "Echo check, moved", "Importance": 2})
        tenant.wait_events("ECHO-BOB", guid, 1, check=lambda e: e["subject"] == "Echo check, moved")
        gone = tenant.create(appointment("Echo check, deleted", ["ECHO-BOB"]))
        tenant.wait_events("ECHO-BOB", gone, 1)
        tenant.delete(gone)
        tenant.wait_events("ECHO-BOB", gone, 0)

        # Graph notified the connector of each of those writes; all of them were processed.
        wait_until(lambda: stack.graph_control("GET", "/stats").json()["notifications"]["delivered"] >= delivered_before + 5,
                   timeout=30, what="Graph's notifications about the connector's writes delivered")
        wait_until(idle, timeout=30, what="both work queues drained")
        assert stack.stats("scheduler").get("POST /import", 0) == 0
        assert stack.ds_control("GET", "/stats").json()["procedures"] == {}

        # Graph delivering the same notifications again (at least once): still nothing written anywhere.
        writes = tenant.writes()
        deliveries = [d for d in stack.graph_control("GET", "/notifications").json()["value"]
                      if d.get("kind") != "lifecycle" and d.get("items") and d.get("status") == 202]
        assert deliveries
        for delivery in deliveries:
            response = httpx.post(delivery["url"], json={"value": delivery["items"]}, timeout=30)
            assert response.status_code == 202, response.text
        wait_until(idle, timeout=30, what="the replayed notifications processed")
        assert stack.ds_control("GET", "/stats").json()["procedures"] == {}
        assert tenant.writes() == writes
        assert len(tenant.events_of("ECHO-ALICE", guid)) == 1 and len(tenant.events_of("ECHO-BOB", guid)) == 1

        # The other way round: an item made in Outlook is imported to the board, whose webhook comes to the
        # planning worker, which writes nothing to Outlook for it.
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
        made = stack.graph_api("POST", f"/users/{email('ECHO-ALICE')}/events", json={
            "subject": "Made in Outlook", "start": {"dateTime": start.isoformat()[:19], "timeZone": "UTC"},
            "end": {"dateTime": (start + timedelta(hours=1)).isoformat()[:19], "timeZone": "UTC"}, "showAs": "busy"})
        assert made.status_code == 201, made.text
        writes = tenant.writes()
        board = wait_until(lambda: [a for a in stack.ds_control("GET", "/appointments").json()
                                    if a.get("Subject") == "Made in Outlook"], timeout=30, what="the Outlook item on the board")
        imported = str(board[0]["AppointmentGuid"]).lower()
        wait_until(lambda: any(e.action == "skip" for e in stack.services.activity.history(imported)), timeout=30,
                   what="the import's webhook seen by the planning worker")
        wait_until(idle, timeout=30, what="both work queues drained")
        assert tenant.writes() == writes
        assert [e["subject"] for e in tenant.events("ECHO-ALICE") if e["subject"] == "Made in Outlook"] == ["Made in Outlook"]
        assert stack.services.mappings.outlook_copies(imported) == {}
    finally:
        tenant.close()
