"""The Outlook → planning writes of `PlanningGateway` against the Dime.Scheduler emulator."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from connector.config import PlanningConfig, Secret
from connector.errors import PlanningError
from connector.gateways.planning import PlanningGateway
from connector.model import BoardImport
from connector.sync.to_planning import board_guid
from devtools.serve import ServerThread

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def gateway(scheduler_emulator: ServerThread) -> PlanningGateway:
    resources = [{"resourceNo": "PGW-A", "email": "pgw-a@x.example", "exchangeIntegrationEnabled": True}]
    httpx.post(f"{scheduler_emulator.url}/_emulator/seed", json={"resources": resources}, timeout=10).raise_for_status()
    return PlanningGateway(PlanningConfig(scheduler_emulator.url, Secret("dev-api-key"), "CONNECTORTEST"))


def appointment(server: ServerThread, guid: str) -> dict[str, object]:
    return dict(httpx.get(f"{server.url}/_emulator/appointments/{guid}", timeout=10).json())


def item(subject: str) -> dict[str, object]:
    return {"Subject": subject, "Body": "", "Location": "Room 1", "Categories": ["Red", "Blue"], "Start": START,
            "End": START + timedelta(hours=1), "IsAllDayEvent": False, "ShowAs": 3, "Sensitivity": 1,
            "Importance": 1, "ICalUId": "ical-1"}


def test_an_outlook_item_is_upserted_updated_and_deleted(gateway: PlanningGateway, scheduler_emulator: ServerThread) -> None:
    guid = board_guid("user-a", f"event-{uuid.uuid4()}")
    gateway.upsert_exchange_appointment(guid, "event-1", "pgw-a@x.example", item("Dentist"))
    stored = appointment(scheduler_emulator, guid)
    assert stored["Origin"] == "exchange" and stored["CreatedByExchange"] is True
    # mboc_upsertExchangeAppointment has no Location parameter (the SDK model has none): not sent, not stored.
    assert stored["Subject"] == "Dentist" and stored["Location"] is None and stored["Categories"] == ["Red", "Blue"]
    assert stored["ShowAs"] == 3 and stored["Importance"] == 1 and stored["ResourceNos"] == ["PGW-A"]
    assert stored["StartDate"] == "2026-05-04T09:00:00Z"
    gateway.upsert_exchange_appointment(guid, "event-1", "pgw-a@x.example", item("Dentist (moved)"))
    assert appointment(scheduler_emulator, guid)["Subject"] == "Dentist (moved)"
    gateway.delete_exchange_appointment(guid, "event-1", "pgw-a@x.example")
    gateway.delete_exchange_appointment(guid, "event-1", "pgw-a@x.example")  # idempotent
    assert httpx.get(f"{scheduler_emulator.url}/_emulator/appointments/{guid}", timeout=10).status_code == 404


def test_a_planners_appointment_is_moved_keeping_its_job_and_resources(
        gateway: PlanningGateway, scheduler_emulator: ServerThread) -> None:
    created = httpx.post(f"{scheduler_emulator.url}/_emulator/planner/appointments", timeout=10, json={
        "Subject": "Boiler", "StartDate": "2026-05-05T08:00:00Z", "EndDate": "2026-05-05T10:00:00Z",
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1"}},
        "Assignments": [{"Resource": {"ResourceNo": "PGW-A"}}]}).json()
    guid = str(created["AppointmentGuid"])
    payload = gateway.get_appointment(guid, str(created["id"]))
    assert payload is not None
    gateway.update_planner_appointment(payload, "Boiler (Friday)", "moved in Outlook", START, START + timedelta(hours=3),
                                       False)
    moved = appointment(scheduler_emulator, guid)
    assert moved["Subject"] == "Boiler (Friday)" and moved["StartDate"] == "2026-05-04T09:00:00Z"
    assert moved["EndDate"] == "2026-05-04T12:00:00Z" and moved["ResourceNos"] == ["PGW-A"]
    assert moved["Task"] == {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1"}}
    # The exchange procedures may not touch a planner's appointment: a permanent (non-retried) error.
    with pytest.raises(PlanningError) as refused:
        gateway.upsert_exchange_appointment(guid, "event-2", "pgw-a@x.example", item("Hijack"))
    assert not refused.value.transient


def _import_requests(server: ServerThread) -> int:
    stats = httpx.get(f"{server.url}/_emulator/stats", timeout=10).json()
    return int(stats["requests"].get("POST /import", 0))


def test_many_outlook_items_go_in_one_import_per_hundred_calls_or_megabyte(
        gateway: PlanningGateway, scheduler_emulator: ServerThread) -> None:
    imports = [BoardImport(board_guid("user-a", f"event-{uuid.uuid4()}"), f"event-many-{n}", "pgw-a@x.example",
                           item(f"Item {n}")) for n in range(230)]
    before = _import_requests(scheduler_emulator)
    gateway.upsert_exchange_appointments(imports)
    assert _import_requests(scheduler_emulator) - before == 3  # 100 + 100 + 30
    assert [appointment(scheduler_emulator, one.appointment_guid)["Subject"] for one in imports[::57]] == [
        "Item 0", "Item 57", "Item 114", "Item 171", "Item 228"]
    long = {**item("Long notes"), "Body": "x" * 700_000}  # two of these do not fit one request's megabyte
    heavy = [BoardImport(board_guid("user-a", f"event-{uuid.uuid4()}"), f"event-heavy-{n}", "pgw-a@x.example", long)
             for n in range(2)]
    before = _import_requests(scheduler_emulator)
    gateway.upsert_exchange_appointments(heavy)
    assert _import_requests(scheduler_emulator) - before == 2


def test_a_refused_item_fails_its_whole_import(gateway: PlanningGateway) -> None:
    good = BoardImport(board_guid("user-a", f"event-{uuid.uuid4()}"), "event-ok", "pgw-a@x.example", item("Fine"))
    unknown = BoardImport(board_guid("user-a", f"event-{uuid.uuid4()}"), "event-no", "nobody@x.example", item("No"))
    with pytest.raises(PlanningError) as failed:
        gateway.upsert_exchange_appointments([good, unknown])
    assert not failed.value.transient  # refused, not unavailable: the worker goes again one item at a time
