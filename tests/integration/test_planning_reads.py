"""`get_appointment` and the confirmed read of the planning worker against the Dime.Scheduler emulator:
only a 404 by every id, or an absence from the window where its events are, counts as "gone"; every
odd answer is an `UnclearAnswer` (retried, never a deletion). Issue 19, hole 1."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connector.config import PlanningConfig, Secret
from connector.errors import UnclearAnswer
from connector.gateways.planning import PlanningGateway
from connector.sync.status import OutlookCopy
from connector.workers.appointment_reads import read_appointment
from devtools.scheduler_emulator import SchedulerEmulatorConfig
from devtools.scheduler_emulator import create_app as create_scheduler_app
from devtools.serve import ServerThread

RESOURCE = "READS-A"


@pytest.fixture
def server() -> Iterator[ServerThread]:
    """A fresh emulator per test: strict defaults (numeric ids only, 404 when missing), knobs per test."""
    running = ServerThread(create_scheduler_app(SchedulerEmulatorConfig())).start()
    try:
        httpx.post(f"{running.url}/_emulator/seed", timeout=10, json={"resources": [
            {"resourceNo": RESOURCE, "email": "reads-a@x.example", "exchangeIntegrationEnabled": True}]},
        ).raise_for_status()
        yield running
    finally:
        running.stop()


@pytest.fixture
def gateway(server: ServerThread) -> PlanningGateway:
    return PlanningGateway(PlanningConfig(server.url, Secret("dev-api-key"), "CONNECTORTEST"))


def knobs(server: ServerThread, **values: Any) -> None:
    httpx.patch(f"{server.url}/_emulator/config", json=values, timeout=10).raise_for_status()


def plan(server: ServerThread, subject: str, hour: int = 8) -> tuple[str, str]:
    """A planner's appointment on the board: (GUID, numeric id)."""
    created = httpx.post(f"{server.url}/_emulator/planner/appointments", timeout=10, json={
        "Subject": subject, "StartDate": f"2026-05-05T{hour:02d}:00:00Z", "EndDate": f"2026-05-05T{hour + 1:02d}:00:00Z",
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1"}},
        "Assignments": [{"Resource": {"ResourceNo": RESOURCE}}]}).json()
    return str(created["AppointmentGuid"]), str(created["id"])


def delete(server: ServerThread, guid: str) -> None:
    httpx.delete(f"{server.url}/_emulator/planner/appointments/{guid}", timeout=10).raise_for_status()


def copy_of(guid: str, hour: int = 8) -> OutlookCopy:
    """The copy the worker wrote for it: where its event is."""
    return OutlookCopy(guid, RESOURCE, "user-a", "dsx-1", "AAMk-1", starts_at=f"2026-05-05T{hour:02d}:00:00",
                       ends_at=f"2026-05-05T{hour + 1:02d}:00:00")


def test_a_payload_for_another_appointment_is_an_unclear_answer_not_gone(
        server: ServerThread, gateway: PlanningGateway) -> None:
    """A forged webhook: A's GUID with B's numeric id. Was: None ("A is gone")."""
    victim, _ = plan(server, "A")
    _, other_id = plan(server, "B", 10)
    with pytest.raises(UnclearAnswer) as unclear:
        gateway.get_appointment(victim, other_id)
    assert unclear.value.transient and unclear.value.status == 502 and victim in str(unclear.value)
    found = read_appointment(gateway, victim, other_id, [copy_of(victim)])  # the window shows A
    assert found is not None and found["AppointmentGuid"] == victim


@pytest.mark.parametrize("body", ["", "null", "{}", "[]", "<html>Service busy</html>"])
def test_an_empty_or_unreadable_answer_is_an_unclear_answer_not_gone(
        server: ServerThread, gateway: PlanningGateway, body: str) -> None:
    """Was: None for an empty 200 (and a deletion); now an error the queue retries."""
    guid, appointment_id = plan(server, "A")
    httpx.post(f"{server.url}/_emulator/faults", timeout=10,
               json={"route": "/appointment/{id}", "body": body}).raise_for_status()
    with pytest.raises(UnclearAnswer) as unclear:
        gateway.get_appointment(guid, appointment_id)
    assert unclear.value.transient


