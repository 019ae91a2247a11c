"""The simulation's Dime.Scheduler (`devtools.sim.planning.FakePlanning`) is held to the connector's own
`PlanningGateway` talking to the Dime.Scheduler emulator (a real HTTP server, itself held to the documented
behaviour): the same script runs on both, and what the connector can observe must be the same: return
values (appointments as `Appointment.from_payload` parses them), errors (their status and `transient`), and
the board as the script reads it back. When the emulator becomes stricter, this is where a fake that stayed
kind is caught.

Each side is a `Board`: the gateway surface (the fake itself, or the real gateway) plus the two things only
a test does: put master data and a planner's appointments on the board, and read an item back whole.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
from dimescheduler.api.crud import CrudApi

from connector.config import PlanningConfig, Secret
from connector.errors import PlanningError
from connector.gateways.planning import PlanningGateway
from connector.model import Appointment, BoardImport, parse_utc
from devtools.scheduler_emulator import SchedulerEmulatorConfig
from devtools.scheduler_emulator import create_app as create_scheduler_app
from devtools.serve import ServerThread
from devtools.sim.planning import BoardAppointment, FakePlanning, FakeResource

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
RESOURCES = [("R1", "r1@contoso.example", True), ("R2", "r2@contoso.example", True),
             ("R3", "r3@contoso.example", False)]
TASK = {"TaskNo": "T1", "Job": {"SourceApp": "BC", "SourceType": "SVC", "JobNo": "J1"}}  # the fake's only task


def guid(name: str) -> str:
    """The same GUID on both sides for the same name."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"contract/{name}"))


@dataclasses.dataclass(frozen=True)
class Planned:
    """A planner's appointment to put on the board."""

    subject: str
    start: datetime
    end: datetime
    resources: tuple[str, ...]
    body: str = ""
    category: str | None = None
    importance: int = 0
    guid: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "guid", self.guid or guid(self.subject))


class Board:
    """One side of the contract: `gateway` is what the connector calls."""

    gateway: Any

    def seed_resources(self) -> None:
        raise NotImplementedError

    def plan(self, planned: Planned) -> str:
        """Put a planner's appointment on the board; returns its numeric id."""
        raise NotImplementedError

    def item(self, guid: str) -> dict[str, Any] | None:
        """An item as the board holds it, the fields an Outlook import writes (None: not on the board)."""
        raise NotImplementedError

    def list_webhooks(self) -> Any:
        """The hook list as the webhook registration reads it (`_live_hooks`)."""
        planning = self.gateway
        return planning._call("list webhooks", CrudApi(planning.client.appointments._dispatcher, "/webhooks").get_all)


class EmulatorBoard(Board):
    def __init__(self, url: str) -> None:
        self.url = url
        self.gateway = PlanningGateway(PlanningConfig(url, Secret("dev-api-key"), "CONNECTOR"))

    def seed_resources(self) -> None:
        resources = [{"resourceNo": n, "email": e, "exchangeIntegrationEnabled": on} for n, e, on in RESOURCES]
        httpx.post(f"{self.url}/_emulator/seed", json={"resources": resources}, timeout=10).raise_for_status()

    def plan(self, planned: Planned) -> str:
        body: dict[str, Any] = {
            "AppointmentGuid": planned.guid, "Subject": planned.subject, "Body": planned.body,
            "StartDate": planned.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "EndDate": planned.end.strftime("%Y-%m-%dT%H:%M:%SZ"), "Importance": planned.importance, "Task": TASK,
            "Assignments": [{"Resource": {"ResourceNo": r}} for r in planned.resources]}
        if planned.category:
            body["Category"] = {"DisplayName": planned.category, "Color": "#3366FF"}
        answer = httpx.post(f"{self.url}/_emulator/planner/appointments", json=body, timeout=10)
        answer.raise_for_status()
        return str(answer.json()["id"])

    def item(self, guid: str) -> dict[str, Any] | None:
        answer = httpx.get(f"{self.url}/_emulator/appointments/{guid}", timeout=10)
        if answer.status_code == 404:
            return None
        answer.raise_for_status()
        a = answer.json()
        # A field never given is null (an item imported with a blank under `blank_parameter=keeps`): empty.
        return {"Subject": a["Subject"] or "", "Body": a["Body"] or "", "Start": parse_utc(a["StartDate"], "Start"),
                "End": parse_utc(a["EndDate"], "End"), "ShowAs": a["ShowAs"], "Sensitivity": a["Sensitivity"],
                "Importance": a["Importance"], "Categories": list(a["Categories"]),
                "Resources": sorted(a["ResourceNos"])}


