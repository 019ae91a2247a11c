"""An in-memory Dime.Scheduler for the simulation: resources, the planners' appointments, the Outlook
items the connector imports (`mboc_upsertExchangeAppointment` / `mboc_deleteExchangeAppointment`),
and the appointment webhooks every change fires (handed to the simulation to deliver, drop or repeat).

It has the surface of `connector.gateways.planning.PlanningGateway` that the workers use (synchronous,
like the SDK; the workers call it from `asyncio.to_thread`, which the simulation turns into an I/O point).
Payloads have the `appointment-incoming` shape without `IsAllDayEvent` and `CreatedByExchange`, which the
published schema does not carry.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from connector.errors import PlanningError
from connector.gateways.planning import WEBHOOK_EVENTS, id_for_update, read_by_refs
from connector.model import BoardImport, parse_utc
from devtools.sim.model import Version

if TYPE_CHECKING:
    from devtools.sim.world import Sim


@dataclass
class BoardAppointment:
    guid: str
    subject: str
    start: datetime
    end: datetime
    resources: list[str]
    body: str = ""
    from_outlook: bool = False  # imported by the connector from a resource's Outlook
    exchange_id: str = ""
    show_as: int = 0
    sensitivity: int = 0
    numeric_id: int = 0
    modified: int = 0
    category: str | None = None  # a planner's appointment: its category's display name
    importance: int = 0  # Dime.Scheduler's code: Medium=0, High=1, Low=2
    categories: list[str] = field(default_factory=list)  # an imported Outlook item's categories


@dataclass
class Hook:
    event: str
    guid: str
    payload: dict[str, Any] | None


@dataclass
class FakeResource:
    resource_no: str
    email: str
    enabled: bool = True


def _when(value: Any) -> datetime:
    """A procedure's date parameter: the gateway hands datetimes, the SDK formats them."""
    return value.astimezone(UTC) if isinstance(value, datetime) else parse_utc(value, "date")


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _NoSdk:
    """`webhook_registration` reaches into the SDK client for a CRUD accessor; `_call` never uses it."""

    class appointments:
        _dispatcher = None