@pytest.mark.parametrize("lookup", ["id", "id_or_guid"])
def test_gone_when_every_id_answers_404_and_the_window_does_not_show_it(
        server: ServerThread, gateway: PlanningGateway, lookup: str) -> None:
    knobs(server, appointment_lookup=lookup)
    guid, appointment_id = plan(server, "A")
    delete(server, guid)
    assert gateway.get_appointment(guid, appointment_id) is None
    assert read_appointment(gateway, guid, appointment_id, [copy_of(guid)]) is None


@pytest.mark.parametrize("lookup", ["id", "id_or_guid"])
def test_a_wrong_numeric_id_is_not_gone_while_the_appointment_is_there(
        server: ServerThread, gateway: PlanningGateway, lookup: str) -> None:
    """A payload whose `id` is not the appointment's: 404 by it. Was: None ("gone") in both variants."""
    knobs(server, appointment_lookup=lookup)
    guid, _ = plan(server, "A")
    found = read_appointment(gateway, guid, "987654", [copy_of(guid)])
    assert found is not None and found["AppointmentGuid"] == guid
    if lookup == "id_or_guid":  # the GUID answers on its own
        assert (gateway.get_appointment(guid, "987654") or {}).get("AppointmentGuid") == guid


def test_where_a_missing_appointment_answers_an_empty_200_only_the_window_confirms_it(
        server: ServerThread, gateway: PlanningGateway) -> None:
    knobs(server, appointment_missing_answer="empty_200", appointment_lookup="id_or_guid")
    gone, gone_id = plan(server, "A")
    kept, kept_id = plan(server, "B", 10)
    delete(server, gone)
    with pytest.raises(UnclearAnswer):
        gateway.get_appointment(gone, gone_id)
    with pytest.raises(UnclearAnswer):  # no span known: nothing can confirm it, so an error, not "gone"
        read_appointment(gateway, gone, gone_id, [])
    assert read_appointment(gateway, gone, gone_id, [copy_of(gone)]) is None
    assert (read_appointment(gateway, kept, kept_id, [copy_of(kept, 10)]) or {}).get("AppointmentGuid") == kept


def test_a_guid_the_service_does_not_know_is_404_in_both_lookups(server: ServerThread,
                                                                 gateway: PlanningGateway) -> None:
    for lookup in ("id", "id_or_guid"):
        knobs(server, appointment_lookup=lookup)
        assert gateway.get_appointment(str(uuid.uuid4())) is None


class _Direct:
    """The simulation's I/O points with nothing behind them: every call just happens."""

    seed = 0
    faults_on = False

    def io_sync(self, label: str, effect: Any = None) -> Any:
        return effect() if effect is not None else None


def _outcome(read: Any, guid: str, ref: str | None) -> str:
    try:
        found = read(guid, ref)
    except UnclearAnswer:
        return "unclear"
    return "gone" if found is None else f"found {found['AppointmentGuid']}"


@pytest.mark.parametrize("lookup", ["id", "id_or_guid"])
def test_the_simulations_dime_scheduler_answers_reads_as_the_emulator_does(
        server: ServerThread, gateway: PlanningGateway, lookup: str) -> None:
    """Contract: the in-memory Dime.Scheduler of the simulation (`FakePlanning`) and the emulator give the
    connector's rule the same answers, per id kind and lookup variant."""
    from datetime import UTC, datetime

    from devtools.sim.planning import BoardAppointment, FakePlanning

    knobs(server, appointment_lookup=lookup)
    fake = FakePlanning(_Direct())  # type: ignore[arg-type]
    fake.lookup = lookup
    made = {}
    for subject, hour in (("A", 8), ("B", 10)):
        guid, numeric = plan(server, subject, hour)
        start = datetime(2026, 5, 5, hour, tzinfo=UTC)
        fake.plan(BoardAppointment(guid, subject, start, start.replace(hour=hour + 1), [RESOURCE],
                                   numeric_id=int(numeric)), "created")
        made[subject] = (guid, numeric)
    (a, a_id), (_, b_id) = made["A"], made["B"]
    missing = str(uuid.uuid4())
    asks = [(a, a_id), (a, None), (a, b_id), (a, "987654"), (missing, None), (missing, a_id)]
    for guid, ref in asks:
        assert _outcome(fake.get_appointment, guid, ref) == _outcome(gateway.get_appointment, guid, ref), (guid, ref)
