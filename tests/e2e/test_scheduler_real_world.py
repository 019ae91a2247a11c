"""End to end against Dime.Scheduler's real-world behaviour (issue 10): the connector under the dev host with
the emulator at its strict defaults, and under each knob variant (set at run time through
`PATCH /_emulator/config`, restored after each test).

- Webhooks are routed by the appointment's Source App: the connector registers hooks for the Source
  Apps in the planning window (here `DS_WEBHOOK_SOURCE_APPS` is empty), and the poll brings what a
  Source App without hooks yet changed.
- Import answers: every envelope variant; a failure inside an HTTP 200 is retried (5xx) or recorded
  as failed (4xx), never as applied.
- The Exchange procedures get exactly their parameters (the emulator refuses any other).
- Payloads without `IsAllDayEvent` / `CreatedByExchange`: echo suppression and all-day still work.
- `GET /appointment/{id}` by numeric id only, the 201 with only a `Location`, dates with or without
  an offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.messages import ExchangeChange
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE
from connector.sync.to_planning import board_guid
from connector.workers.webhook_registration import CURSOR_PARTITION, ensure_scheduler_webhooks
from devtools.planning_tenant import Tenant, appointment, email, setup_tenant
from tests.e2e.conftest import Stack, wait_until

ANN, BEN = "RW-ANN", "RW-BEN"
TIMEOUT = 60  # generous bound for a shared machine: a poll, not a timing assertion


def job(source_app: str) -> dict[str, Any]:
    return {"Task": {"TaskNo": "T-1", "Job": {"SourceApp": source_app, "SourceType": "SVC", "JobNo": "J-7"}}}


def gtime(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def day_after(days: int, hour: int = 9) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


@pytest.fixture(scope="module")
def stack(start_stack: Callable[..., Stack]) -> Stack:
    return start_stack(DS_WEBHOOK_SOURCE_APPS="", WORK_MAX_ATTEMPTS="4")


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> Iterator[Tenant]:
    tenant = setup_tenant(stack, [ANN, BEN], register=False)
    # A BC job already planned: sync_resources finds its Source App in the planning window.
    tenant.create(appointment("Existing BC job", [ANN], **job("BC")))
    stack.run_function("sync_resources")
    wait_until(lambda: len(stack.services.registry.tracked()) == 2
               and all(r.subscription_id for r in stack.services.registry.all() if r.resource_no in (ANN, BEN)),
               TIMEOUT, what="both resources tracked and subscribed")
    wait_until(lambda: idle(stack), TIMEOUT, what="the first full sync done")
    yield tenant
    tenant.close()
    stack.ds_control("DELETE", "/faults").raise_for_status()
    stack.ds_control("DELETE", "/webhooks/faults").raise_for_status()


def idle(stack: Stack) -> bool:
    """Nothing left to happen: both work queues empty and neither emulator still delivering a webhook or a
    notification (an Outlook write's echo is on its way to the connector before it reaches a queue)."""
    queues = stack.services.work_queues
    return (queues.depth(PLANNING_CHANGES_QUEUE) == 0 and queues.depth(EXCHANGE_CHANGES_QUEUE) == 0
            and stack.graph_control("GET", "/stats").json()["delivery"]["pending"] == 0
            and stack.ds_control("GET", "/stats").json()["webhooks"]["pending"] == 0)


def hooks(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.ds_api("GET", "/webhooks").json())


def delivered(stack: Stack) -> int:
    return int(stack.ds_control("GET", "/stats").json()["webhooks"]["delivered"])


def outlook_event(stack: Stack, resource_no: str, subject: str, start: datetime, **fields: Any) -> dict[str, Any]:
    body = {"subject": subject, "start": gtime(start), "end": gtime(start + timedelta(hours=1)), "showAs": "busy",
            "body": {"contentType": "text", "content": f"{subject}: notes"}, **fields}
    response = stack.graph_api("POST", f"/users/{email(resource_no)}/events", json=body,
                               headers={"Prefer": 'IdType="ImmutableId"'})
    assert response.status_code == 201, response.text
    return dict(response.json())


def on_board(stack: Stack, event_id: str) -> dict[str, Any] | None:
    items = stack.ds_control("GET", "/appointments").json()
    return next((a for a in items if a.get("ExchangeId") == event_id), None)


# --- 9. routing by Source App --------------------------------------------------------------------------------
def test_hooks_follow_the_source_apps_of_the_planning_window(tenant: Tenant) -> None:
    stack = tenant.stack
    registered = hooks(stack)
    assert sorted((h["sourceApp"], h["event"]) for h in registered) == [
        ("BC", "AppointmentCreated"), ("BC", "AppointmentDeleted"), ("BC", "AppointmentUpdated")]
    before = delivered(stack)
    guid = tenant.create(appointment("Boiler service", [ANN], **job("BC")))
    tenant.wait_events(ANN, guid, 1, what="the BC appointment in Ann's Outlook (by its webhook)")
    assert delivered(stack) > before
    ensure_scheduler_webhooks(stack.services)  # the next sync_resources run changes nothing
    assert [h["id"] for h in hooks(stack)] == [h["id"] for h in registered]


def test_a_source_app_without_hooks_comes_by_the_poll_and_gets_hooks_next_run(tenant: Tenant) -> None:
    stack = tenant.stack
    before = delivered(stack)
    first = tenant.create(appointment("CRM visit", [BEN], **job("CRM")))
    wait_until(lambda: idle(stack), TIMEOUT, what="nothing queued")
    assert delivered(stack) == before and tenant.events_of(BEN, first) == []  # no hook routes CRM yet
    stack.run_function("poll_planning")
    tenant.wait_events(BEN, first, 1, what="the CRM appointment brought by the poll")
    stack.run_function("sync_resources")
    wait_until(lambda: {h["sourceApp"] for h in hooks(stack)} == {"BC", "CRM"}, TIMEOUT,
               what="hooks for CRM, found in the planning window")
    second = tenant.create(appointment("CRM follow-up", [BEN], **job("crm")))
    tenant.wait_events(BEN, second, 1, what="the next CRM appointment by its webhook")


def test_every_hook_getting_everything_still_makes_one_event(tenant: Tenant, knobs: Callable[..., None]) -> None:
    knobs(webhook_routing="all")
    before = delivered(tenant.stack)
    guid = tenant.create(appointment("Unrouted", [ANN], **job("BC")))
    tenant.wait_events(ANN, guid, 1)
    wait_until(lambda: delivered(tenant.stack) >= before + 2, TIMEOUT, what="the delivery to every Created hook")
    wait_until(lambda: idle(tenant.stack), TIMEOUT, what="the duplicates processed")
    assert len(tenant.events_of(ANN, guid)) == 1


# --- 10 + 11. import answers, exact parameters ------------------------------------------------------------------
ENVELOPES = [
    pytest.param({}, id="default-pascal-string-failures-as-200"),
    pytest.param({"import_envelope_casing": "camel"}, id="camel"),
    pytest.param({"import_content_as_object": True}, id="content-object"),
    pytest.param({"import_failure_as_http_200": False}, id="failures-as-http-status"),
]


@pytest.mark.parametrize("variant", ENVELOPES)
def test_outlook_items_reach_the_board_and_leave_it_under_each_envelope(
        tenant: Tenant, knobs: Callable[..., None], variant: dict[str, Any]) -> None:
    knobs(**variant)
    stack = tenant.stack
    made = outlook_event(stack, ANN, f"Dentist {sorted(variant)}", day_after(3, 14), location={"displayName": "Dr X"})
    item = wait_until(lambda: on_board(stack, made["id"]), TIMEOUT, what="the Outlook item on the board")
    assert item["CreatedByExchange"] is True and item["Location"] is None  # exactly the procedure's parameters
    user_id = tenant.user_ids[ANN]
    assert stack.services.mappings.by_event(user_id, made["id"]) is not None
    stack.graph_api("DELETE", f"/users/{user_id}/events/{made['id']}").raise_for_status()
    wait_until(lambda: on_board(stack, made["id"]) is None, TIMEOUT, what="the deletion on the board")
    wait_until(lambda: stack.services.mappings.by_event(user_id, made["id"]) is None, TIMEOUT, what="mapping gone")


@pytest.mark.parametrize("as_200", [True, False], ids=["inside-http-200", "as-http-status"])
def test_a_throttled_import_is_retried_until_applied(tenant: Tenant, knobs: Callable[..., None], as_200: bool) -> None:
    knobs(import_failure_as_http_200=as_200)
    stack = tenant.stack
    stack.ds_control("POST", "/faults", json={"route": "/import", "status": 503, "envelope": True,
                                             "retryAfter": 1, "count": 2}).raise_for_status()
    made = outlook_event(stack, BEN, f"Workshop {as_200}", day_after(4))
    wait_until(lambda: on_board(stack, made["id"]), TIMEOUT, what="the item on the board after the retries")
    assert stack.ds_control("GET", "/faults").json() == []  # both failures were met
    history = [e for e in stack.services.activity.recent(days=1) if e.resource_no == BEN and e.outcome == "retrying"]
    assert history, "the failed import was recorded as retrying"


@pytest.mark.parametrize("as_200", [True, False], ids=["inside-http-200", "as-http-status"])
def test_a_refused_import_is_failed_never_applied(tenant: Tenant, knobs: Callable[..., None], as_200: bool) -> None:
    knobs(import_failure_as_http_200=as_200)
    stack = tenant.stack
    user_id = tenant.user_ids[ANN]
    stack.ds_control("POST", "/faults", json={"route": "/import", "status": 400, "envelope": True,
                                             "count": 1}).raise_for_status()
    made = outlook_event(stack, ANN, f"Refused {as_200}", day_after(5))
    failed = wait_until(lambda: [e for e in stack.services.activity.recent(days=1)
                                 if e.event_id == made["id"] and e.outcome == "failed"], TIMEOUT,
                        what="the refused import recorded as failed")
    assert "injected fault" in failed[0].error
    wait_until(lambda: idle(stack), TIMEOUT, what="the round finished")
    assert on_board(stack, made["id"]) is None
    assert stack.services.mappings.by_event(user_id, made["id"]) is None  # not recorded as applied
    # Parked as that item (the mailbox's delta link has moved past it): the monitor's Retry applies it.
    [parked] = [row for row in stack.services.monitor.failed() if made["id"] in row.get("eventIds", [])]
    assert parked["queue"] == EXCHANGE_CHANGES_QUEUE and parked["reason"] == "item"
    stack.services.monitor.retry(EXCHANGE_CHANGES_QUEUE, parked["id"])
    wait_until(lambda: (on_board(stack, made["id"]) or {}).get("Subject") == f"Refused {as_200}", TIMEOUT,
               what="the parked item on the board after the monitor's Retry")
    assert not [row for row in stack.services.monitor.failed() if made["id"] in row.get("eventIds", [])]
    # The next change of the item goes through as well.
    stack.graph_api("PATCH", f"/users/{user_id}/events/{made['id']}", json={"subject": "Refused, then fine"},
                    headers={"Prefer": 'IdType="ImmutableId"'}).raise_for_status()
    wait_until(lambda: (on_board(stack, made["id"]) or {}).get("Subject") == "Refused, then fine", TIMEOUT,
               what="the item on the board after its next change")


@pytest.mark.parametrize("partial", [True, False], ids=["calls-before-the-refused-one-stay", "all-or-nothing"])
def test_a_page_whose_import_is_refused_goes_again_item_by_item(tenant: Tenant, knobs: Callable[..., None],
                                                                partial: bool) -> None:
    """A full round's page goes to the board in one `/import`; Dime.Scheduler refuses one of its calls (here:
    the item's board GUID is a planner's appointment, which the Exchange procedure may not touch). Whether
    the calls before it stay is undocumented: under either, the others reach the board, the refused item is
    parked as itself and the planner's appointment is untouched."""
    knobs(import_batch_partial=partial)
    stack = tenant.stack
    user_id = tenant.user_ids[ANN]
    subjects = [f"Batch {partial} {n}" for n in range(3)]
    bodies = [{"subject": subject, "start": gtime(day_after(6, 8 + n)), "end": gtime(day_after(6, 9 + n)),
               "showAs": "busy"} for n, subject in enumerate(subjects)]
    seeded = stack.graph_control("POST", "/seed", json={"events": {email(ANN): bodies}})  # no notifications
    seeded.raise_for_status()
    ids = [e["immutableId"] for e in seeded.json()["events"][email(ANN)]]
    clash = board_guid(user_id, ids[1])
    stack.ds_control("POST", "/seed", json={"appointments": [
        {**appointment("Planner's job", [BEN], day_after(6)), "AppointmentGuid": clash}]}).raise_for_status()
    imports = stack.stats("scheduler").get("POST /import", 0)
    stack.run_function("apply_exchange_changes",
                       ExchangeChange(user_id, reason="resync", full_resync=True).to_json())
    wait_until(lambda: on_board(stack, ids[0]) and on_board(stack, ids[2]), TIMEOUT,
               what="the page's other items on the board")
    wait_until(lambda: idle(stack), TIMEOUT, what="the round finished")
    assert stack.stats("scheduler").get("POST /import", 0) - imports == 4  # the page, then its 3 items one by one
    assert on_board(stack, ids[1]) is None
    planner = [a for a in stack.ds_control("GET", "/appointments").json() if a["AppointmentGuid"].lower() == clash]
    assert [a["Subject"] for a in planner] == ["Planner's job"]
    [parked] = [row for row in stack.services.monitor.failed() if ids[1] in row.get("eventIds", [])]
    assert parked["queue"] == EXCHANGE_CHANGES_QUEUE and parked["reason"] == "item"
    # The refused item leaves the mailbox, so the next test's full round meets only its own.
    stack.graph_api("DELETE", f"/users/{user_id}/events/{ids[1]}").raise_for_status()
    wait_until(lambda: idle(stack), TIMEOUT, what="the deletion's round finished")


# --- 12. payloads without the Outlook flags -------------------------------------------------------------------
@pytest.mark.parametrize("outlook_fields", [False, True], ids=["published-schema", "with-outlook-fields"])
def test_an_imported_outlook_item_is_never_written_back(
        tenant: Tenant, knobs: Callable[..., None], outlook_fields: bool) -> None:
    # Outlook items have no Source App: "all" routing is what makes their webhooks reach the connector.
    knobs(webhook_routing="all", payload_outlook_fields=outlook_fields)
    stack = tenant.stack
    wait_until(lambda: idle(stack), TIMEOUT, what="quiet before")
    writes = tenant.writes()
    before = delivered(stack)
    made = outlook_event(stack, BEN, f"Made in Outlook {outlook_fields}", day_after(6))
    item = wait_until(lambda: on_board(stack, made["id"]), TIMEOUT, what="the Outlook item on the board")
    guid = str(item["AppointmentGuid"]).lower()
    wait_until(lambda: delivered(stack) > before, TIMEOUT, what="the import's webhook delivered")
    wait_until(lambda: any(e.action == "skip" for e in stack.services.activity.history(guid)), TIMEOUT,
               what="the import's webhook skipped by the planning worker")
    wait_until(lambda: idle(stack), TIMEOUT, what="both queues drained")
    assert tenant.writes() == writes + 1  # the person's own event, and nothing from the connector
    assert stack.services.mappings.outlook_copies(guid) == {}


@pytest.mark.parametrize(("outlook_fields", "flag", "hour", "hours", "all_day"), [
    pytest.param(False, None, 0, 24, True, id="no-flag-whole-utc-day"),
    pytest.param(False, None, 0, 48, True, id="no-flag-two-whole-days"),
    pytest.param(False, None, 9, 24, False, id="no-flag-24h-not-at-midnight"),
    pytest.param(True, False, 0, 24, False, id="flag-false-wins-over-midnight"),
    pytest.param(True, True, 0, 24, True, id="flag-true"),
])
def test_all_day_is_read_with_or_without_the_flag(tenant: Tenant, knobs: Callable[..., None], outlook_fields: bool,
                                                  flag: bool | None, hour: int, hours: int, all_day: bool) -> None:
    knobs(payload_outlook_fields=outlook_fields)
    start = day_after(7, hour)
    fields = job("BC") | ({} if flag is None else {"IsAllDayEvent": flag})
    guid = tenant.create(appointment(f"Training {hours} {flag}", [ANN], start=start, hours=hours, **fields))
    [event] = tenant.wait_events(ANN, guid, 1)
    assert event["isAllDay"] is all_day


# --- 13. numeric id, the 201, dates ------------------------------------------------------------------------
@pytest.mark.parametrize("lookup", ["id", "id_or_guid"])
def test_changes_and_missed_webhooks_are_read_by_numeric_id(
        tenant: Tenant, knobs: Callable[..., None], lookup: str) -> None:
    knobs(appointment_lookup=lookup)
    stack = tenant.stack
    guid = tenant.create(appointment(f"Inspection {lookup}", [ANN], **job("BC")))
    tenant.wait_events(ANN, guid, 1)
    tenant.patch(guid, {"Subject": f"Inspection {lookup}, moved"})
    tenant.wait_events(ANN, guid, 1, check=lambda e: e["subject"].endswith("moved"))
    # Missed webhooks: the poll repairs them, reading by the id kept in the mappings.
    stack.ds_control("POST", "/webhooks/faults", json={"drop": 2}).raise_for_status()
    tenant.patch(guid, {"Subject": f"Inspection {lookup}, missed"})
    stack.run_function("poll_planning")
    tenant.wait_events(ANN, guid, 1, check=lambda e: e["subject"].endswith("missed"))
    # Deleted with the webhook missed: the poll does not find it in the window and asks for it by its id.
    stack.ds_control("POST", "/webhooks/faults", json={"drop": 1}).raise_for_status()
    tenant.delete(guid)
    stack.run_function("poll_planning")
    tenant.wait_events(ANN, guid, 0, what="the deletion repaired by the poll")


@pytest.mark.parametrize("answer", ["location", "body"])
def test_hooks_are_registered_whichever_way_the_201_answers(
        tenant: Tenant, knobs: Callable[..., None], answer: str) -> None:
    knobs(webhook_created_answer=answer)
    stack = tenant.stack
    for hook in hooks(stack):
        stack.ds_api("DELETE", f"/webhooks/{hook['event']}/{hook['id']}").raise_for_status()
    ensure_scheduler_webhooks(stack.services)
    live = {(h["event"], h["sourceApp"]): h["id"] for h in hooks(stack)}
    assert len(live) == len(set(live)) and {s for _, s in live} >= {"BC"}
    rows = {r.data["HookId"] for r in stack.services.repositories.cursors.partition(CURSOR_PARTITION)}
    assert rows == set(live.values())
    guid = tenant.create(appointment(f"After re-registering ({answer})", [BEN], **job("BC")))
    tenant.wait_events(BEN, guid, 1)


@pytest.mark.parametrize("dates", ["naive", "utc_z", "offset"])
def test_payload_dates_with_or_without_an_offset(tenant: Tenant, knobs: Callable[..., None], dates: str) -> None:
    knobs(payload_dates=dates, payload_offset_minutes=120)
    start = day_after(9, 13)
    guid = tenant.create(appointment(f"Dates {dates}", [BEN], start=start, hours=1.5, **job("BC")))
    [event] = tenant.wait_events(BEN, guid, 1)
    assert event["start"] == {"dateTime": start.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}
    assert event["end"]["dateTime"].startswith((start + timedelta(hours=1.5)).strftime("%Y-%m-%dT%H:%M:%S"))
