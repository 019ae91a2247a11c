"""The stored procedures ``POST /import`` can call: declared parameters, value parsing, effects.

Each :class:`Procedure` declares its parameters (names match case-insensitively, as SQL Server's
do). :meth:`Procedure.parse` turns the wire strings into typed arguments (a null, and a blank
identifier or typed value, count as "not given"; a blank Subject, Body or Categories of an Outlook item
follows the ``blank_parameter`` knob), and ``run`` applies the call to a store, raising
:class:`ProcedureError` with a message for the caller. Upserts are partial: a parameter that is not
given leaves the stored value alone. Deleting something that does not exist succeeds and changes
nothing (deletes are idempotent, so a retried import cannot fail on its own earlier success).
"""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from .config import SchedulerEmulatorConfig
from .model import (
    RESOURCE_BOOLEANS,
    RESOURCE_DATES,
    RESOURCE_INTEGERS,
    RESOURCE_NUMBERS,
    RESOURCE_STRINGS,
    Appointment,
    Job,
    Task,
)
from .store import LookupProblem, Store
from .values import (
    ValueProblem,
    parse_bool,
    parse_color,
    parse_datetime,
    parse_decimal,
    parse_guid,
    parse_int,
    parse_list,
)

Kind = Literal["id", "text", "bool", "datetime", "int", "decimal", "list", "guid", "color", "email"]
Args = dict[str, Any]
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+$")


class ProcedureError(Exception):
    """A call that cannot be applied; the message names the parameter and the problem."""


@dataclass(frozen=True)
class Param:
    """``id``: an identifier (blank = not given); ``text``: free text (blank is a value)."""

    name: str
    kind: Kind = "id"
    required: bool = False
    max_length: int | None = None
    low: int | None = None
    high: int | None = None
    clearable: bool = False  # a blank value follows the ``blank_parameter`` knob: not given, or empty

    def parse(self, raw: str, config: SchedulerEmulatorConfig) -> Any:
        if self.clearable and not raw.strip():
            if config.blank_parameter == "keeps":
                return None
            return [] if self.kind == "list" else ""
        if self.kind == "text":
            value: Any = raw
        elif not raw.strip():
            return None
        elif self.kind in ("id", "email"):
            value = raw.strip()
            if self.kind == "email" and not _EMAIL_RE.match(value):
                raise ValueProblem(f"{raw!r} is not an e-mail address")
        elif self.kind == "bool":
            value = parse_bool(raw)
        elif self.kind == "datetime":
            value = parse_datetime(raw, accept_naive=config.accept_naive_dates)
        elif self.kind == "int":
            value = parse_int(raw, self.low, self.high)
        elif self.kind == "decimal":
            value = parse_decimal(raw)
        elif self.kind == "list":
            value = parse_list(raw)
        elif self.kind == "guid":
            value = parse_guid(raw)
        else:
            value = parse_color(raw)
        if self.max_length is not None and isinstance(value, str) and len(value) > self.max_length:
            raise ValueProblem(f"is {len(value)} characters long; at most {self.max_length} are allowed")
        return value


@dataclass
class Context:
    store: Store
    config: SchedulerEmulatorConfig
    user: str


@dataclass
class Outcome:
    """What one call did: the appointments it addressed (id, guid) and whether anything changed."""

    touched: list[tuple[int, str]] = field(default_factory=list)
    changed: bool = False
    quiet: bool = False  # SentFromBackOffice with suppression configured: fire no webhook


@dataclass(frozen=True)
class Procedure:
    name: str
    params: tuple[Param, ...]
    run: Callable[[Context, Args], Outcome]
    lenient: bool = False  # minimal emulations ignore parameters they do not model

    def parse(self, names: Sequence[Any], values: Sequence[Any], config: SchedulerEmulatorConfig) -> Args:
        by_name = {p.name.casefold(): p for p in self.params}
        args: Args = {}
        seen: set[str] = set()
        for index, (name, raw) in enumerate(zip(names, values, strict=True)):
            if not isinstance(name, str) or not name:
                raise ProcedureError(f"ParameterNames[{index}] must be a non-empty string, got {name!r}")
            if name.casefold() in seen:
                raise ProcedureError(f"parameter {name!r} is given twice")
            seen.add(name.casefold())
            param = by_name.get(name.casefold())
            if param is None:
                if self.lenient or not config.reject_unknown_parameters:
                    continue
                known = ", ".join(p.name for p in self.params)
                raise ProcedureError(f"unknown parameter {name!r} (this procedure takes: {known})")
            if raw is None:
                continue
            if not isinstance(raw, str):
                if config.strict_value_types or isinstance(raw, dict | list):
                    raise ProcedureError(
                        f"parameter {param.name!r}: value {raw!r} must be a string (the SDKs send every value as text)"
                    )
                raw = ("True" if raw else "False") if isinstance(raw, bool) else str(raw)
            try:
                value = param.parse(raw, config)
            except ValueProblem as exc:
                raise ProcedureError(f"parameter {param.name!r}: {exc}") from None
            if value is not None:
                args[param.name] = value
        for param in self.params:
            if param.required and param.name not in args:
                raise ProcedureError(f"missing required parameter {param.name!r}")
        return args


