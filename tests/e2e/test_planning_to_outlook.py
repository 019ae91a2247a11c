"""Planning board → Outlook, end to end: a planner's actions in the Dime.Scheduler emulator reach the
right calendars in the Graph emulator through the real webhook, queue worker and Graph batching."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connector.model import Appointment
from connector.services import Services
from connector.stores.storage import PLANNING_CHANGES_QUEUE, poison_queue_name
from connector.sync.status import TRANSACTION_PREFIX, OutlookCopy, event_span, hashes_of
from connector.sync.to_outlook import desired_event
from connector.workers.poll import INDEXED_ROW, PollResult, compare, poll_planning
from devtools.planning_tenant import Tenant, appointment, replay_webhook, setup_tenant, tag_of
from tests.e2e.conftest import Stack, wait_until

PEOPLE = ["ALICE", "BOB", "CAROL"]


@pytest.fixture(scope="module")
def tenant(start_stack: Callable[..., Stack]) -> Iterator[Tenant]:
    tenant = setup_tenant(start_stack(), PEOPLE, untracked=("DAVE",))
    yield tenant
    tenant.close()


def _utc(event: dict[str, object], which: str) -> str:
    value = event[which]
    assert isinstance(value, dict) and value["timeZone"] == "UTC"
    return str(value["dateTime"])[:19]


def test_webhooks_are_registered_once_per_event_type(tenant: Tenant) -> None:
    hooks = tenant.stack.ds_api("GET", "/webhooks").json()
    assert sorted(h["event"] for h in hooks) == ["AppointmentCreated", "AppointmentDeleted", "AppointmentUpdated"]
    assert all("/api/scheduler/notifications?event=" in h["notificationURL"] for h in hooks)
    from connector.workers.webhook_registration import ensure_scheduler_webhooks

    ensure_scheduler_webhooks(tenant.stack.services)  # a second run (as every sync_resources run does)
    assert len(tenant.stack.ds_api("GET", "/webhooks").json()) == 3
    # Lost on Dime.Scheduler's side: the next run registers it again.
    lost = next(h for h in hooks if h["event"] == "AppointmentUpdated")
    tenant.stack.ds_api("DELETE", f"/webhooks/AppointmentUpdated/{lost['id']}").raise_for_status()
    ensure_scheduler_webhooks(tenant.stack.services)
    again = tenant.stack.ds_api("GET", "/webhooks").json()
    assert sorted(h["event"] for h in again) == ["AppointmentCreated", "AppointmentDeleted", "AppointmentUpdated"]


def test_the_notification_endpoint_rejects_wrong_secrets_and_bad_payloads(tenant: Tenant) -> None:
    url = f"{tenant.stack.app.url}/api/scheduler/notifications"
    body = appointment("Probe", ["ALICE"]) | {"AppointmentGuid": "0f0f0f0f-0000-4000-8000-000000000001"}
    assert httpx.post(url, params={"event": "created"}, json=body).status_code == 401
    wrong = httpx.post(url, params={"event": "created", "secret": "nope"}, json=body)
    assert wrong.status_code == 401 and "Subject" not in wrong.text
    secret = tenant.stack.settings["SCHEDULER_WEBHOOK_SECRET"]
    missing = httpx.post(url, params={"event": "created", "secret": secret}, json={"Subject": "no guid"})
    assert missing.status_code == 400 and "AppointmentGuid" in missing.text
    bad_event = httpx.post(url, params={"event": "moved"}, headers={"X-Connector-Secret": secret}, json=body)
    assert bad_event.status_code == 400 and "event" in bad_event.text
    huge = httpx.post(url, params={"event": "created", "secret": secret}, content=b"{" + b" " * 1_100_000 + b"}")
    assert huge.status_code == 413


def test_create_move_edit_reassign_unassign_delete(tenant: Tenant) -> None:
    start = (datetime.now(UTC) + timedelta(days=3)).replace(hour=8, minute=30, second=0, microsecond=0)
    guid = tenant.create(appointment("Boiler maintenance, Main St 12", ["ALICE", "BOB", "DAVE"], start=start))

    # Created: one event in each tracked resource's calendar, none for DAVE (no Exchange integration).
    [alice] = tenant.wait_events("ALICE", guid, 1)
    [bob] = tenant.wait_events("BOB", guid, 1)
    for event in (alice, bob):
        assert event["subject"] == "Boiler maintenance, Main St 12"
        assert "see the work order" in event["body"]["content"]
        assert _utc(event, "start") == start.strftime("%Y-%m-%dT%H:%M:%S")
        assert _utc(event, "end") == (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%S")
        assert event["isAllDay"] is False and event["showAs"] == "busy" and event["importance"] == "normal"
        assert event["categories"] == ["Maintenance"]
        assert tag_of(event) == guid and str(event.get("transactionId", "")).startswith(TRANSACTION_PREFIX)
    # The mapping is saved right after Graph confirms the write (the event may show a moment earlier).
    copies = wait_until(lambda: (found := tenant.stack.services.mappings.outlook_copies(guid))
                        and all(c.event_id for c in found.values()) and found, 20, what="the mappings saved")
    assert sorted(copies) == ["ALICE", "BOB"] and copies["ALICE"].event_id == alice["id"]
    assert copies["ALICE"].change_key == alice["changeKey"]

    # Moved on the board: same events, new times.
    moved = start + timedelta(days=1, hours=2)
    tenant.patch(guid, {"StartDate": moved.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "EndDate": (moved + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%SZ")})
    want = moved.strftime("%Y-%m-%dT%H:%M:%S")
    [alice2] = tenant.wait_events("ALICE", guid, 1, check=lambda e: _utc(e, "start") == want, what="the move")
    assert alice2["id"] == alice["id"]
    assert _utc(alice2, "end") == (moved + timedelta(hours=3)).strftime("%Y-%m-%dT%H:%M:%S")
    tenant.wait_events("BOB", guid, 1, check=lambda e: _utc(e, "start") == want)

    # Edited: subject and importance.
    tenant.patch(guid, {"Subject": "Boiler replaced", "Importance": 1})
    [edited] = tenant.wait_events("ALICE", guid, 1, check=lambda e: e["subject"] == "Boiler replaced", what="the edit")
    assert edited["importance"] == "high" and _utc(edited, "start") == want

    # Re-assigned: from ALICE to CAROL (BOB stays).
    tenant.patch(guid, {"Assignments": [{"Resource": {"ResourceNo": "BOB"}}, {"Resource": {"ResourceNo": "CAROL"}}]})
    [carol] = tenant.wait_events("CAROL", guid, 1, what="the event in CAROL's calendar")
    assert carol["subject"] == "Boiler replaced"
    tenant.wait_events("ALICE", guid, 0, what="the event gone from ALICE's calendar")

    # Unassigned: BOB leaves.
    tenant.patch(guid, {"Assignments": [{"Resource": {"ResourceNo": "CAROL"}}]})
    tenant.wait_events("BOB", guid, 0, what="the event gone from BOB's calendar")
    assert len(tenant.events_of("CAROL", guid)) == 1

    # Deleted on the board: gone everywhere, mappings too.
    tenant.delete(guid)
    tenant.wait_events("CAROL", guid, 0, what="the event gone after the delete")
    wait_until(lambda: tenant.stack.services.mappings.outlook_copies(guid) == {}, what="the mappings removed")
    history = tenant.stack.services.activity.history(guid)
    applied = [e for e in history if e.outcome == "applied"]
    assert {e.action for e in applied} >= {"create", "update", "delete"}
    assert all(e.latency_ms is not None and e.latency_ms >= 0 for e in applied)


def test_all_day_appointment_stays_all_day(tenant: Tenant) -> None:
    day = (datetime.now(UTC) + timedelta(days=5)).replace(hour=0, minute=0, second=0, microsecond=0)
    guid = tenant.create(appointment("Safety training", ["CAROL"], start=day, hours=24, IsAllDayEvent=True))
    [event] = tenant.wait_events("CAROL", guid, 1)
    assert event["isAllDay"] is True
    assert _utc(event, "start") == day.strftime("%Y-%m-%dT00:00:00")
    assert _utc(event, "end") == (day + timedelta(days=1)).strftime("%Y-%m-%dT00:00:00")


def test_duplicate_concurrent_webhooks_make_exactly_one_event(tenant: Tenant) -> None:
    tenant.stack.ds_control("POST", "/webhooks/faults", json={"duplicate": 1}).raise_for_status()
    guid = tenant.create(appointment("Heat pump installation", ["ALICE", "BOB"]))
    appointment_id = tenant.stack.ds_control("GET", f"/appointments/{guid}").json()["id"]
    payload = tenant.stack.ds_api("GET", f"/appointment/{appointment_id}").json()  # by the numeric id
    with ThreadPoolExecutor(8) as pool:  # the same delivery, eight times at once
        statuses = list(pool.map(lambda _: replay_webhook(tenant, "created", payload), range(8)))
    assert statuses == [200] * 8
    tenant.wait_events("ALICE", guid, 1)
    tenant.wait_events("BOB", guid, 1)
    wait_until(tenant.queue_idle, what="the planning queue drained")
    assert len(tenant.events_of("ALICE", guid)) == 1 and len(tenant.events_of("BOB", guid)) == 1
    creates = [e for e in tenant.stack.services.activity.history(guid) if e.action == "create" and e.outcome == "applied"]
    assert sorted(e.resource_no for e in creates) == ["ALICE", "BOB"]


def test_poll_planning_repairs_missed_webhooks(tenant: Tenant) -> None:
    kept = tenant.create(appointment("Kept, then moved", ["ALICE"]))
    gone = tenant.create(appointment("Deleted while webhooks were lost", ["BOB"]))
    tenant.wait_events("ALICE", kept, 1)
    tenant.wait_events("BOB", gone, 1)
    wait_until(tenant.queue_idle, what="the planning queue drained")

    tenant.stack.ds_control("POST", "/webhooks/faults", json={"drop": 1000}).raise_for_status()
    try:
        new = tenant.create(appointment("Planned while webhooks were lost", ["CAROL"]))
        tenant.patch(kept, {"Subject": "Moved while webhooks were lost"})
        tenant.delete(gone)
    finally:
        tenant.stack.ds_control("DELETE", "/webhooks/faults").raise_for_status()
    assert tenant.events_of("CAROL", new) == [] and tenant.events_of("BOB", gone) != []

    tenant.stack.run_function("poll_planning")
    tenant.wait_events("CAROL", new, 1, what="the missed create repaired")
    tenant.wait_events("ALICE", kept, 1, check=lambda e: e["subject"] == "Moved while webhooks were lost",
                       what="the missed edit repaired")
    tenant.wait_events("BOB", gone, 0, what="the missed delete repaired")

    # In sync now: another poll enqueues nothing and writes nothing.
    wait_until(tenant.queue_idle, what="the planning queue drained")
    before = tenant.writes()
    assert _compare_everyone(tenant.stack.services).enqueued == []
    assert tenant.writes() == before


def _compare_everyone(services: Services) -> PollResult:
    """The poll's comparison over every resource in one call (the timer fans it out in slices)."""
    return compare(services, frozenset(r.resource_no for r in services.registry.all()), None, PollResult())


