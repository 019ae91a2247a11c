"""Recurrence patterns: validation and expansion into occurrence dates.

Supported: daily, weekly, absoluteMonthly, relativeMonthly (e.g. the second Tuesday), absoluteYearly
and relativeYearly (e.g. the last Friday of March) patterns with endDate, numbered and noEnd ranges.
Occurrences keep the master's wall-clock time in its time zone (so they follow DST). A relative
pattern's ``index`` picks among the days of the month that fall on one of ``daysOfWeek`` (so
"first" of Monday..Friday is the first weekday of the month), as Outlook does.
"""

from __future__ import annotations

import calendar
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Any

from .errors import bad_request, body_read_error
from .timeutil import to_date

DAYS = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"]
INDEXES = ["first", "second", "third", "fourth", "last"]
PATTERN_TYPES = {"daily", "weekly", "absoluteMonthly", "relativeMonthly", "absoluteYearly", "relativeYearly"}
RANGE_TYPES = {"endDate", "noEnd", "numbered"}
_PATTERN_KEYS = {"type", "interval", "month", "dayOfMonth", "daysOfWeek", "firstDayOfWeek", "index", "@odata.type"}
_RANGE_KEYS = {"type", "startDate", "endDate", "recurrenceTimeZone", "numberOfOccurrences", "@odata.type"}


def _int(obj: dict[str, Any], name: str, default: int) -> int:
    value = obj.get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise body_read_error(f"Cannot convert the value of property '{name}' to Edm.Int32.")
    return value


def _enum(value: Any, allowed: list[str] | set[str], name: str) -> str:
    if isinstance(value, str):
        for candidate in allowed:
            if candidate.lower() == value.lower():
                return candidate
    raise body_read_error(f"Cannot convert the literal '{value}' to the expected type for '{name}'.")


