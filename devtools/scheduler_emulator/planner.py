"""The planner's hand: appointments from JSON in the ``appointment-incoming`` shape.

Used by the planner control plane (create / patch) and by ``/_emulator/seed``. Keys match
case-insensitively, so PascalCase (``StartDate``, ``Assignments``), the schema's own ``id`` /
``appointmentNo`` and the flat camelCase of its example (``start``, ``end``, ``sourceApp``,
``jobNo``, ``taskNo``, ``resourceNo``) are all read. Values may be JSON-typed or strings.

What a planner picks on the board (a task, a category, a time marker) is created when missing, for
convenience; assignments must name existing resources (unknown -> :class:`PlannerProblem`, a 400).
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from .model import Appointment, Job, Task
from .store import Store
from .values import ValueProblem, parse_bool, parse_datetime, parse_decimal, parse_guid, parse_int, parse_list

_ABSENT = object()


class PlannerProblem(ValueError):
    """A body that cannot be applied; the message names the field."""


def _get(body: dict[str, Any], *names: str) -> Any:
    folded = {key.casefold(): value for key, value in body.items() if isinstance(key, str)}
    for name in names:
        if name.casefold() in folded:
            return folded[name.casefold()]
    return _ABSENT


def _obj(name: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PlannerProblem(f"'{name}' must be an object")
    return value


def _text(name: str, value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise PlannerProblem(f"'{name}' must be a string or null")


def _typed(name: str, value: Any, kind: str, low: int | None = None, high: int | None = None) -> Any:
    """A JSON value of the wanted kind, or its string form (as imports send it)."""
    try:
        if kind == "bool":
            return value if isinstance(value, bool) else parse_bool(_need_str(value))
        if kind == "int":
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            return parse_int(_need_str(value), low, high)
        if kind == "decimal":
            return None if value is None else float(value) if isinstance(value, int | float) else parse_decimal(value)
        if kind == "datetime":
            return parse_datetime(_need_str(value))
        if kind == "list":
            if isinstance(value, list) and all(isinstance(v, str) for v in value):
                return list(value)
            return parse_list(_need_str(value))
    except ValueProblem as exc:
        raise PlannerProblem(f"'{name}': {exc}") from None
    raise AssertionError(kind)


def _need_str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueProblem(f"{value!r} has the wrong type")
    return value


def create_appointment(store: Store, body: Any, user: str, *, keep_dates: bool = False) -> Appointment:
    """A new appointment from ``body`` (``StartDate``/``EndDate`` required; GUID generated when absent)."""
    body = _obj("body", body)
    guid_value = _get(body, "AppointmentGuid")
    guid = str(uuid.uuid4()) if guid_value in (_ABSENT, None, "") else _guid(guid_value)
    if guid in store.appointments:
        raise PlannerProblem(f"an appointment with AppointmentGuid {guid} already exists")
    start, end = _get(body, "StartDate", "Start"), _get(body, "EndDate", "End")
    if start in (_ABSENT, None) or end in (_ABSENT, None):
        raise PlannerProblem("'StartDate' and 'EndDate' are required")
    exchange = _get(body, "CreatedByExchange") not in (_ABSENT, None, False, "False", "false", "0")
    origin = _get(body, "Origin")
    appt = Appointment(
        id=store.next_id("appointment"), guid=guid,
        origin="exchange" if exchange or origin == "exchange" else "planning",
        start=_typed("StartDate", start, "datetime"), end=_typed("EndDate", end, "datetime"),
    )
    _apply(store, appt, body)
    return _save(store, appt, body, user, keep_dates)


def patch_appointment(store: Store, current: Appointment, body: Any, user: str) -> Appointment:
    """``current`` with the given fields changed; always stamped as modified (a planner saved it)."""
    candidate = dataclasses.replace(current, assignments=list(current.assignments), categories=list(current.categories))
    _apply(store, candidate, _obj("body", body))
    return _save(store, candidate, body, user, keep_dates=False, force=True)


def _save(store: Store, appt: Appointment, body: dict[str, Any], user: str, keep_dates: bool,
          force: bool = False) -> Appointment:
    if appt.end < appt.start:
        raise PlannerProblem("'EndDate' is before 'StartDate'")
    named = _get(body, "LastModifiedUser")
    user = named if isinstance(named, str) and named else user
    store.save_appointment(appt, user, force=force)
    if keep_dates:  # seeding may set the history explicitly
        for field_name, key in (("created_date", "CreatedDate"), ("last_modified_date", "LastModifiedDate")):
            value = _get(body, key)
            if value not in (_ABSENT, None):
                setattr(appt, field_name, _typed(key, value, "datetime"))
        created_user = _get(body, "CreatedUser")
        if isinstance(created_user, str):
            appt.created_user = created_user
    return appt


def _guid(value: Any) -> str:
    try:
        return parse_guid(_need_str(value))
    except ValueProblem as exc:
        raise PlannerProblem(f"'AppointmentGuid': {exc}") from None


_SIMPLE: tuple[tuple[tuple[str, ...], str, str], ...] = (
    # (accepted keys, attribute, kind)
    (("StartDate", "Start"), "start", "datetime"),
    (("EndDate", "End"), "end", "datetime"),
    (("IsAllDayEvent",), "is_all_day", "bool"),
    (("Locked",), "locked", "bool"),
    (("IsRecurrenceException",), "is_recurrence_exception", "bool"),
    (("CapacityIndicator",), "capacity_indicator", "bool"),
    (("UseFixPlanningQty",), "use_fix_planning_qty", "bool"),
    (("RoundToUOM",), "round_to_uom", "bool"),
    (("PlanningQty",), "planning_qty", "decimal"),
    (("CreatedByExchange",), "created_by_exchange", "bool"),
    (("Categories",), "categories", "list"),
)
_TEXT = (
    ("Subject", "subject"), ("Body", "body"), ("appointmentNo", "appointment_no"), ("PlanningUOM", "planning_uom"),
    ("ExchangeId", "exchange_id"), ("ICalUId", "ical_uid"), ("Location", "location"),
)
_LISTS = (
    ("AppointmentFieldValues", "field_values"), ("AppointmentUrls", "urls"),
    ("AppointmentContainers", "containers"), ("Notifications", "notifications"),
)
_ENUMS = (("Importance", "importance", 0, 2), ("ShowAs", "show_as", 1, 6), ("Sensitivity", "sensitivity", 1, 4))


def _apply(store: Store, appt: Appointment, body: dict[str, Any]) -> None:
    """Set every field ``body`` mentions on ``appt`` (in place)."""
    for keys, attr, kind in _SIMPLE:
        value = _get(body, *keys)
        if value is not _ABSENT and value is not None:
            setattr(appt, attr, _typed(keys[0], value, kind))
    for key, attr in _TEXT:
        value = _get(body, key)
        if value is not _ABSENT:
            setattr(appt, attr, _text(key, value))
    for key, attr in _LISTS:
        value = _get(body, key)
        if value is not _ABSENT:
            if not isinstance(value, list):
                raise PlannerProblem(f"'{key}' must be an array")
            setattr(appt, attr, list(value))
    for key, attr, low, high in _ENUMS:
        value = _get(body, key)
        if value is not _ABSENT:
            setattr(appt, attr, None if value is None and key != "Importance" else _typed(key, value, "int", low, high))
    _apply_task(store, appt, body)
    _apply_indicators(store, appt, body)
    _apply_assignments(store, appt, body)


def _apply_task(store: Store, appt: Appointment, body: dict[str, Any]) -> None:
    task = _get(body, "Task")
    if task is _ABSENT:
        flat = [_get(body, k) for k in ("sourceApp", "sourceType", "jobNo", "taskNo")]
        if _ABSENT in flat:
            return
        task = {"TaskNo": flat[3], "Job": {"SourceApp": flat[0], "SourceType": flat[1], "JobNo": flat[2]}}
    if task is None:
        appt.task = None
        return
    task = _obj("Task", task)
    job = _obj("Task.Job", _get(task, "Job"))
    parts = [_get(job, "SourceApp"), _get(job, "SourceType"), _get(job, "JobNo"), _get(task, "TaskNo")]
    if not all(isinstance(p, str) and p for p in parts):
        raise PlannerProblem("'Task' needs TaskNo and Job{SourceApp, SourceType, JobNo} as non-empty strings")
    source_app, source_type, job_no, task_no = parts
    store.upsert_job(Job(source_app, source_type, job_no))
    stored = store.upsert_task(Task(source_app, source_type, job_no, task_no))
    appt.task = (stored.source_app, stored.source_type, stored.job_no, stored.task_no)
    appt.source_app, appt.source_type = stored.source_app, stored.source_type


def _apply_indicators(store: Store, appt: Appointment, body: dict[str, Any]) -> None:
    category = _get(body, "Category")
    if category is not _ABSENT:
        if category is None:
            appt.category = None
        else:
            name, color = _indicator("Category", category, "DisplayName")
            found = store.category(name) or store.upsert_category(name, name, color)
            appt.category = found.name
    marker = _get(body, "TimeMarker")
    if marker is not _ABSENT:
        if marker is None:
            appt.time_marker = None
        else:
            name, color = _indicator("TimeMarker", marker, "Name")
            appt.time_marker = (store.time_marker(name) or store.upsert_time_marker(name, color)).name


def _indicator(key: str, value: Any, name_key: str) -> tuple[str, str | None]:
    if isinstance(value, str) and value:
        return value, None
    value = _obj(key, value)
    name = _get(value, name_key, "Name", "DisplayName")
    color = _get(value, "Color")
    if not isinstance(name, str) or not name:
        raise PlannerProblem(f"'{key}' needs a non-empty '{name_key}'")
    return name, color if isinstance(color, str) else None


def _apply_assignments(store: Store, appt: Appointment, body: dict[str, Any]) -> None:
    items = _get(body, "Assignments")
    if items is _ABSENT:
        single = _get(body, "resourceNo")
        if single is _ABSENT:
            return
        items = [] if single is None else [single]
    if items is None:
        items = []
    if not isinstance(items, list):
        raise PlannerProblem("'Assignments' must be an array")
    resource_nos: list[str] = []
    for index, item in enumerate(items):
        resource_no = _assignment_resource_no(store, index, item)
        if resource_no.casefold() not in (r.casefold() for r in resource_nos):
            resource_nos.append(resource_no)
    appt.assignments = resource_nos


def _assignment_resource_no(store: Store, index: int, item: Any) -> str:
    where = f"'Assignments[{index}]'"
    if isinstance(item, str):
        wanted: Any = item
    elif isinstance(item, dict):
        nested = _get(item, "Resource")
        wanted = _get(nested, "ResourceNo") if isinstance(nested, dict) else _get(item, "ResourceNo")
        if wanted is _ABSENT:
            resource_id = _get(item, "ResourceId")
            found = next((r for r in store.resources.values() if r["id"] == resource_id), None)
            if found is None:
                raise PlannerProblem(f"{where}: needs Resource.ResourceNo, ResourceNo or a known ResourceId")
            return str(found["resourceNo"])
    else:
        raise PlannerProblem(f"{where} must be an object or a resource number")
    if not isinstance(wanted, str) or not wanted:
        raise PlannerProblem(f"{where}: ResourceNo must be a non-empty string")
    resource = store.resource(wanted)
    if resource is None:
        raise PlannerProblem(f"{where}: unknown resource number {wanted!r}")
    return str(resource["resourceNo"])

