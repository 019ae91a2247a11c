"""JSON shapes the emulator answers and delivers.

- :func:`incoming` — the Swagger ``appointment-incoming`` object (PascalCase properties, plus ``id``
  and ``appointmentNo`` as the schema spells them): ``GET /appointment`` and webhook payloads. A
  :class:`View` says how dates are written and whether the fields outside the published schema
  (``IsAllDayEvent`` and the Outlook origin fields) are added.
- :func:`flat_camel` — the flat camelCase shape of that schema's ``example`` (the other casing a
  webhook may arrive in; ``payload_casing = "camel"``).
- :func:`full` — every stored field, for the control plane.
- :func:`resource_json`, :func:`category_json`, :func:`time_marker_json` — the list definitions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from .config import SchedulerEmulatorConfig
from .model import RESOURCE_FIELDS, Appointment, Category, Resource, TimeMarker
from .store import Store
from .values import iso_z


@dataclass(frozen=True)
class View:
    """How an appointment is written out: date format and the fields beyond the published schema."""

    dates: str = "utc_z"  # naive | utc_z | offset
    offset_minutes: int = 0
    outlook_fields: bool = True

    @classmethod
    def of(cls, config: SchedulerEmulatorConfig) -> View:
        """The view the API and the webhooks use under ``config``."""
        return cls(config.payload_dates, config.payload_offset_minutes, config.payload_outlook_fields)

    def date(self, value: datetime | None) -> str | None:
        if value is None or self.dates == "utc_z":
            return iso_z(value)
        if self.dates == "naive":
            return (iso_z(value) or "").removesuffix("Z")
        local = value.astimezone(timezone(timedelta(minutes=self.offset_minutes)))
        text = (iso_z(local.replace(tzinfo=UTC)) or "").removesuffix("Z")
        sign = "+" if self.offset_minutes >= 0 else "-"
        hours, minutes = divmod(abs(self.offset_minutes), 60)
        return f"{text}{sign}{hours:02d}:{minutes:02d}"


FULL = View()  # the control plane shows everything, in UTC with Z


def incoming(store: Store, appt: Appointment, view: View = FULL) -> dict[str, Any]:
    """``appointment-incoming``; with ``view.outlook_fields``, also ``IsAllDayEvent`` and, for
    Exchange-origin items, their Outlook origin fields."""
    date = view.date
    body: dict[str, Any] = {
        "id": appt.id,
        "appointmentNo": appt.appointment_no,
        "AppointmentGuid": appt.guid,
        "Subject": appt.subject,
        "Body": appt.body,
        "StartDate": date(appt.start),
        "EndDate": date(appt.end),
        "Importance": appt.importance,
        "Locked": appt.locked,
        "PlanningUOM": appt.planning_uom,
        "PlanningQty": appt.planning_qty,
        "UseFixPlanningQty": appt.use_fix_planning_qty,
        "RoundToUOM": appt.round_to_uom,
        "LastModifiedDate": date(appt.last_modified_date),
        "LastModifiedUser": appt.last_modified_user,
        "CreatedDate": date(appt.created_date),
        "CreatedUser": appt.created_user,
        "IsRecurrenceException": appt.is_recurrence_exception,
        "CapacityIndicator": appt.capacity_indicator,
        "Task": _task(store, appt),
        "Category": _category(store, appt),
        "TimeMarker": _time_marker(store, appt),
        "Assignments": _assignments(store, appt),
        "AppointmentFieldValues": list(appt.field_values),
        "AppointmentUrls": list(appt.urls),
        "AppointmentContainers": list(appt.containers),
        "Notifications": list(appt.notifications),
    }
    if view.outlook_fields:
        body["IsAllDayEvent"] = appt.is_all_day
    if view.outlook_fields and appt.origin == "exchange":
        body |= {
            "CreatedByExchange": appt.created_by_exchange,
            "ExchangeId": appt.exchange_id,
            "ICalUId": appt.ical_uid,
            "ShowAs": appt.show_as,
            "Sensitivity": appt.sensitivity,
            "Categories": list(appt.categories),
        }
    return body


def flat_camel(store: Store, appt: Appointment, view: View = FULL) -> dict[str, Any]:
    """The schema example's flat shape: one resource number (the first assignment) and no more (plus
    the numeric ``id``, which the full shape carries too)."""
    source_app, source_type, job_no, task_no = appt.task or (appt.source_app, appt.source_type, None, None)
    body: dict[str, Any] = {
        "id": appt.id,
        "appointmentGuid": appt.guid,
        "sourceApp": source_app,
        "sourceType": source_type,
        "jobNo": job_no,
        "taskNo": task_no,
        "resourceNo": appt.assignments[0] if appt.assignments else None,
        "subject": appt.subject,
        "body": appt.body,
        "start": view.date(appt.start),
        "end": view.date(appt.end),
    }
    if view.outlook_fields:
        body["isAllDayEvent"] = appt.is_all_day
        if appt.origin == "exchange":
            body["createdByExchange"] = appt.created_by_exchange
    return body


def full(store: Store, appt: Appointment) -> dict[str, Any]:
    """Everything stored about an appointment (control plane only)."""
    return incoming(store, appt, FULL) | {
        "IsAllDayEvent": appt.is_all_day,
        "Origin": appt.origin,
        "SourceApp": appt.source_app,
        "SourceType": appt.source_type,
        "CreatedByExchange": appt.created_by_exchange,
        "ExchangeId": appt.exchange_id,
        "ICalUId": appt.ical_uid,
        "ShowAs": appt.show_as,
        "Sensitivity": appt.sensitivity,
        "Categories": list(appt.categories),
        "Location": appt.location,
        "PlanningUOMConversion": appt.planning_uom_conversion,
        "BackOfficeId": appt.back_office_id,
        "BackOfficeParentId": appt.back_office_parent_id,
        "ResourceNos": list(appt.assignments),
    }


def resource_json(resource: Resource) -> dict[str, Any]:
    out = {name: resource.get(name) for name in RESOURCE_FIELDS}
    for name, value in out.items():
        if hasattr(value, "isoformat"):
            out[name] = iso_z(value)
    return out


def category_json(category: Category) -> dict[str, Any]:
    # The Swagger ``categorylist`` types ``id`` as a string.
    return {"id": str(category.id), "name": category.name, "displayName": category.display_name, "color": category.color}


def time_marker_json(marker: TimeMarker) -> dict[str, Any]:
    return {"id": str(marker.id), "name": marker.name, "color": marker.color}


def _task(store: Store, appt: Appointment) -> dict[str, Any] | None:
    if appt.task is None:
        return None
    source_app, source_type, job_no, task_no = appt.task
    return {"TaskNo": task_no, "Job": {"SourceApp": source_app, "SourceType": source_type, "JobNo": job_no}}


def _category(store: Store, appt: Appointment) -> dict[str, Any] | None:
    if appt.category is None:
        return None
    found = store.category(appt.category)
    return {"DisplayName": found.display_name if found else appt.category, "Color": found.color if found else None}


def _time_marker(store: Store, appt: Appointment) -> dict[str, Any] | None:
    if appt.time_marker is None:
        return None
    found = store.time_marker(appt.time_marker)
    return {"Name": found.name if found else appt.time_marker, "Color": found.color if found else None}


def _assignments(store: Store, appt: Appointment) -> list[dict[str, Any]]:
    out = []
    for resource_no in appt.assignments:
        resource = store.resource(resource_no)
        if resource is None:
            continue
        out.append(
            {
                "ResourceId": resource["id"],
                "Resource": {
                    "ResourceNo": resource["resourceNo"],
                    "DisplayName": resource.get("displayName"),
                    "Email": resource.get("email"),
                    "Department": resource.get("department"),
                    "SourceApp": resource.get("sourceApp"),
                    "SourceType": resource.get("sourceType"),
                    "ResourceType": {"DisplayName": resource.get("resourceType")},
                },
            }
        )
    return out