class QuietSim:
    """The simulation's I/O points with no scheduler and no faults behind them: every call just happens."""

    faults_on = False
    seed = 0
    guard_rng = random.Random(0)
    loop = SimpleNamespace(time=lambda: 0.0)
    model = SimpleNamespace(board_took=lambda *args: None)  # the oracle's log: not under test here

    def io_sync(self, label: str, effect: Callable[[], Any] | None = None) -> Any:
        return effect() if effect else None

    def trace(self, text: str) -> None:
        pass


class FakeBoard(Board):
    def __init__(self, failed_batch: str = "atomic", lookup: str = "id", blank: str = "keeps",
                 update_without_id: str = "inserts") -> None:
        self.gateway = self.fake = FakePlanning(QuietSim())  # type: ignore[arg-type]
        self.fake.failed_batch = failed_batch
        self.fake.lookup = lookup  # what `GET /appointment/{id}` takes: the emulator's `appointment_lookup`
        self.fake.blank = blank  # what a blank Subject, Body or Categories does: the emulator's `blank_parameter`
        self.fake.update_without_id = update_without_id  # the emulator's `update_without_id`

    def seed_resources(self) -> None:
        for number, email, on in RESOURCES:
            self.fake.resources[number] = FakeResource(number, email, enabled=on)

    def plan(self, planned: Planned) -> str:
        appointment = BoardAppointment(planned.guid, planned.subject, planned.start, planned.end,
                                       list(planned.resources), planned.body, category=planned.category,
                                       importance=planned.importance)
        self.fake.plan(appointment, "created")
        return str(appointment.numeric_id)

    def item(self, guid: str) -> dict[str, Any] | None:
        a = self.fake.appointments_by_guid.get(guid.lower())
        if a is None:
            return None
        # The fake keeps 0 for "no code" (a planner's appointment has none; the codes start at 1).
        return {"Subject": a.subject, "Body": a.body, "Start": a.start, "End": a.end, "ShowAs": a.show_as or None,
                "Sensitivity": a.sensitivity or None, "Importance": a.importance, "Categories": list(a.categories),
                "Resources": sorted(a.resources)}


@pytest.fixture(scope="module")
def emulator() -> Iterator[ServerThread]:
    logging.disable(logging.CRITICAL)
    server = ServerThread(create_scheduler_app(SchedulerEmulatorConfig())).start()
    try:
        yield server
    finally:
        server.stop()


Fresh = Callable[..., EmulatorBoard]


@pytest.fixture
def emulator_board(emulator: ServerThread) -> Iterator[Fresh]:
    """A fresh tenant (state, hooks, config) with the given knobs changed, and the gateway to it."""
    opened: list[EmulatorBoard] = []

    def fresh(**knobs: Any) -> EmulatorBoard:
        httpx.post(f"{emulator.url}/_emulator/reset", timeout=10).raise_for_status()
        if knobs:
            httpx.patch(f"{emulator.url}/_emulator/config", json=knobs, timeout=10).raise_for_status()
        opened.append(EmulatorBoard(emulator.url))
        return opened[-1]

    yield fresh
    for board in opened:
        board.gateway.close()


def outcome(fn: Callable[[], Any]) -> Any:
    """What the connector sees of a call: its value, or the error's kind, status and whether it is transient."""
    try:
        return fn()
    except PlanningError as exc:
        return ("PlanningError", exc.status, exc.transient)
    except ValueError as exc:
        return (type(exc).__name__,)


def parsed(payloads: Any) -> Any:
    """Appointments as the connector parses them, by GUID (the order of a window is no part of the contract).
    The ids are the server's to choose (the scripts check that the id it chose finds the appointment again),
    the stamp is its clock's."""
    if payloads is None or isinstance(payloads, tuple):
        return payloads

    def one(data: Any) -> Appointment:
        a = Appointment.from_payload(data)
        return dataclasses.replace(a, last_modified=None, appointment_id=str((a.appointment_id or "").isdigit()))

    if isinstance(payloads, list):
        return sorted((one(p) for p in payloads), key=lambda a: a.guid)
    return one(payloads)