def normalize_recurrence(value: Any) -> dict[str, Any] | None:
    """Validate a ``patternedRecurrence`` and return it in Graph's full output shape."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("pattern"), dict) or not isinstance(
        value.get("range"), dict
    ):
        raise bad_request("A recurrence needs a 'pattern' object and a 'range' object.")
    pattern, rng = value["pattern"], value["range"]
    for key in set(value) - {"pattern", "range", "@odata.type"}:
        raise body_read_error(f"The property '{key}' does not exist on type 'microsoft.graph.patternedRecurrence'.")
    for key in set(pattern) - _PATTERN_KEYS:
        raise body_read_error(f"The property '{key}' does not exist on type 'microsoft.graph.recurrencePattern'.")
    for key in set(rng) - _RANGE_KEYS:
        raise body_read_error(f"The property '{key}' does not exist on type 'microsoft.graph.recurrenceRange'.")

    kind = _enum(pattern.get("type"), PATTERN_TYPES, "pattern.type")
    interval = _int(pattern, "interval", 0)
    if interval < 1:
        raise bad_request("The recurrence pattern interval must be at least 1.", "ErrorInvalidRecurrencePattern")
    days_raw = pattern.get("daysOfWeek") or []
    if not isinstance(days_raw, list):
        raise body_read_error("daysOfWeek must be an array.")
    days = sorted({_enum(d, DAYS, "daysOfWeek") for d in days_raw}, key=DAYS.index)
    if kind in ("weekly", "relativeMonthly", "relativeYearly") and not days:
        raise bad_request(f"A {kind} recurrence pattern needs daysOfWeek.", "ErrorInvalidRecurrencePattern")
    first_day = _enum(pattern.get("firstDayOfWeek") or "sunday", DAYS, "firstDayOfWeek")
    day_of_month = _int(pattern, "dayOfMonth", 0)
    month = _int(pattern, "month", 0)
    if kind in ("absoluteMonthly", "absoluteYearly") and not 1 <= day_of_month <= 31:
        raise bad_request("The recurrence pattern needs dayOfMonth between 1 and 31.", "ErrorInvalidRecurrencePattern")
    if kind in ("absoluteYearly", "relativeYearly") and not 1 <= month <= 12:
        raise bad_request("The recurrence pattern needs month between 1 and 12.", "ErrorInvalidRecurrencePattern")

    range_type = _enum(rng.get("type"), RANGE_TYPES, "range.type")
    start = to_date(rng.get("startDate"))
    end_text = "0001-01-01"
    count = 0
    if range_type == "endDate":
        end = to_date(rng.get("endDate"))
        if end < start:
            raise bad_request("The recurrence range endDate is before its startDate.", "ErrorInvalidRecurrenceRange")
        end_text = end.isoformat()
    elif range_type == "numbered":
        count = _int(rng, "numberOfOccurrences", 0)
        if count < 1:
            raise bad_request("numberOfOccurrences must be at least 1.", "ErrorInvalidRecurrenceRange")
    zone_name = rng.get("recurrenceTimeZone")
    if zone_name is not None and not isinstance(zone_name, str):
        raise body_read_error("recurrenceTimeZone must be a string.")
    return {
        "pattern": {
            "type": kind,
            "interval": interval,
            "month": month,
            "dayOfMonth": day_of_month,
            "daysOfWeek": days,
            "firstDayOfWeek": first_day,
            "index": _enum(pattern.get("index") or "first", INDEXES, "index"),
        },
        "range": {
            "type": range_type,
            "startDate": start.isoformat(),
            "endDate": end_text,
            "recurrenceTimeZone": zone_name,
            "numberOfOccurrences": count,
        },
    }


def _candidates(pattern: dict[str, Any], start: date) -> Iterator[date]:
    """Dates matching the pattern, in order, from ``start`` on (unbounded)."""
    kind, interval = pattern["type"], pattern["interval"]
    if kind == "daily":
        current = start
        while True:
            yield current
            current += timedelta(days=interval)
    elif kind == "weekly":
        first = DAYS.index(pattern["firstDayOfWeek"])
        offsets = sorted((DAYS.index(d) - first) % 7 for d in pattern["daysOfWeek"])
        week_start = start - timedelta(days=((start.weekday() + 1) % 7 - first) % 7)
        while True:
            for offset in offsets:
                day = week_start + timedelta(days=offset)
                if day >= start:
                    yield day
            week_start += timedelta(weeks=interval)
    elif kind == "absoluteMonthly":
        year, month = start.year, start.month
        while True:
            day = date(year, month, min(pattern["dayOfMonth"], calendar.monthrange(year, month)[1]))
            if day >= start:
                yield day
            month += interval
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    elif kind == "relativeMonthly":
        year, month = start.year, start.month
        while True:
            day = _relative_day(year, month, pattern)
            if day >= start:
                yield day
            month += interval
            year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    else:  # absoluteYearly, relativeYearly
        year = start.year
        while True:
            month = pattern["month"]
            if kind == "relativeYearly":
                day = _relative_day(year, month, pattern)
            else:
                day = date(year, month, min(pattern["dayOfMonth"], calendar.monthrange(year, month)[1]))
            if day >= start:
                yield day
            year += interval


def _relative_day(year: int, month: int, pattern: dict[str, Any]) -> date:
    """The ``index``-th (first..fourth, or last) day of the month that is one of ``daysOfWeek``."""
    wanted = {DAYS.index(d) for d in pattern["daysOfWeek"]}
    days = [date(year, month, n) for n in range(1, calendar.monthrange(year, month)[1] + 1)
            if (date(year, month, n).weekday() + 1) % 7 in wanted]
    index = INDEXES.index(pattern["index"])
    return days[-1] if pattern["index"] == "last" else days[index]


def occurrence_starts(
    recurrence: dict[str, Any], local_time: time, zone: tzinfo, limit: int
) -> Iterator[datetime]:
    """Original UTC start of every occurrence of the series, in order (at most ``limit``)."""
    rng = recurrence["range"]
    end = date.fromisoformat(rng["endDate"]) if rng["type"] == "endDate" else None
    count = rng["numberOfOccurrences"] if rng["type"] == "numbered" else limit
    candidates = _candidates(recurrence["pattern"], date.fromisoformat(rng["startDate"]))
    for _ in range(min(count, limit)):
        try:
            day = next(candidates)
            start = datetime.combine(day, local_time, tzinfo=zone).astimezone(UTC)
        except (OverflowError, ValueError):  # ran past year 9999
            return
        if end is not None and day > end:
            return
        yield start