def test_the_poll_does_not_read_history_and_an_old_copy_is_read_once(tenant: Tenant) -> None:
    """Years of synced appointments must not make every poll read each of them, from Dime.Scheduler or
    from the table: the poll reads each mailbox's index, whose query leaves out events that ended before
    the window. The first run after an upgrade from before the index reads every copy once: one written
    before spans were recorded is read from Dime.Scheduler once and gets its span; from then on neither is
    read at all."""
    stack, mappings = tenant.stack, tenant.stack.services.mappings
    wait_until(tenant.queue_idle, what="the planning queue drained")
    long_ago = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=400)
    seeded = stack.ds_control("POST", "/seed", json={"appointments": [
        {**appointment(f"Past job {n}", ["BOB"], long_ago + timedelta(days=n)), "AppointmentGuid": guid}
        for n, guid in enumerate(("0e5d3c1a-0000-4000-8000-00000000a001", "0e5d3c1a-0000-4000-8000-00000000a002"))]})
    seeded.raise_for_status()
    for n, body in enumerate(seeded.json()["appointments"]):
        guid, numeric = str(body["AppointmentGuid"]).lower(), str(body["id"])
        current = stack.ds_api("GET", f"/appointment/{numeric}").json()
        written = desired_event(Appointment.from_payload(current), "UTC")
        span = event_span(written) if n == 0 else ("", "")  # the second one: a copy from before spans
        mappings.save_outlook_copy(OutlookCopy(guid, "BOB", tenant.user_ids["BOB"], f"dsx-{guid}", f"AAMkPast{n}=",
                                               hashes_of(written), "ck", *span))
        mappings.remember_appointment_id(guid, numeric)

    def reads() -> int:
        return sum(n for route, n in stack.ds_control("GET", "/stats").json()["requests"].items()
                   if route.startswith("GET /appointment/"))

    stack.services.repositories.cursors.delete(*INDEXED_ROW)  # as after an upgrade from before the index
    before = reads()
    first = poll_planning(stack.services)
    assert first.enqueued == [] and first.aged_out >= 1 and reads() - before == 1  # only the copy with no span
    before = reads()
    second = _compare_everyone(stack.services)  # what each slice of the timer's next run does
    assert second.enqueued == [] and second.aged_out == 0 and reads() == before
    assert second.copies <= first.copies - 2  # the two past copies are not even read from the table


