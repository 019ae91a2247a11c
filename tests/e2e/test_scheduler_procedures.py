"""End to end against two undocumented points of Dime.Scheduler's import procedures, each knob value of the
emulator (`PATCH /_emulator/config`, restored after each test), the connector under
`OUTLOOK_EDIT_POLICY=update_planning`:

- `blank_parameter`: does a blank Subject, Body or Categories of `mboc_upsertExchangeAppointment` clear the
  field (`clears`) or count as not given (`keeps`, the default)? An Outlook item turning private (masked by
  default) must lose its body and categories on the board under both.
- `update_without_id`: `mboc_upsertAppointment` without an `AppointmentId` inserts (`inserts`, as the docs
  say, the default) or updates by GUID (`by_guid`)? A person's edit must reach the planner's appointment,
  and the job must still have exactly one appointment, under both.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE
from devtools.planning_tenant import Tenant, appointment, email, setup_tenant
from devtools.scheduler_emulator import SchedulerEmulatorConfig
from tests.e2e.conftest import Stack, wait_until

ANN = "PR-ANN"
TIMEOUT = 60  # generous bound for a shared machine: a poll, not a timing assertion
IMMUTABLE = {"Prefer": 'IdType="ImmutableId"'}


def gtime(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


def day_after(days: int, hour: int = 9) -> datetime:
    return (datetime.now(UTC) + timedelta(days=days)).replace(hour=hour, minute=0, second=0, microsecond=0)


def idle(stack: Stack) -> bool:
    queues = stack.services.work_queues
    return (queues.depth(PLANNING_CHANGES_QUEUE) == 0 and queues.depth(EXCHANGE_CHANGES_QUEUE) == 0
            and stack.graph_control("GET", "/stats").json()["delivery"]["pending"] == 0
            and stack.ds_control("GET", "/stats").json()["webhooks"]["pending"] == 0)


@pytest.fixture(scope="module")
def stack(start_stack: Callable[..., Stack]) -> Stack:
    return start_stack(DS_WEBHOOK_SOURCE_APPS="DEMO", OUTLOOK_EDIT_POLICY="update_planning", WORK_MAX_ATTEMPTS="4")


@pytest.fixture(scope="module")
def tenant(stack: Stack) -> Iterator[Tenant]:
    tenant = setup_tenant(stack, [ANN], register=False)
    stack.run_function("sync_resources")
    wait_until(lambda: any(r.subscription_id for r in stack.services.registry.all() if r.resource_no == ANN),
               TIMEOUT, what="the resource tracked and subscribed")
    wait_until(lambda: idle(stack), TIMEOUT, what="the first full sync done")
    yield tenant
    tenant.close()


@pytest.fixture
def knobs(stack: Stack) -> Iterator[Callable[..., None]]:
    changed: set[str] = set()

    def set_knobs(**values: Any) -> None:
        changed.update(values)
        stack.ds_control("PATCH", "/config", json=values).raise_for_status()

    yield set_knobs
    defaults = SchedulerEmulatorConfig().as_json()
    if changed:
        stack.ds_control("PATCH", "/config", json={k: defaults[k] for k in changed}).raise_for_status()


def board(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.ds_control("GET", "/appointments").json())


@pytest.mark.parametrize("blank", ["keeps", "clears"])
def test_an_item_turning_private_and_masked_loses_its_body_and_categories_on_the_board(
        tenant: Tenant, knobs: Callable[..., None], blank: str) -> None:
    knobs(blank_parameter=blank)
    stack = tenant.stack
    made = stack.graph_api("POST", f"/users/{email(ANN)}/events", headers=IMMUTABLE, json={
        "subject": f"Hospital {blank}", "start": gtime(day_after(3, 14)), "end": gtime(day_after(3, 15)),
        "showAs": "busy", "body": {"contentType": "text", "content": "results of the scan"},
        "categories": ["Health", "Family"]})
    assert made.status_code == 201, made.text
    event_id = made.json()["id"]

    def item() -> dict[str, Any] | None:
        return next((a for a in board(stack) if a.get("ExchangeId") == event_id), None)

    first = wait_until(lambda: (found := item()) and found["Categories"] and found, TIMEOUT,
                       what="the item on the board with its categories")
    assert sorted(first["Categories"]) == ["Family", "Health"] and first["Body"] == "results of the scan"
    stack.graph_api("PATCH", f"/users/{tenant.user_ids[ANN]}/events/{event_id}", headers=IMMUTABLE,
                    json={"sensitivity": "private"}).raise_for_status()
    masked = wait_until(lambda: (found := item()) and found["Subject"] == "Private appointment" and found, TIMEOUT,
                        what="the item masked on the board")
    wait_until(lambda: idle(stack), TIMEOUT, what="the change applied")
    masked = item()
    assert masked is not None and masked["Categories"] == [] and not masked["Body"]
    assert masked["AppointmentGuid"] == first["AppointmentGuid"]  # imported again under the same GUID
    assert [a["AppointmentGuid"] for a in board(stack) if a.get("ExchangeId") == event_id] == [masked["AppointmentGuid"]]
    # A plain change afterwards is one upsert and keeps the mask.
    stack.graph_api("PATCH", f"/users/{tenant.user_ids[ANN]}/events/{event_id}", headers=IMMUTABLE,
                    json={"end": gtime(day_after(3, 16))}).raise_for_status()
    wait_until(lambda: (found := item()) and found["EndDate"].startswith(day_after(3, 16).strftime("%Y-%m-%dT%H")),
               TIMEOUT, what="the move on the board")
    moved = item()
    assert moved is not None and moved["Categories"] == [] and not moved["Body"]


@pytest.mark.parametrize("without_id", ["inserts", "by_guid"])
def test_a_persons_edit_reaches_the_planners_appointment_and_the_job_keeps_one_appointment(
        tenant: Tenant, knobs: Callable[..., None], without_id: str) -> None:
    knobs(update_without_id=without_id)
    stack = tenant.stack
    job_no = f"J-{without_id}"
    guid = tenant.create(appointment(f"Boiler {without_id}", [ANN], day_after(4), Task={
        "TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": job_no}}))
    [event] = tenant.wait_events(ANN, guid, 1, timeout=TIMEOUT)
    wait_until(lambda: idle(stack), TIMEOUT, what="the event written")
    stack.graph_api("PATCH", f"/users/{tenant.user_ids[ANN]}/events/{event['id']}", headers=IMMUTABLE,
                    json={"subject": f"Boiler {without_id} (moved by Ann)"}).raise_for_status()

    def of_job() -> list[dict[str, Any]]:
        return [a for a in board(stack) if ((a.get("Task") or {}).get("Job") or {}).get("JobNo") == job_no]

    wait_until(lambda: [a["Subject"] for a in of_job()] == [f"Boiler {without_id} (moved by Ann)"], TIMEOUT,
               what="the person's edit on the planner's appointment")
    wait_until(lambda: idle(stack), TIMEOUT, what="everything applied")
    [only] = of_job()
    assert only["AppointmentGuid"].lower() == guid
    assert not [row for row in stack.services.monitor.failed() if event["id"] in str(row) or guid in str(row)]