# --- shared pieces -------------------------------------------------------------------------------
APPOINTMENT_REF = (Param("AppointmentId", "int", low=0), Param("AppointmentGuid", "guid"))
BACK_OFFICE = (
    Param("SourceApp", max_length=30),
    Param("SourceType", max_length=10),
    Param("SentFromBackOffice", "bool"),
)


def _find(ctx: Context, args: Args, *, missing_ok: bool) -> Appointment | None:
    """The appointment an AppointmentGuid/AppointmentId pair names (``AppointmentId`` 0 = none).

    An unknown GUID is None (an upsert creates it); an unknown non-zero id is an error unless
    ``missing_ok`` (deletes); an id and a GUID naming different appointments are an error.
    """
    appt_id = args.get("AppointmentId") or None
    guid = args.get("AppointmentGuid")
    by_id = ctx.store.appointment(appt_id) if appt_id else None
    by_guid = ctx.store.appointments.get(guid) if guid else None
    if appt_id and guid and (by_id or by_guid) and by_id is not by_guid:
        raise ProcedureError(f"AppointmentId {appt_id} and AppointmentGuid {guid} name different appointments")
    if appt_id and by_id is None and not missing_ok:
        raise ProcedureError(f"unknown AppointmentId {appt_id}")
    return by_id or by_guid


def _resource_no(ctx: Context, resource_no: str) -> str:
    try:
        return str(ctx.store.require_resource(resource_no)["resourceNo"])
    except LookupProblem as exc:
        raise ProcedureError(f"parameter 'ResourceNo': {exc}") from None


def _resource_for_email(ctx: Context, email: str) -> str:
    found = ctx.store.resource_by_email(email)
    if found is None:
        raise ProcedureError(f"parameter 'ResourceEmail': no resource has the e-mail address {email!r}")
    return str(found["resourceNo"])


def _guard_origin(ctx: Context, appt: Appointment, procedure: str) -> None:
    if appt.origin == "planning" and not ctx.config.allow_exchange_procedures_on_planner_items:
        raise ProcedureError(
            f"appointment {appt.guid} was planned on the board, not created from Outlook:"
            f" {procedure} may not change it (use mboc_upsertAppointment / mboc_deleteAppointment)"
        )


def _check_times(candidate: Appointment) -> None:
    if candidate.end < candidate.start:
        raise ProcedureError("'End' is before 'Start'")


def _with(appt: Appointment, args: Args, mapping: dict[str, str]) -> Appointment:
    """A copy of ``appt`` with the given parameters applied (lists copied: never shared)."""
    copies = {"assignments": list(appt.assignments), "categories": list(appt.categories)}
    changes = copies | {attr: args[param] for param, attr in mapping.items() if param in args}
    return dataclasses.replace(appt, **changes)


def _save(ctx: Context, candidate: Appointment, args: Args) -> Outcome:
    changed = ctx.store.save_appointment(candidate, ctx.user)
    quiet = bool(args.get("SentFromBackOffice")) and ctx.config.sent_from_back_office_suppresses_webhooks
    return Outcome([(candidate.id, candidate.guid)], changed, quiet)


def _new_appointment(ctx: Context, args: Args, origin: Literal["planning", "exchange"]) -> Appointment:
    return Appointment(
        id=ctx.store.next_id("appointment"),
        guid=args.get("AppointmentGuid") or str(uuid.uuid4()),
        origin=origin,
        start=args["Start"],
        end=args["End"],
    )


# --- Exchange items --------------------------------------------------------------------------------
_EXCHANGE_FIELDS = {
    "ExchangeId": "exchange_id", "ICalUId": "ical_uid", "Start": "start", "End": "end", "Subject": "subject",
    "Body": "body", "Importance": "importance", "ShowAs": "show_as", "Sensitivity": "sensitivity",
    "Categories": "categories", "CreatedByExchange": "created_by_exchange",
}