def outlook_item(subject: str, start: datetime, **changes: Any) -> dict[str, Any]:
    """An item as `board_item()` makes it."""
    return {"Subject": subject, "Body": "notes", "Location": "Room 1", "Categories": ["Training"], "Start": start,
            "End": start + HOUR, "IsAllDayEvent": False, "ShowAs": 3, "Sensitivity": 1, "Importance": 0,
            "ICalUId": f"ical-{subject}"} | changes


# -- reads -----------------------------------------------------------------------------------------------
def reads_script(board: Board) -> list[Any]:
    seen: list[Any] = []
    board.seed_resources()
    listed = board.gateway.list_resources()
    seen.append(("resources", sorted((r["resourceNo"], r["email"], r["exchangeIntegrationEnabled"]) for r in listed)))
    a = Planned("A", T0, T0 + HOUR, ("R1",), body="first")
    b = Planned("B", T0 + HOUR, T0 + 2 * HOUR, ("R1", "R2"), category="Install", importance=1)
    c = Planned("C", T0 + 2 * HOUR, T0 + 3 * HOUR, ("R2",), importance=2)
    d = Planned("D (a moment)", T0 + 3 * HOUR, T0 + 3 * HOUR, ("R1",))
    ids = {p.subject: board.plan(p) for p in (a, b, c, d)}
    windows = [
        ("everything", T0 - HOUR, T0 + 5 * HOUR, None),
        ("A's hour: B starts at its end", T0, T0 + HOUR, None),
        ("B's hour for R1: A ends at its start", T0 + HOUR, T0 + 2 * HOUR, ["R1"]),
        ("R2 only", T0 - HOUR, T0 + 5 * HOUR, ["R2"]),
        ("a resource with nothing", T0 - HOUR, T0 + 5 * HOUR, ["R3"]),
        ("the moment at the window's start", T0 + 3 * HOUR, T0 + 4 * HOUR, None),
        ("the moment at the window's end", T0 + 2 * HOUR, T0 + 3 * HOUR, None),
        ("before everything", T0 - 2 * HOUR, T0, None),
    ]
    for label, start, end, resources in windows:
        def read(s: datetime = start, e: datetime = end, r: list[str] | None = resources) -> Any:
            return board.gateway.appointments(s, e, r)
        seen.append((label, parsed(outcome(read))))
    get = board.gateway.get_appointment
    seen.append(("by id", parsed(outcome(lambda: get(b.guid, ids["B"])))))
    seen.append(("by id, GUID in capitals", parsed(outcome(lambda: get(b.guid.upper(), ids["B"])))))
    seen.append(("absent, by GUID", outcome(lambda: get(guid("other-1")))))
    seen.append(("absent, by id", outcome(lambda: get(guid("other-2"), "987654321"))))
    return seen


def test_the_fake_planning_reads_like_the_emulator(emulator_board: Fresh) -> None:
    expected = reads_script(emulator_board())
    assert expected[0] == ("resources", [(n, e, on) for n, e, on in RESOURCES])  # the script means something
    assert sorted(a.subject for a in dict(expected[1:9])["everything"]) == ["A", "B", "C", "D (a moment)"]
    assert reads_script(FakeBoard()) == expected


def by_guid_script(board: Board) -> list[Any]:
    """`GET /appointment/{GUID}` where Dime.Scheduler takes a GUID too (the emulator's `id_or_guid`)."""
    board.seed_resources()
    planned = Planned("By GUID", T0, T0 + HOUR, ("R1",), category="Install")
    board.plan(planned)
    get = board.gateway.get_appointment
    return [parsed(outcome(lambda: get(planned.guid))), outcome(lambda: get(guid("other-3")))]


def test_the_fake_planning_finds_by_guid_like_the_emulator_that_takes_guids(emulator_board: Fresh) -> None:
    expected = by_guid_script(emulator_board(appointment_lookup="id_or_guid"))
    assert isinstance(expected[0], Appointment) and expected[1] is None
    assert by_guid_script(FakeBoard(lookup="id_or_guid")) == expected


