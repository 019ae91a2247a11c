"""Domain model: a planner's `Appointment`, an Outlook `CalendarEvent`, and their enumerations.

Pure data and parsing, no I/O and no SDK types. Parsers accept the shapes the outside world really
sends (both casings of Dime.Scheduler's `appointment-incoming`; Graph's wire JSON) and raise
`InvalidPayload` with the reason when something required is missing or malformed. All times are
timezone-aware UTC datetimes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class InvalidPayload(ValueError):
    """Input that can never be processed; the message says which field and why."""


class ShowAs(StrEnum):
    FREE = "free"
    TENTATIVE = "tentative"
    BUSY = "busy"
    OOF = "oof"
    WORKING_ELSEWHERE = "workingElsewhere"
    UNKNOWN = "unknown"

    @property
    def planning_code(self) -> int:
        """Dime.Scheduler's ShowAs: Free=1, Tentative=2, Office(busy)=3, OutOfOffice=4, WorkingElsewhere=5, Unknown=6."""
        return list(ShowAs).index(self) + 1


class Sensitivity(StrEnum):
    NORMAL = "normal"
    PERSONAL = "personal"
    PRIVATE = "private"
    CONFIDENTIAL = "confidential"

    @property
    def planning_code(self) -> int:
        """Dime.Scheduler's Sensitivity: Normal=1, Personal=2, Private=3, Confidential=4."""
        return list(Sensitivity).index(self) + 1


