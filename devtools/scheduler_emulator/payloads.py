"""JSON shapes the emulator answers and delivers.

- :func:`incoming` — the Swagger ``appointment-incoming`` object (PascalCase properties, plus ``id``
  and ``appointmentNo`` as the schema spells them): ``GET /appointment`` and webhook payloads.
- :func:`flat_camel` — the flat camelCase shape of that schema's ``example`` (the other casing a
  webhook may arrive in; ``payload_casing = "camel"``).
- :func:`full` — every stored field, for the control plane.
- :func:`resource_json`, :func:`category_json`, :func:`time_marker_json` — the list definitions.
"""

from __future__ import annotations

from typing import Any

from .model import RESOURCE_FIELDS, Appointment, Category, Resource, TimeMarker
from .store import Store
from .values import iso_z


def incoming(store: Store, appt: Appointment) -> dict[str, Any]:
    """``appointment-incoming``; Exchange-origin items also carry their Outlook origin fields."""
    body: dict[str, Any] = {
        "id": appt.id,
        "appointmentNo": appt.appointment_no,
        "AppointmentGuid": appt.guid,
        "Subject": appt.subject,
        "Body": appt.body,
        "StartDate": iso_z(appt.start),
        "EndDate": iso_z(appt.end),
        "IsAllDayEvent": appt.is_all_day,
        "Importance": appt.importance,
        "Locked": appt.locked,
        "PlanningUOM": appt.planning_uom,
        "PlanningQty": appt.planning_qty,
        "UseFixPlanningQty": appt.use_fix_planning_qty,
        "RoundToUOM": appt.round_to_uom,
        "LastModifiedDate": iso_z(appt.last_modified_date),
        "LastModifiedUser": appt.last_modified_user,
        "CreatedDate": iso_z(appt.created_date),
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
    if appt.origin == "exchange":
        body |= {
            "CreatedByExchange": appt.created_by_exchange,
            "ExchangeId": appt.exchange_id,
            "ICalUId": appt.ical_uid,
            "ShowAs": appt.show_as,
            "Sensitivity": appt.sensitivity,
            "Categories": list(appt.categories),
        }
    return body


def flat_camel(store: Store, appt: Appointment) -> dict[str, Any]:
    """The schema example's flat shape: one resource number (the first assignment) and no more."""
    source_app, source_type, job_no, task_no = appt.task or (appt.source_app, appt.source_type, None, None)
    return {
        "appointmentGuid": appt.guid,
        "sourceApp": source_app,
        "sourceType": source_type,
        "jobNo": job_no,
        "taskNo": task_no,
        "resourceNo": appt.assignments[0] if appt.assignments else None,
        "subject": appt.subject,
        "body": appt.body,
        "start": iso_z(appt.start),
        "end": iso_z(appt.end),
    }


def full(store: Store, appt: Appointment) -> dict[str, Any]:
    """Everything stored about an appointment (control plane only)."""
    return incoming(store, appt) | {
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