def upsert_exchange_appointment(ctx: Context, args: Args) -> Outcome:
    name = "mboc_upsertExchangeAppointment"
    existing = _find(ctx, args, missing_ok=False)
    resource_no = _resource_for_email(ctx, args["ResourceEmail"])
    if existing is None and not args.get("AppointmentGuid") and ctx.config.exchange_upsert_matches_exchange_id:
        existing = ctx.store.find_by_exchange_id(args["ExchangeId"], resource_no) if "ExchangeId" in args else None
    if existing is not None:
        _guard_origin(ctx, existing, name)
        base = existing
    else:
        base = _new_appointment(ctx, args, "exchange")
        base.created_by_exchange = True
    candidate = _with(base, args, _EXCHANGE_FIELDS)
    candidate.assignments = [resource_no]  # an Outlook item lives in one mailbox
    _check_times(candidate)
    return _save(ctx, candidate, args)


def delete_exchange_appointment(ctx: Context, args: Args) -> Outcome:
    name = "mboc_deleteExchangeAppointment"
    if args.get("AppointmentId") or args.get("AppointmentGuid"):
        found = _find(ctx, args, missing_ok=True)
    elif "ExchangeId" in args and "ResourceEmail" in args:
        found = ctx.store.find_by_exchange_id(args["ExchangeId"], _resource_for_email(ctx, args["ResourceEmail"]))
    else:
        raise ProcedureError("needs AppointmentGuid, AppointmentId, or ExchangeId with ResourceEmail")
    if found is None:
        return Outcome()
    _guard_origin(ctx, found, name)
    ctx.store.delete_appointment(found.guid)
    return Outcome([(found.id, found.guid)], changed=True)


# --- planning appointments -------------------------------------------------------------------------
_PLANNING_FIELDS = {
    "AppointmentNo": "appointment_no", "Start": "start", "End": "end", "Subject": "subject", "Body": "body",
    "IsAllDayEvent": "is_all_day", "Importance": "importance", "Locked": "locked",
    "BackOfficeID": "back_office_id", "BackOfficeParentID": "back_office_parent_id", "PlanningUOM": "planning_uom",
    "PlanningUOMConversion": "planning_uom_conversion", "PlanningQty": "planning_qty",
    "UseFixPlanningQty": "use_fix_planning_qty", "RoundToUOM": "round_to_uom",
}


def upsert_appointment(ctx: Context, args: Args) -> Outcome:
    store = ctx.store
    if not args.get("AppointmentId") and ctx.config.update_without_id == "inserts":
        # "The appointment id is required if you want to update an existing appointment; otherwise it
        # inserts": a new appointment, under a new GUID when the given one is taken.
        existing = None
        if args.get("AppointmentGuid") in store.appointments:
            args = {**args, "AppointmentGuid": str(uuid.uuid4())}
    else:
        existing = _find(ctx, args, missing_ok=False)
    if ("JobNo" in args) != ("TaskNo" in args):
        raise ProcedureError("'JobNo' and 'TaskNo' go together: give both or neither")
    task = None
    if "JobNo" in args:
        task = store.task(args["SourceApp"], args["SourceType"], args["JobNo"], args["TaskNo"])
        if task is None:
            raise ProcedureError(
                f"unknown task {args['TaskNo']!r} of job {args['JobNo']!r} (SourceApp {args['SourceApp']!r},"
                f" SourceType {args['SourceType']!r}): upsert the job and task first"
            )
    elif existing is None:
        raise ProcedureError("a new appointment needs 'JobNo' and 'TaskNo' (of an existing task)")
    base = existing or _new_appointment(ctx, args, "planning")
    candidate = _with(base, args, _PLANNING_FIELDS)
    candidate.source_app, candidate.source_type = args["SourceApp"], args["SourceType"]
    if task is not None:
        candidate.task = (task.source_app, task.source_type, task.job_no, task.task_no)
    if "Category" in args:
        found = store.category(args["Category"])
        if found is None:
            raise ProcedureError(f"parameter 'Category': unknown category {args['Category']!r}")
        candidate.category = found.name
    if "TimeMarker" in args:
        marker = store.time_marker(args["TimeMarker"])
        if marker is None:
            raise ProcedureError(f"parameter 'TimeMarker': unknown time marker {args['TimeMarker']!r}")
        candidate.time_marker = marker.name
    if "ResourceNo" in args:
        resource_no = _resource_no(ctx, args["ResourceNo"])
        if args.get("ReplaceResource"):
            candidate.assignments = [resource_no]
        elif resource_no.casefold() not in (r.casefold() for r in candidate.assignments):
            candidate.assignments.append(resource_no)
    _check_times(candidate)
    return _save(ctx, candidate, args)