class Importance(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"

    @property
    def planning_code(self) -> int:
        """Dime.Scheduler's Importance: Medium=0, High=1, Low=2."""
        return {Importance.NORMAL: 0, Importance.HIGH: 1, Importance.LOW: 2}[self]

    @classmethod
    def from_planning(cls, code: Any) -> Importance:
        try:
            return {0: cls.NORMAL, 1: cls.HIGH, 2: cls.LOW}[int(code)]
        except (KeyError, TypeError, ValueError):
            return cls.NORMAL


# -- helpers ------------------------------------------------------------------------------------
_FRACTION = re.compile(r"(\.\d{1,6})\d*")


def parse_utc(value: Any, field: str) -> datetime:
    """ISO 8601 → aware UTC datetime; a value without offset is taken as UTC (Dime.Scheduler sends UTC)."""
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayload(f"{field}: expected an ISO 8601 date-time, got {value!r}")
    text = _FRACTION.sub(r"\1", value.strip().replace(" ", "T", 1))
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidPayload(f"{field}: {value!r} is not an ISO 8601 date-time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def graph_time(moment: datetime) -> dict[str, str]:
    """A Graph dateTimeTimeZone in UTC."""
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _graph_datetime(value: Any, field: str) -> datetime:
    if not isinstance(value, Mapping):
        raise InvalidPayload(f"{field}: expected a dateTimeTimeZone object")
    naive = parse_utc(value.get("dateTime"), f"{field}.dateTime").replace(tzinfo=None)
    zone = str(value.get("timeZone") or "UTC")
    if zone.upper() in ("UTC", "ETC/UTC", "COORDINATED UNIVERSAL TIME"):
        return naive.replace(tzinfo=UTC)
    try:
        return naive.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)
    except (ZoneInfoNotFoundError, ValueError):
        # We ask Graph for UTC (Prefer: outlook.timezone="UTC"); anything else is unexpected.
        raise InvalidPayload(f"{field}.timeZone: unsupported time zone {zone!r}") from None


def _pick(data: Mapping[str, Any], *names: str) -> Any:
    """The first present key among `names`, case-insensitively (payloads arrive in two casings)."""
    for name in names:
        if name in data:
            return data[name]
    lowered = {k.lower(): v for k, v in data.items()}
    for name in names:
        if name.lower() in lowered:
            return lowered[name.lower()]
    return None


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _enum(kind: type[Any], value: Any, default: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        return default


# -- the planning side --------------------------------------------------------------------------
@dataclass(frozen=True)
class Assignment:
    resource_no: str
    email: str | None = None


@dataclass(frozen=True)
class Appointment:
    """A planner's appointment as Dime.Scheduler describes it (webhook payload or GET /appointment)."""

    guid: str
    subject: str
    body: str
    start: datetime
    end: datetime
    all_day: bool
    importance: Importance
    category: str | None
    time_marker: str | None
    job_no: str | None
    task_no: str | None
    source_app: str | None
    source_type: str | None
    assignments: tuple[Assignment, ...]
    last_modified: str | None
    created_by_exchange: bool
    appointment_id: str | None = None

    @property
    def resource_nos(self) -> frozenset[str]:
        return frozenset(a.resource_no for a in self.assignments)

    @classmethod
    def from_payload(cls, data: Any) -> Appointment:
        """Parse `appointment-incoming` in PascalCase or the flat camelCase of the schema's example."""
        if not isinstance(data, Mapping):
            raise InvalidPayload("appointment: expected a JSON object")
        guid = _text(_pick(data, "AppointmentGuid", "appointmentGuid")).strip()
        if not guid:
            raise InvalidPayload("AppointmentGuid: required")
        start = parse_utc(_pick(data, "StartDate", "start", "startDate"), "StartDate")
        end = parse_utc(_pick(data, "EndDate", "end", "endDate"), "EndDate")
        if end < start:
            raise InvalidPayload(f"EndDate: {end.isoformat()} is before StartDate {start.isoformat()}")
        task = _pick(data, "Task") or {}
        job = (task.get("Job") if isinstance(task, Mapping) else None) or {}
        category = _pick(data, "Category")
        marker = _pick(data, "TimeMarker")
        return cls(
            guid=guid.lower(),
            subject=_text(_pick(data, "Subject")),
            body=_text(_pick(data, "Body")),
            start=start,
            end=end,
            all_day=_all_day(_pick(data, "IsAllDayEvent", "isAllDayEvent", "isAllDay", "allDay"), start, end),
            importance=Importance.from_planning(_pick(data, "Importance")),
            category=_name(category, "DisplayName", "Name") if category is not None else None,
            time_marker=_name(marker, "Name", "DisplayName") if marker is not None else None,
            job_no=_opt(_pick(job, "JobNo") if job else _pick(data, "jobNo")),
            task_no=_opt(_pick(task, "TaskNo") if task else _pick(data, "taskNo")),
            source_app=_opt(_pick(job, "SourceApp") if job else _pick(data, "sourceApp")),
            source_type=_opt(_pick(job, "SourceType") if job else _pick(data, "sourceType")),
            assignments=_assignments(data),
            last_modified=_opt(_pick(data, "LastModifiedDate")),
            created_by_exchange=_flag(_pick(data, "CreatedByExchange"), "CreatedByExchange") or False,
            appointment_id=_appointment_id(_pick(data, "id", "AppointmentId")),
        )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


_TRUE_WORDS = frozenset({"true", "1"})
_FALSE_WORDS = frozenset({"false", "0", ""})


def _flag(value: Any, field: str) -> bool | None:
    """A boolean the payload may carry as JSON or as text (`True`/`False`, `1`/`0`): the string
    "False" is false. None when absent; anything else is an `InvalidPayload`."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in _TRUE_WORDS | _FALSE_WORDS:
        return value.strip().lower() in _TRUE_WORDS
    raise InvalidPayload(f"{field}: expected a boolean, got {value!r}")


def _all_day(value: Any, start: datetime, end: datetime) -> bool:
    """The all-day flag when the payload has one; without it (the published `appointment-incoming`
    schema has none) an appointment is all-day when it spans whole UTC days: it starts and ends at
    midnight UTC and is at least one day long. Dime.Scheduler keeps appointments in UTC, and the
    connector writes Outlook events in UTC, so this is the span Outlook itself calls all-day."""
    flag = _flag(value, "IsAllDayEvent")
    if flag is not None:
        return flag
    return end > start and start.time() == end.time() == datetime.min.time() and (end - start).days >= 1


def _appointment_id(value: Any) -> str | None:
    """The numeric appointment id (int64) as text; anything else is not an id."""
    if isinstance(value, bool) or value in (None, ""):
        return None
    text = str(value).strip()
    return text if text.isdigit() else None


def _name(value: Any, *keys: str) -> str | None:
    if isinstance(value, Mapping):
        return _opt(_pick(value, *keys))
    return _opt(value)


def _assignments(data: Mapping[str, Any]) -> tuple[Assignment, ...]:
    raw = _pick(data, "Assignments")
    if raw is None:
        single = _pick(data, "resourceNo", "ResourceNo")
        return (Assignment(str(single)),) if single else ()
    if not isinstance(raw, list):
        raise InvalidPayload("Assignments: expected a list")
    found: dict[str, Assignment] = {}
    for index, item in enumerate(raw):
        resource = item.get("Resource") if isinstance(item, Mapping) and isinstance(item.get("Resource"), Mapping) else item
        if not isinstance(resource, Mapping) or not _pick(resource, "ResourceNo"):
            raise InvalidPayload(f"Assignments[{index}].Resource.ResourceNo: required")
        number = str(_pick(resource, "ResourceNo"))
        found[number] = Assignment(number, _opt(_pick(resource, "Email")))
    return tuple(found[k] for k in sorted(found))


# -- the Exchange side --------------------------------------------------------------------------
@dataclass(frozen=True)
class CalendarEvent:
    """An Outlook calendar item (single instance, occurrence or exception), or a removal marker."""

    id: str
    removed: bool = False
    change_key: str | None = None
    ical_uid: str | None = None
    subject: str = ""
    body: str = ""
    start: datetime | None = None
    end: datetime | None = None
    all_day: bool = False
    show_as: ShowAs = ShowAs.BUSY
    sensitivity: Sensitivity = Sensitivity.NORMAL
    importance: Importance = Importance.NORMAL
    categories: tuple[str, ...] = ()
    location: str = ""
    is_cancelled: bool = False
    type: str = "singleInstance"
    series_master_id: str | None = None
    transaction_id: str | None = None

    @classmethod
    def from_graph(cls, data: Any) -> CalendarEvent:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str) or not data["id"]:
            raise InvalidPayload("event: expected an object with an id")
        if "@removed" in data:
            return cls(id=data["id"], removed=True)
        body = data.get("body") or {}
        content = _text(body.get("content")) if isinstance(body, Mapping) else ""
        if isinstance(body, Mapping) and str(body.get("contentType", "")).lower() == "html":
            content = html_to_text(content)
        location = data.get("location") or {}
        return cls(
            id=data["id"],
            change_key=_opt(data.get("changeKey")),
            ical_uid=_opt(data.get("iCalUId")),
            subject=_text(data.get("subject")),
            body=content,
            start=_graph_datetime(data.get("start"), "start"),
            end=_graph_datetime(data.get("end"), "end"),
            all_day=bool(data.get("isAllDay")),
            show_as=_enum(ShowAs, data.get("showAs"), ShowAs.UNKNOWN),
            sensitivity=_enum(Sensitivity, data.get("sensitivity"), Sensitivity.NORMAL),
            importance=_enum(Importance, data.get("importance"), Importance.NORMAL),
            categories=tuple(str(c) for c in data.get("categories") or ()),
            location=_text(location.get("displayName")) if isinstance(location, Mapping) else "",
            is_cancelled=bool(data.get("isCancelled")),
            type=_text(data.get("type") or "singleInstance"),
            series_master_id=_opt(data.get("seriesMasterId")),
            transaction_id=_opt(data.get("transactionId")),
        )


class _ReadableText(HTMLParser):
    """Collects what a person reads in an HTML body: text, with line breaks where blocks end."""

    BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "table", "ul", "ol"})
    HIDDEN = frozenset({"head", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.HIDDEN:
            self._hidden += 1
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(content: str) -> str:
    """Outlook bodies are HTML unless asked otherwise: keep the words and line breaks only.

    Tags are dropped; <br>, <p>, <div>, list items and rows end lines; entities are decoded;
    what <head>, <style> and <script> hold is dropped; blank lines and runs of spaces collapse."""
    parser = _ReadableText()
    parser.feed(content)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).splitlines()]
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True)
class BoardImport:
    """One Outlook item to mirror on the board (`mboc_upsertExchangeAppointment`); `item` is `board_item()`."""

    appointment_guid: str
    exchange_id: str
    resource_email: str
    item: Mapping[str, Any]
    # Take the board item away first, in the same `/import` (`UpsertOnBoard.replace`): a field to clear
    # cannot be cleared by a blank where Dime.Scheduler takes a blank as "not given".
    replace: bool = False