# -- Outlook items -----------------------------------------------------------------------------------------
def outlook_script(board: Board) -> list[Any]:
    """One item upserted, changed, read through the window, deleted twice; and the
    Exchange procedures aimed at a planner's appointment."""
    seen: list[Any] = []
    board.seed_resources()
    gateway = board.gateway
    item_guid = guid("outlook item")
    put = gateway.upsert_exchange_appointment
    seen.append(("upsert", outcome(lambda: put(item_guid, "ev-1", "r1@contoso.example", outlook_item("Dentist", T0)))))
    seen.append(("on the board", board.item(item_guid)))
    moved = outlook_item("Dentist (moved)", T0 + HOUR, Body="", ShowAs=4, Sensitivity=3, Importance=1,
                         Categories=["Customer", "Training"])
    seen.append(("changed", outcome(lambda: put(item_guid, "ev-1", "R1@Contoso.example", moved)), board.item(item_guid)))
    # Emptied fields go as blanks: kept or cleared as the knob says; deleted and imported again in one `/import`
    # (`replace`), they are gone under either, and the item is there under the same GUID.
    blanked = dict(moved, Subject="", Body="", Categories=[])
    seen.append(("blanks", outcome(lambda: put(item_guid, "ev-1", "r1@contoso.example", blanked)), board.item(item_guid)))
    masked = dict(moved, Subject="Private appointment", Body="", Categories=[])
    seen.append(("replaced", outcome(lambda: put(item_guid, "ev-1", "r1@contoso.example", masked, True)),
                 board.item(item_guid)))
    seen.append(("filled again", outcome(lambda: put(item_guid, "ev-1", "r1@contoso.example", moved)),
                 board.item(item_guid)))
    seen.append(("as read", parsed(gateway.appointments(T0, T0 + 3 * HOUR, ["R1"]))))
    seen.append(("unknown mailbox", outcome(lambda: put(guid("other-5"), "ev-2", "nobody@contoso.example",
                                                        outlook_item("Lost", T0)))))
    seen.append(("ends before it starts", outcome(lambda: put(guid("other-6"), "ev-3", "r1@contoso.example",
                                                              outlook_item("Odd", T0, End=T0 - HOUR)))))
    planner = Planned("Boiler", T0, T0 + HOUR, ("R1",))
    board.plan(planner)
    seen.append(("a planner's appointment", outcome(lambda: put(planner.guid, "ev-4", "r1@contoso.example",
                                                                 outlook_item("Hijack", T0))), board.item(planner.guid)))
    seen.append(("a planner's appointment deleted", outcome(lambda: gateway.delete_exchange_appointment(
        planner.guid, "ev-4", "r1@contoso.example")), board.item(planner.guid) is not None))
    delete = gateway.delete_exchange_appointment
    seen.append(("deleted", outcome(lambda: delete(item_guid, "ev-1", "r1@contoso.example", moved)), board.item(item_guid)))
    seen.append(("deleted again", outcome(lambda: delete(item_guid, "ev-1", "r1@contoso.example"))))
    seen.append(("never there", outcome(lambda: delete(guid("other-7"), "ev-9", "r1@contoso.example"))))
    return seen


@pytest.mark.parametrize("blank", ["keeps", "clears"])
def test_the_fake_planning_imports_outlook_items_like_the_emulator(emulator_board: Fresh, blank: str) -> None:
    expected = outlook_script(emulator_board(blank_parameter=blank))
    assert expected[0] == ("upsert", None) and expected[1][1] is not None and expected[-3][2] is None
    steps = {step[0]: step for step in expected}
    blanks, replaced = steps["blanks"][2], steps["replaced"][2]
    assert steps["blanks"][1] is None and steps["replaced"][1] is None
    kept = blank == "keeps"
    assert (blanks["Subject"], blanks["Body"], blanks["Categories"]) == (
        ("Dentist (moved)", "notes", ["Customer", "Training"]) if kept else ("", "", []))
    assert (replaced["Subject"], replaced["Body"], replaced["Categories"]) == ("Private appointment", "", [])
    assert outlook_script(FakeBoard(blank=blank)) == expected


def batch_script(board: Board) -> list[Any]:
    """One `/import` of three items whose second is refused (a mailbox the board does not know)."""
    board.seed_resources()
    guids = [guid(f"batch item {n}") for n in range(3)]
    emails = ["r1@contoso.example", "gone@contoso.example", "r2@contoso.example"]
    items = [BoardImport(g, f"ev-{n}", e, outlook_item(f"Item {n}", T0 + n * HOUR))
             for n, (g, e) in enumerate(zip(guids, emails, strict=True))]
    return [outcome(lambda: board.gateway.upsert_exchange_appointments(items)), [board.item(g) for g in guids]]