def delete_appointment(ctx: Context, args: Args) -> Outcome:
    if not (args.get("AppointmentId") or args.get("AppointmentGuid")):
        raise ProcedureError("needs 'AppointmentGuid' or 'AppointmentId'")
    found = _find(ctx, args, missing_ok=True)
    if found is None:
        return Outcome()
    ctx.store.delete_appointment(found.guid)
    quiet = bool(args.get("SentFromBackOffice")) and ctx.config.sent_from_back_office_suppresses_webhooks
    return Outcome([(found.id, found.guid)], changed=True, quiet=quiet)


def _assignment_change(ctx: Context, args: Args, add: bool) -> Outcome:
    if not (args.get("AppointmentId") or args.get("AppointmentGuid")):
        raise ProcedureError("needs 'AppointmentGuid' or 'AppointmentId'")
    resource_no = _resource_no(ctx, args["ResourceNo"])
    found = _find(ctx, args, missing_ok=not add)
    if found is None:
        if add:
            raise ProcedureError(f"unknown appointment {args.get('AppointmentGuid') or args.get('AppointmentId')}")
        return Outcome()
    candidate = _with(found, args, {})
    others = [r for r in candidate.assignments if r.casefold() != resource_no.casefold()]
    if add:
        candidate.assignments = [resource_no] if args.get("ReplaceResource") else candidate.assignments
        if resource_no.casefold() not in (r.casefold() for r in candidate.assignments):
            candidate.assignments.append(resource_no)
    else:
        candidate.assignments = others
    return _save(ctx, candidate, args)


def add_appointment_resource(ctx: Context, args: Args) -> Outcome:
    return _assignment_change(ctx, args, add=True)


def delete_appointment_resource(ctx: Context, args: Args) -> Outcome:
    return _assignment_change(ctx, args, add=False)


# --- master data -----------------------------------------------------------------------------------
def _pascal(name: str) -> str:
    return name[0].upper() + name[1:]


def _resource_params() -> tuple[Param, ...]:
    params = [Param("ResourceNo", required=True, max_length=50)]
    for name, length in RESOURCE_STRINGS.items():
        if name != "resourceNo":
            kind: Kind = "email" if name.lower().endswith("email") else "id"
            params.append(Param(_pascal(name), kind, max_length=length))
    params += [Param(_pascal(n), "bool") for n in sorted(RESOURCE_BOOLEANS)]
    params += [Param(_pascal(n), "int") for n in sorted(RESOURCE_INTEGERS)]
    params += [Param(_pascal(n), "decimal") for n in sorted(RESOURCE_NUMBERS)]
    params += [Param(_pascal(n), "datetime") for n in sorted(RESOURCE_DATES)]
    return tuple(params)


def upsert_resource(ctx: Context, args: Args) -> Outcome:
    ctx.store.upsert_resource({name[0].lower() + name[1:]: value for name, value in args.items()})
    return Outcome(changed=True)


def upsert_category(ctx: Context, args: Args) -> Outcome:
    ctx.store.upsert_category(args["CategoryName"], args.get("DisplayName"), args.get("CategoryHexColor"))
    return Outcome(changed=True)


def upsert_time_marker(ctx: Context, args: Args) -> Outcome:
    ctx.store.upsert_time_marker(args["Name"], args.get("Color"))
    return Outcome(changed=True)


def upsert_job(ctx: Context, args: Args) -> Outcome:
    ctx.store.upsert_job(
        Job(args["SourceApp"], args["SourceType"], args["JobNo"], args.get("ShortDescription"), args.get("Description"))
    )
    return Outcome(changed=True)


def upsert_task(ctx: Context, args: Args) -> Outcome:
    task = Task(
        args["SourceApp"], args["SourceType"], args["JobNo"], args["TaskNo"],
        args.get("ShortDescription"), args.get("Description"),
    )
    try:
        ctx.store.upsert_task(task)
    except LookupProblem as exc:
        raise ProcedureError(str(exc)) from None
    return Outcome(changed=True)