def test_throttling_and_outages_converge_without_duplicates(tenant: Tenant) -> None:
    control = tenant.stack.graph_control
    control("POST", "/faults", json={"method": "POST", "route": "/v1.0/users/{id}/events", "status": 429,
                                     "retryAfter": 1, "count": 3}).raise_for_status()
    control("POST", "/faults", json={"method": "PATCH", "route": "/v1.0/users/{id}/events/{id}", "status": 503,
                                     "count": 2}).raise_for_status()
    control("POST", "/faults", json={"route": "/v1.0/$batch", "status": 429, "retryAfter": 1, "count": 1}).raise_for_status()
    try:
        guids = [tenant.create(appointment(f"Throttled {i}", ["ALICE", "CAROL"])) for i in range(4)]
        for guid in guids[:2]:
            tenant.patch(guid, {"Subject": "Throttled, then edited"})
        for guid in guids:
            for person in ("ALICE", "CAROL"):
                tenant.wait_events(person, guid, 1, timeout=60, what=f"{guid} in {person}'s calendar despite throttling")
        for guid in guids[:2]:
            tenant.wait_events("ALICE", guid, 1, timeout=60, check=lambda e: e["subject"] == "Throttled, then edited")
        wait_until(tenant.queue_idle, timeout=60, what="the planning queue drained")
    finally:
        control("DELETE", "/faults")
    stats = control("GET", "/stats").json()
    assert stats["throttled"] >= 1 and stats["faultsInjected"] >= 3
    for guid in guids:
        for person in ("ALICE", "CAROL"):
            assert len(tenant.events_of(person, guid)) == 1
    retried = [e for g in guids for e in tenant.stack.services.activity.history(g) if e.outcome == "retrying"]
    assert retried, "the throttled writes were retried through the queue"
    poison = tenant.stack.services.storage.queue(poison_queue_name(PLANNING_CHANGES_QUEUE)).peek_messages()
    assert [json.loads(m.content)["appointment_guid"] for m in poison] == []