@pytest.mark.parametrize(("partial", "failed_batch"), [(True, "partial"), (False, "atomic")])
def test_a_failing_import_leaves_the_same_items_on_the_fake_as_on_the_emulator(
        emulator_board: Fresh, partial: bool, failed_batch: str) -> None:
    expected = batch_script(emulator_board(import_batch_partial=partial))
    assert expected[0] == ("PlanningError", 400, False)
    assert [item is not None for item in expected[1]] == [partial, False, False]
    assert batch_script(FakeBoard(failed_batch)) == expected


# -- a planner's appointment taking an Outlook edit -----------------------------------------------------------
def planner_update_script(board: Board) -> list[Any]:
    board.seed_resources()
    gateway = board.gateway
    planned = Planned("Boiler", T0, T0 + HOUR, ("R1", "R2"), body="bring parts", category="Install", importance=1)
    number = board.plan(planned)
    payload = gateway.get_appointment(planned.guid, number)
    update = gateway.update_planner_appointment
    seen: list[Any] = [outcome(lambda: update(payload, "Boiler (Friday)", "moved in Outlook", T0 + 2 * HOUR,
                                              T0 + 4 * HOUR, False))]
    seen.append(parsed(gateway.get_appointment(planned.guid, number)))
    missing = dict(payload, AppointmentGuid=guid("other-9"), id=987654321)
    seen.append(outcome(lambda: update(missing, "Ghost", "", T0, T0 + HOUR, False)))
    # A payload without its numeric id: the remembered one names it; with none, the appointment is read by GUID
    # first (a 404 where the service takes numeric ids only): no update is sent, never one that inserts.
    anonymous = {k: v for k, v in payload.items() if k != "id"}
    seen.append(outcome(lambda: update(anonymous, "Boiler (remembered id)", "", T0, T0 + HOUR, False, number)))
    seen.append(outcome(lambda: update(anonymous, "Boiler (no id)", "", T0, T0 + HOUR, False)))
    # Exactly one appointment for the job, with the last update.
    seen.append(sorted((a.guid, a.subject) for a in parsed(gateway.appointments(T0 - HOUR, T0 + 5 * HOUR))))
    return seen


@pytest.mark.parametrize("without_id", ["inserts", "by_guid"])
def test_the_fake_planning_takes_a_planners_update_like_the_emulator(emulator_board: Fresh, without_id: str) -> None:
    expected = planner_update_script(emulator_board(update_without_id=without_id))
    assert expected[0] is None and expected[1].subject == "Boiler (Friday)" and expected[2][0] == "PlanningError"
    assert expected[3] is None and expected[4] == ("PlanningError", 422, False)
    assert expected[5] == [(guid("Boiler"), "Boiler (remembered id)")]
    assert planner_update_script(FakeBoard(update_without_id=without_id)) == expected


# -- webhooks --------------------------------------------------------------------------------------------------
def webhook_script(board: Board) -> list[Any]:
    """What `webhook_registration` relies on: the id `register_webhook` returns names a listed hook of that event,
    Source App and URL; a deleted hook is gone from the list; deleting it again is fine."""
    gateway = board.gateway

    def hooks() -> list[tuple[bool, str, str, str]]:
        listed = board.list_webhooks()
        return sorted((str(h["id"]) in ids, h["event"], h["sourceApp"], h["notificationURL"]) for h in listed)

    ids: set[str] = set()
    url = "https://connector.example/api/planning/webhook?event=created&secret=s"
    first = gateway.register_webhook("AppointmentCreated", url, "Exchange connector: BC appointment created", "BC")
    ids.add(first)
    ids.add(gateway.register_webhook("AppointmentDeleted", url.replace("created", "deleted"), "deleted", "BC"))
    seen: list[Any] = [len(ids), hooks()]
    seen.append(outcome(lambda: gateway.register_webhook("AppointmentMoved", url, "moved", "BC")))
    second = next(iter(ids - {first}))
    seen.append(outcome(lambda: gateway.delete_webhook("AppointmentCreated", second)))  # not that event's hook
    seen.append(outcome(lambda: gateway.delete_webhook("AppointmentCreated", first)))
    seen.append(hooks())
    seen.append(outcome(lambda: gateway.delete_webhook("AppointmentCreated", first)))
    return seen


def test_the_fake_planning_keeps_webhooks_like_the_emulator(emulator_board: Fresh) -> None:
    expected = webhook_script(emulator_board())
    assert expected[0] == 2 and len(expected[1]) == 2 and all(h[0] for h in expected[1])
    assert webhook_script(FakeBoard()) == expected