# The official SDK models of an Exchange appointment (both SDKs): AppointmentId, AppointmentGuid,
# ExchangeId, ICalUId, Start, End, Subject, Body, Importance, ResourceEmail, ShowAs, Sensitivity,
# Categories, CreatedByExchange -- and nothing else (no all-day flag, no location).
_EXCHANGE_ITEM = (
    Param("ExchangeId"), Param("ICalUId"), Param("Subject", "text", clearable=True),
    Param("Body", "text", clearable=True), Param("Importance", "int", low=0, high=2), Param("ShowAs", "int", low=1, high=6),
    Param("Sensitivity", "int", low=1, high=4), Param("Categories", "list", clearable=True),
    Param("CreatedByExchange", "bool"),
)

_SOURCE_REQUIRED = (
    Param("SourceApp", required=True, max_length=30),
    Param("SourceType", required=True, max_length=10),
)

PROCEDURES: dict[str, Procedure] = {
    p.name.casefold(): p
    for p in (
        Procedure(
            "mboc_upsertExchangeAppointment",
            (
                *APPOINTMENT_REF, *_EXCHANGE_ITEM,
                Param("Start", "datetime", required=True), Param("End", "datetime", required=True),
                Param("ResourceEmail", "email", required=True),
            ),
            upsert_exchange_appointment,
        ),
        Procedure(
            "mboc_deleteExchangeAppointment",
            # The .NET SDK's delete sends every field of the model (Start and End included); the
            # procedure declares them all, reads the ids and ignores the rest.
            (
                *APPOINTMENT_REF, *_EXCHANGE_ITEM,
                Param("Start", "datetime"), Param("End", "datetime"), Param("ResourceEmail", "email"),
            ),
            delete_exchange_appointment,
        ),
        Procedure(
            "mboc_upsertAppointment",
            (
                *APPOINTMENT_REF, *_SOURCE_REQUIRED,
                Param("AppointmentNo", max_length=50),
                Param("JobNo", max_length=50), Param("TaskNo", max_length=50), Param("ResourceNo", max_length=50),
                Param("Subject", "text"), Param("Body", "text"),
                Param("Start", "datetime", required=True), Param("End", "datetime", required=True),
                Param("IsAllDayEvent", "bool"), Param("TimeMarker", max_length=100), Param("Category", max_length=100),
                Param("Importance", "int", low=0, high=2), Param("Locked", "bool"), Param("ReplaceResource", "bool"),
                Param("SentFromBackOffice", "bool"), Param("BackOfficeID"), Param("BackOfficeParentID"),
                Param("PlanningUOM"), Param("PlanningUOMConversion", "decimal"), Param("PlanningQty", "decimal"),
                Param("UseFixPlanningQty", "bool"), Param("RoundToUOM", "bool"),
            ),
            upsert_appointment,
        ),
        Procedure(
            "mboc_deleteAppointment",
            (*APPOINTMENT_REF, *BACK_OFFICE, Param("ResourceNo", max_length=50), Param("AppointmentNo")),
            delete_appointment,
        ),
        Procedure(
            "mboc_addAppointmentResource",
            (*APPOINTMENT_REF, *BACK_OFFICE, Param("ResourceNo", required=True), Param("ReplaceResource", "bool")),
            add_appointment_resource,
        ),
        Procedure(
            "mboc_deleteAppointmentResource",
            (*APPOINTMENT_REF, *BACK_OFFICE, Param("ResourceNo", required=True)),
            delete_appointment_resource,
        ),
        Procedure("mboc_upsertResource", _resource_params(), upsert_resource),
        Procedure(
            "mboc_upsertCategory",
            (
                Param("CategoryName", required=True, max_length=100), Param("DisplayName", max_length=100),
                Param("CategoryHexColor", "color"),
            ),
            upsert_category,
        ),
        Procedure(
            "mboc_upsertTimeMarker",
            (Param("Name", required=True, max_length=100), Param("Color", "color")),
            upsert_time_marker,
        ),
        Procedure(
            "mboc_upsertJob",
            (*_SOURCE_REQUIRED, Param("JobNo", required=True, max_length=50), Param("ShortDescription", "text"),
             Param("Description", "text")),
            upsert_job,
            lenient=True,
        ),
        Procedure(
            "mboc_upsertTask",
            (*_SOURCE_REQUIRED, Param("JobNo", required=True, max_length=50), Param("TaskNo", required=True,
             max_length=50), Param("ShortDescription", "text"), Param("Description", "text")),
            upsert_task,
            lenient=True,
        ),
    )
}