def test_changes_that_can_never_apply_are_parked_visibly(tenant: Tenant) -> None:
    poison = tenant.stack.services.storage.queue(poison_queue_name(PLANNING_CHANGES_QUEUE))
    poison.clear_messages()
    tenant.stack.run_function("apply_planning_changes", "this is not a planning change")
    wait_until(lambda: poison.peek_messages(), what="the invalid message on the poison queue")
    [parked] = poison.peek_messages()
    assert parked.content == "this is not a planning change"
    poison.clear_messages()

    # Graph refusing the event (a 400 no retry can fix): parked at once, failed on the monitor.
    tenant.stack.graph_control("POST", "/faults", json={"method": "POST", "route": "/v1.0/users/{id}/events",
                                                        "user": "carol@contoso.example", "status": 400,
                                                        "count": 1}).raise_for_status()
    try:
        guid = tenant.create(appointment("Refused by Exchange", ["CAROL"]))
        wait_until(lambda: [m for m in poison.peek_messages() if guid in m.content], what="the refused change parked")
    finally:
        tenant.stack.graph_control("DELETE", "/faults")
    failed = [e for e in tenant.stack.services.activity.history(guid) if e.outcome == "failed"]
    assert failed and failed[0].resource_no == "CAROL" and "400" in failed[0].error
    assert "parked on planning-changes-poison" in failed[0].detail
    assert tenant.events_of("CAROL", guid) == []
