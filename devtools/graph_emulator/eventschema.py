"""Validation of event bodies (POST/PATCH) into normalised values.

Unknown properties, read-only properties, wrong JSON types and bad enum literals are rejected
with 400, as Graph does (``RequestBodyRead`` / ``ErrorInvalidRequest``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from .errors import GraphError, bad_request, body_read_error
from .recurrence import normalize_recurrence
from .store import ExtKey, ExtProp
from .timeutil import parse_datetime, require_zone

SENSITIVITY = ["normal", "personal", "private", "confidential"]
SHOW_AS = ["free", "tentative", "busy", "oof", "workingElsewhere", "unknown"]
IMPORTANCE = ["low", "normal", "high"]
BODY_TYPES = ["text", "html"]
ATTENDEE_TYPES = ["required", "optional", "resource"]
MEETING_PROVIDERS = ["unknown", "teamsForBusiness", "skypeForBusiness", "skypeForConsumer"]

READ_ONLY = {
    "id", "createdDateTime", "lastModifiedDateTime", "changeKey", "iCalUId", "uid", "type", "seriesMasterId",
    "bodyPreview", "isCancelled", "isOrganizer", "hasAttachments", "webLink", "responseStatus",
    "originalStartTimeZone", "originalEndTimeZone", "originalStart", "onlineMeeting", "onlineMeetingUrl",
    "isDraft", "occurrenceId", "cancelledOccurrences", "exceptionOccurrences",
}
UNSUPPORTED_NAVIGATION = {"multiValueExtendedProperties", "extensions", "attachments", "instances", "calendar"}
_EXT_ID = re.compile(r"^\s*(\w+)\s+\{([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\}"
                     r"\s+(Name|Id)\s+(\S.*?)\s*$", re.IGNORECASE)
EXT_TYPES = {"string", "integer", "boolean", "systemtime", "double", "short", "long", "float", "currency",
             "guid", "binary", "object", "applicationtime", "clsid", "error", "null"}


@dataclass
class EventInput:
    """What a POST/PATCH body asks for, validated and normalised."""

    props: dict[str, Any] = field(default_factory=dict)
    start: tuple[datetime, str] | None = None  # (UTC instant, timeZone as given)
    end: tuple[datetime, str] | None = None
    start_wall: time | None = None  # wall-clock time as given, for the all-day check
    end_wall: time | None = None
    is_all_day: bool | None = None
    recurrence_set: bool = False
    recurrence: dict[str, Any] | None = None
    transaction_id: str | None = None
    ext: dict[ExtKey, ExtProp] = field(default_factory=dict)


def ext_key(raw: Any) -> tuple[ExtKey, str]:
    """Parse ``"String {GUID} Name X"``: GUID and type compare case-insensitively, the name does not."""
    match = _EXT_ID.match(raw) if isinstance(raw, str) else None
    if not match or match.group(1).lower() not in EXT_TYPES:
        raise GraphError(400, "ErrorInvalidExtendedPropertyValue", f"The extended property id '{raw}' is not valid.")
    kind, guid, name_or_id, name = match.groups()
    guid = guid.lower()
    name_kind = name_or_id.lower()
    if name_kind == "id":
        name = name.lower()
    display_kind = "Name" if name_kind == "name" else "Id"
    display = f"{kind[0].upper()}{kind[1:]} {{{guid}}} {display_kind} {name}"
    return (kind.lower(), guid, name_kind, name), display


def _enum(value: Any, allowed: list[str], name: str) -> str:
    if isinstance(value, str):
        for candidate in allowed:
            if candidate.lower() == value.lower():
                return candidate
    raise body_read_error(f"Cannot convert the literal '{value}' to the expected type 'microsoft.graph.{name}'.")


def _type(value: Any, kind: type | tuple[type, ...], name: str, nullable: bool = True) -> Any:
    if value is None and nullable:
        return None
    if (isinstance(value, bool) and kind is int) or not isinstance(value, kind):
        raise body_read_error(f"Cannot convert the value of property '{name}' to the expected type.")
    return value


def _email(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("emailAddress"), dict):
        raise body_read_error(f"'{name}' needs an emailAddress object.")
    email = value["emailAddress"]
    address = _type(email.get("address"), str, f"{name}.emailAddress.address")
    display = _type(email.get("name"), str, f"{name}.emailAddress.name")
    return {"emailAddress": {"name": display if display is not None else address or "", "address": address or ""}}


def _location(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise body_read_error(f"Cannot convert the value of property '{name}' to microsoft.graph.location.")
    display = _type(value.get("displayName"), str, f"{name}.displayName")
    return {
        "displayName": display or "",
        "locationType": value.get("locationType") or "default",
        "uniqueIdType": value.get("uniqueIdType") or "unknown",
        **{k: v for k, v in value.items() if k not in ("displayName", "locationType", "uniqueIdType")},
    }


def _date_time_zone(value: Any, name: str) -> tuple[datetime, str, time]:
    if not isinstance(value, dict):
        raise body_read_error(f"Cannot convert the value of property '{name}' to microsoft.graph.dateTimeTimeZone.")
    text = value.get("dateTime")
    zone_name = value.get("timeZone")
    if not isinstance(text, str) or not text:
        raise bad_request(f"'{name}.dateTime' is required.")
    if not isinstance(zone_name, str):
        zone_name = ""
    zone = require_zone(zone_name)
    instant = parse_datetime(text, zone)
    return instant, zone_name, instant.astimezone(zone).time()


def _prop(name: str, value: Any) -> Any:
    """Validate and normalise one writable property (start/end/recurrence are handled apart)."""
    if name == "subject":
        return _type(value, str, name)
    if name == "body":
        if not isinstance(value, dict):
            raise body_read_error("Cannot convert the value of property 'body' to microsoft.graph.itemBody.")
        content = _type(value.get("content"), str, "body.content") or ""
        return {"contentType": _enum(value.get("contentType") or "text", BODY_TYPES, "bodyType"), "content": content}
    if name == "categories":
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise body_read_error("Cannot convert the value of property 'categories' to Collection(Edm.String).")
        return list(value)
    if name == "sensitivity":
        return _enum(value, SENSITIVITY, "sensitivity")
    if name == "showAs":
        return _enum(value, SHOW_AS, "freeBusyStatus")
    if name == "importance":
        return _enum(value, IMPORTANCE, "importance")
    if name == "onlineMeetingProvider":
        return _enum(value, MEETING_PROVIDERS, "onlineMeetingProviderType")
    if name == "location":
        return _location(value, name) if value is not None else {"displayName": "", "locationType": "default",
                                                                  "uniqueIdType": "unknown"}
    if name == "locations":
        if not isinstance(value, list):
            raise body_read_error("Cannot convert the value of property 'locations' to a collection.")
        return [_location(item, name) for item in value]
    if name == "attendees":
        if not isinstance(value, list):
            raise body_read_error("Cannot convert the value of property 'attendees' to a collection.")
        return [
            {
                "type": _enum(item.get("type") or "required", ATTENDEE_TYPES, "attendeeType")
                if isinstance(item, dict) else "required",
                "status": {"response": "none", "time": "0001-01-01T00:00:00Z"},
                **_email(item, name),
            }
            for item in value
        ]
    if name == "organizer":
        return _email(value, name)
    if name == "reminderMinutesBeforeStart":
        return _type(value, int, name, nullable=False)
    return _type(value, bool, name, nullable=False)


WRITABLE = {
    "subject", "body", "categories", "sensitivity", "showAs", "importance", "location", "locations", "attendees",
    "organizer", "isReminderOn", "reminderMinutesBeforeStart", "responseRequested", "allowNewTimeProposals",
    "isOnlineMeeting", "onlineMeetingProvider", "hideAttendees",
}
STRUCTURAL = {"start", "end", "isAllDay", "recurrence", "transactionId", "singleValueExtendedProperties"}


def parse_event_input(data: dict[str, Any], *, creating: bool, strict: bool) -> EventInput:
    """Validate a POST (``creating``) or PATCH body."""
    result = EventInput()
    for name, value in data.items():
        if name.startswith("@odata.") or name.startswith("@microsoft."):
            continue  # annotations (the SDKs send @odata.type)
        if name in WRITABLE:
            result.props[name] = _prop(name, value)
        elif name in STRUCTURAL:
            _structural(result, name, value, creating)
        elif name in UNSUPPORTED_NAVIGATION:
            raise bad_request(f"The Graph emulator does not support writing '{name}'.")
        elif not strict:
            continue
        elif name in READ_ONLY:
            raise GraphError(400, "ErrorInvalidPropertySet", f"The property '{name}' is read-only and can't be set.")
        else:
            raise body_read_error(
                f"The property '{name}' does not exist on type 'microsoft.graph.event'. Make sure to only use "
                "property names that are defined by the type or mark the type as open type."
            )
    if creating and (result.start is None or result.end is None):
        raise bad_request("An event needs both 'start' and 'end'.")
    return result


def _structural(result: EventInput, name: str, value: Any, creating: bool) -> None:
    if name == "start":
        instant, zone, wall = _date_time_zone(value, name)
        result.start, result.start_wall = (instant, zone), wall
    elif name == "end":
        instant, zone, wall = _date_time_zone(value, name)
        result.end, result.end_wall = (instant, zone), wall
    elif name == "isAllDay":
        result.is_all_day = _type(value, bool, name, nullable=False)
    elif name == "recurrence":
        result.recurrence_set = True
        result.recurrence = normalize_recurrence(value)
    elif name == "transactionId":
        if not creating:
            raise GraphError(400, "ErrorInvalidPropertySet", "The property 'transactionId' can't be changed.")
        result.transaction_id = _type(value, str, name)
    else:  # singleValueExtendedProperties
        if not isinstance(value, list):
            raise body_read_error("singleValueExtendedProperties must be an array.")
        for item in value:
            if not isinstance(item, dict) or set(item) - {"id", "value", "@odata.type"}:
                raise body_read_error("Each singleValueExtendedProperty needs exactly 'id' and 'value'.")
            key, display = ext_key(item.get("id"))
            if not isinstance(item.get("value"), str):
                raise GraphError(400, "ErrorInvalidExtendedPropertyValue", "An extended property value must be a string.")
            result.ext[key] = ExtProp(display, item["value"])
