"""The emulator's domain records: resources, indicators, jobs, tasks and appointments.

Resources are kept as dicts keyed by the camelCase property names of the Swagger ``resource``
definition (the shape ``GET /resource`` answers), so every documented field round-trips without a
hand-written attribute for each of its ~80 properties.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, Literal

Origin = Literal["planning", "exchange"]

# The Swagger ``resource`` / ``resourcelist`` properties by type (everything else is a string).
RESOURCE_BOOLEANS = frozenset(
    {"replacementResource", "doNotShow", "exchangeIntegrationEnabled", "resourceGpsTrackingEnabled", "bulkPlanning"}
    | {f"freeBit{i}" for i in range(1, 6)}
)
RESOURCE_INTEGERS = frozenset({"resourceTypeId", "teamSort", "teamMemberSort"})
RESOURCE_NUMBERS = frozenset(
    {"homeAddressGeoLong", "homeAddressGeoLat", "bulkCapacity"} | {f"freeDecimal{i}" for i in range(1, 6)}
)
RESOURCE_DATES = frozenset({"inServiceFrom", "inServiceTill"} | {f"freeDate{i}" for i in range(1, 6)})
RESOURCE_STRINGS: dict[str, int | None] = {  # name -> maxLength from the Swagger
    "sourceApp": 30, "sourceType": 10, "resourceNo": 50, "resourceName": 100, "displayName": 100,
    "department": 50, "email": 100, "phone": 50, "mobilePhone": 50, "fieldServiceEmail": 100,
    "personalEmail": 100, "gpsTrackingResourceNo": 50, "homeAddress": None, "homePhone": 50,
    "homeEmail": 50, "homeStreet": 255, "homeStreetNo": 20, "homePostcode": 20, "homeCity": 50,
    "homeCounty": 50, "homeState": 50, "homeCountry": 50, "homeRegion": 10, "teamCode": 20,
    "teamName": 100, "teamType": 20, "teamMemberType": 20, "url1": 1000, "urlDescription1": 255,
    "url2": 1000, "urlDescription2": 255, "url3": 1000, "urlDescription3": 255, "pin": 100,
    # ``resourceType`` (the type's display name) is in the Swagger example and the import procedure.
    "resourceType": 100,
} | {f"freeText{i}": 100 for i in range(1, 21)}
RESOURCE_FIELDS: tuple[str, ...] = (
    "id",
    *RESOURCE_STRINGS,
    *sorted(RESOURCE_BOOLEANS | RESOURCE_INTEGERS | RESOURCE_NUMBERS | RESOURCE_DATES),
)

Resource = dict[str, Any]


@dataclass
class Category:
    id: int
    name: str
    display_name: str
    color: str | None = None


@dataclass
class TimeMarker:
    id: int
    name: str
    color: str | None = None


@dataclass
class Job:
    source_app: str
    source_type: str
    job_no: str
    short_description: str | None = None
    description: str | None = None


@dataclass
class Task:
    source_app: str
    source_type: str
    job_no: str
    task_no: str
    short_description: str | None = None
    description: str | None = None


TaskKey = tuple[str, str, str, str]  # (source_app, source_type, job_no, task_no) as stored


@dataclass
class Appointment:
    """One appointment on the planning board (planned there, or created from an Outlook item)."""

    id: int
    guid: str
    origin: Origin
    start: datetime
    end: datetime
    subject: str | None = None
    body: str | None = None
    appointment_no: str | None = None
    is_all_day: bool = False
    importance: int = 0
    locked: bool = False
    category: str | None = None  # a category's name
    time_marker: str | None = None  # a time marker's name
    task: TaskKey | None = None
    source_app: str | None = None
    source_type: str | None = None
    assignments: list[str] = field(default_factory=list)  # resource numbers, in assignment order
    # Origin of items created from Outlook (mboc_upsertExchangeAppointment).
    created_by_exchange: bool | None = None
    exchange_id: str | None = None
    ical_uid: str | None = None
    show_as: int | None = None
    sensitivity: int | None = None
    categories: list[str] = field(default_factory=list)
    location: str | None = None
    # Planning details that the schema carries; stored, not interpreted.
    planning_uom: str | None = None
    planning_uom_conversion: float | None = None
    planning_qty: float | None = None
    use_fix_planning_qty: bool = False
    round_to_uom: bool = False
    back_office_id: str | None = None
    back_office_parent_id: str | None = None
    is_recurrence_exception: bool = False
    capacity_indicator: bool = False
    field_values: list[Any] = field(default_factory=list)
    urls: list[Any] = field(default_factory=list)
    containers: list[Any] = field(default_factory=list)
    notifications: list[Any] = field(default_factory=list)
    # Metadata: not part of the content (a write that changes nothing leaves these alone).
    created_date: datetime | None = None
    created_user: str | None = None
    last_modified_date: datetime | None = None
    last_modified_user: str | None = None


_METADATA = frozenset({"id", "guid", "created_date", "created_user", "last_modified_date", "last_modified_user"})
CONTENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Appointment) if f.name not in _METADATA)


def same_content(a: Appointment, b: Appointment) -> bool:
    """Whether two versions differ only in metadata (ids, created/modified stamps)."""
    return all(getattr(a, name) == getattr(b, name) for name in CONTENT_FIELDS)