class FakePlanning:
    def __init__(self, sim: Sim) -> None:
        self.sim = sim
        self.resources: dict[str, FakeResource] = {}
        self.appointments_by_guid: dict[str, BoardAppointment] = {}
        self.outbox: list[Hook] = []
        self.hooks: dict[str, dict[str, Any]] = {}
        self.writes = 0  # imports that took effect (the replay check compares it)
        self.client = _NoSdk()
        self._ids = itertools.count(1)
        self.hidden: set[str] = set()  # resources `GET /resource` leaves out (a scenario's partial answer)
        self.refused_subjects: set[str] = set()  # items Dime.Scheduler refuses as themselves (a scenario's)
        self.failed_batch = "atomic"  # or "partial": the calls of a failing `/import` before the refused one stay
        # What `GET /appointment/{id}` takes (undocumented; the emulator's knob `appointment_lookup`): the
        # numeric id only (a GUID is 404) or either; drawn per seed from its own generator.
        self.lookup = random.Random(f"lookup-{sim.seed}").choice(["id", "id_or_guid"])
        # What a blank Subject, Body or Categories does to an Outlook item (undocumented; the emulator's knob
        # `blank_parameter`): "keeps" (not given: the item keeps its value) or "clears"; drawn per seed.
        self.blank = random.Random(f"blank-{sim.seed}").choice(["keeps", "clears"])
        # `mboc_upsertAppointment` without an AppointmentId (the emulator's `update_without_id`): "inserts", as
        # documented, or "by_guid" (the kinder reading). Strict unless a test says otherwise.
        self.update_without_id = "inserts"
        self.former_emails: set[str] = set()  # emails a resource had before an admin changed them
        self.stale_refusals: set[str] = set()  # Outlook items refused because their import named a former email

    # -- the planner's side ---------------------------------------------------------------------
    def plan(self, appointment: BoardAppointment, event: str) -> None:
        """A planner's change on the board (or an import): stored, and its webhook fired."""
        appointment.modified = next(self._ids)
        if not appointment.numeric_id:
            appointment.numeric_id = 1000 + next(self._ids)
        self.appointments_by_guid[appointment.guid] = appointment
        self.outbox.append(Hook(event, appointment.guid, self.payload(appointment)))

    def remove(self, guid: str) -> None:
        appointment = self.appointments_by_guid.pop(guid, None)
        if appointment is not None:
            self.outbox.append(Hook("deleted", guid, self.payload(appointment)))

    def payload(self, a: BoardAppointment) -> dict[str, Any]:
        return {
            "id": a.numeric_id, "AppointmentGuid": a.guid, "Subject": a.subject, "Body": a.body,
            "StartDate": _iso(a.start), "EndDate": _iso(a.end), "Importance": a.importance,
            **({"Category": {"DisplayName": a.category, "Color": "#3366FF"}} if a.category else {}),
            "LastModifiedDate": f"2026-03-02T08:00:{a.modified % 60:02d}Z",
            # An Outlook item belongs to no job: no Task, so no Source App (as the emulator shows it).
            "Task": None if a.from_outlook else {"TaskNo": "T1", "Job": {"SourceApp": "BC", "SourceType": "SVC",
                                                                         "JobNo": "J1"}},
            "Assignments": [{"ResourceId": i, "Resource": {"ResourceNo": r, "Email": self.resources[r].email
                                                           if r in self.resources else ""}}
                            for i, r in enumerate(a.resources)],
        }

    # -- the gateway surface (synchronous) ----------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        if what == "list webhooks":
            return [dict(h) for h in self.hooks.values()]
        raise PlanningError(404, f"{what}: not offered")

    def list_resources(self) -> list[dict[str, Any]]:
        self.sim.io_sync("ds list_resources")
        listed = [{"resourceNo": r.resource_no, "email": r.email, "displayName": r.resource_no,
                   "exchangeIntegrationEnabled": r.enabled} for r in self.resources.values()
                  if r.resource_no not in self.hidden]
        rng = self.sim.guard_rng
        if self.sim.faults_on and rng.random() < self.sim.profile.partial_list:
            # A partial answer (a paging or permission hiccup upstream): some resources are left out.
            kept = [r for r in listed if rng.random() < 0.4]
            left_out = sorted({str(r["resourceNo"]) for r in listed} - {str(r["resourceNo"]) for r in kept})
            self.sim.trace(f"ds list_resources leaves out {left_out}")
            return kept
        return listed

    def appointments(self, start: datetime, end: datetime, resources: Sequence[str] | None = None) -> list[dict[str, Any]]:
        self.sim.io_sync("ds appointments")
        wanted = set(resources or ())
        # Overlapping [start, end); an appointment of no length counts when it starts inside (the emulator's rule).
        return [self.payload(a) for a in self.appointments_by_guid.values()
                if ((a.start < end and a.end > start) or (a.start == a.end and start <= a.start < end))
                and (not wanted or wanted & set(a.resources))]

    def get_appointment(self, guid: str, appointment_id: str | None = None) -> dict[str, Any] | None:
        """The gateway's own rule (`read_by_refs`) over `GET /appointment/{id}` as the service answers it."""
        return read_by_refs(guid, appointment_id, self.read_by_id)

    def read_by_id(self, ref: str) -> dict[str, Any]:
        """`GET /appointment/{id}` as the Dime.Scheduler emulator answers it: by numeric id, or by GUID too
        when `lookup` is `id_or_guid`; 404 when no appointment has that id."""
        self.sim.io_sync("ds get_appointment")
        if ref.isdigit():
            found = next((a for a in self.appointments_by_guid.values() if str(a.numeric_id) == ref), None)
        else:
            found = self.appointments_by_guid.get(ref.lower()) if self.lookup == "id_or_guid" else None
        if found is None:
            raise PlanningError(404, f"read appointment {ref}: no appointment with id {ref!r}")
        return self.payload(found)

    def ping(self) -> None:
        self.sim.io_sync("ds ping")

    def upsert_exchange_appointment(self, appointment_guid: str, exchange_id: str, resource_email: str,
                                    item: Mapping[str, Any], replace: bool = False) -> None:
        one = BoardImport(appointment_guid, exchange_id, resource_email, item, replace)
        self.sim.io_sync("ds import upsertExchangeAppointment", lambda: self._import_all([one]))

    def upsert_exchange_appointments(self, items: Sequence[BoardImport]) -> None:
        """One `/import` of many items. A refused item fails the whole call; whether the items before it
        stay applied is not documented, so the seed draws it (`failed_batch`: atomic or partial)."""
        self.sim.io_sync("ds import upsertExchangeAppointment batch", lambda: self._import_all(items))

    def _import_all(self, items: Sequence[BoardImport]) -> None:
        """The calls of one `/import`: per item its deletion when it is replaced, then its upsert."""
        if self.failed_batch == "atomic":
            for one in items:
                self._check(one.appointment_guid, one.resource_email, one.item, one.exchange_id)
        for one in items:
            if one.replace:
                self._delete_item(one.appointment_guid, one.exchange_id)
            self._import_item(one.appointment_guid, one.exchange_id, one.resource_email, one.item)

    def _resource_of(self, email: str) -> str | None:
        return next((r.resource_no for r in self.resources.values() if r.email.lower() == email.lower()), None)

    def _planned_on_the_board(self, appointment_guid: str) -> None:
        """The Exchange procedures may not touch a planner's appointment: a 400 (the emulator's default)."""
        existing = self.appointments_by_guid.get(appointment_guid.lower())
        if existing is not None and not existing.from_outlook:
            raise PlanningError(400, f"import: appointment {appointment_guid} was planned on the board, not created"
                                     " from Outlook")

    def _check(self, appointment_guid: str, resource_email: str, item: Mapping[str, Any],
               exchange_id: str = "") -> str:
        self._planned_on_the_board(appointment_guid)
        resource = self._resource_of(resource_email)
        if resource is None:
            if resource_email.lower() in self.former_emails:
                self.stale_refusals.add(exchange_id)
            raise PlanningError(400, f"import: no resource with the email {resource_email}")
        if _when(item["End"]) < _when(item["Start"]):
            raise PlanningError(400, "import: 'End' is before 'Start'")
        if item.get("Subject") in self.refused_subjects:
            raise PlanningError(400, "import: mboc_upsertExchangeAppointment refused the item (simulated)")
        return resource

    def _import_item(self, appointment_guid: str, exchange_id: str, resource_email: str,
                     item: Mapping[str, Any]) -> None:
        resource = self._check(appointment_guid, resource_email, item, exchange_id)
        guid = appointment_guid.lower()
        existing = self.appointments_by_guid.get(guid)
        self.writes += 1
        self.sim.trace(f"board: Outlook item {exchange_id} imported as {guid[:8]}")
        subject, body = str(item.get("Subject") or ""), str(item.get("Body") or "")
        categories = [str(c) for c in item.get("Categories") or ()]
        if self.blank == "keeps" and existing is not None:  # a blank is "not given": the item keeps its value
            subject = subject if subject.strip() else existing.subject
            body = body if body.strip() else existing.body
            categories = categories if any(c.strip() for c in categories) else list(existing.categories)
        self.plan(BoardAppointment(
            guid, subject, _when(item["Start"]), _when(item["End"]),
            [resource], body, from_outlook=True, exchange_id=exchange_id,
            show_as=int(item["ShowAs"]), sensitivity=int(item["Sensitivity"]),
            numeric_id=existing.numeric_id if existing else 0, importance=int(item.get("Importance") or 0),
            categories=categories), "updated" if existing else "created")

    def delete_exchange_appointment(self, appointment_guid: str, exchange_id: str, resource_email: str,
                                    item: Mapping[str, Any] | None = None) -> None:
        self.sim.io_sync("ds import deleteExchangeAppointment", lambda: self._delete_item(appointment_guid, exchange_id))

    def _delete_item(self, appointment_guid: str, exchange_id: str) -> None:
        self._planned_on_the_board(appointment_guid)
        if appointment_guid.lower() in self.appointments_by_guid:
            self.writes += 1
            self.sim.trace(f"board: Outlook item {exchange_id} removed ({appointment_guid[:8]})")
            self.remove(appointment_guid.lower())

    def update_planner_appointment(self, appointment: Mapping[str, Any], subject: str, body: str,
                                   start: datetime, end: datetime, all_day: bool,
                                   appointment_id: str | None = None) -> None:
        # The gateway's own rule for the id it sends (it may read the appointment first), then the call.
        number: str | None = id_for_update(appointment, appointment_id, self.read_by_id)
        guid = str(appointment.get("AppointmentGuid") or "").lower()

        def effect() -> None:
            if number is None and self.update_without_id == "inserts":
                # "The appointment id is required if you want to update an existing appointment; otherwise it
                # inserts": a new appointment, which needs a job and a task (the call names none).
                raise PlanningError(400, "import: a new appointment needs 'JobNo' and 'TaskNo' (of an existing task)")
            by_id = next((a for a in self.appointments_by_guid.values() if str(a.numeric_id) == number), None)
            if number is not None and by_id is None:
                raise PlanningError(400, f"import: unknown AppointmentId {number}")
            current = by_id or self.appointments_by_guid.get(guid)
            if current is not None and current.guid != guid and guid:
                raise PlanningError(400, f"import: AppointmentId {number} and AppointmentGuid {guid} name different"
                                         " appointments")
            if current is None:  # without an id or a known GUID, mboc_upsertAppointment would insert: no task
                raise PlanningError(400, "import: a new appointment needs 'JobNo' and 'TaskNo' (of an existing task)")
            self.writes += 1
            current.subject, current.body, current.start, current.end = subject, body, start, end
            self.plan(current, "updated")
            self.sim.model.board_took(self.sim.loop.time(), guid, Version(subject, body, start, end), current.category,
                                      current.importance, current.resources)
        self.sim.io_sync("ds import upsertAppointment", effect)

    def register_webhook(self, event: str, notification_url: str, name: str, source_app: str | None = None) -> str:
        if event not in WEBHOOK_EVENTS:
            raise ValueError(f"unknown webhook event {event!r}")

        def effect() -> str:
            hook_id = f"hook-{next(self._ids)}"
            self.hooks[hook_id] = {"id": hook_id, "event": event, "notificationURL": notification_url,
                                   "sourceApp": source_app}
            return hook_id
        return self.sim.io_sync("ds register_webhook", effect)

    def delete_webhook(self, event: str, hook_id: str) -> None:
        def effect() -> None:
            if self.hooks.get(hook_id, {}).get("event") == event:  # a hook is deleted under its own event only
                del self.hooks[hook_id]
        self.sim.io_sync("ds delete_webhook", effect)


@dataclass
class PlannerState:
    """What the planners did, for the invariants (the board itself is `FakePlanning.appointments_by_guid`)."""

    created: list[str] = field(default_factory=list)
