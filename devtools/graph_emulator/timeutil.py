"""Time zones and Graph's date/time formats.

Everything is stored as aware UTC ``datetime``. Inputs may name UTC, an IANA zone or one of the
common Windows zone names Outlook uses; outputs use Graph's 7-digit fraction format.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import GraphError, bad_request

WINDOWS_ZONES: dict[str, str] = {
    "w. europe standard time": "Europe/Berlin",
    "romance standard time": "Europe/Paris",
    "gmt standard time": "Europe/London",
    "greenwich standard time": "Atlantic/Reykjavik",
    "central european standard time": "Europe/Warsaw",
    "central europe standard time": "Europe/Budapest",
    "e. europe standard time": "Europe/Chisinau",
    "fle standard time": "Europe/Kiev",
    "pacific standard time": "America/Los_Angeles",
    "mountain standard time": "America/Denver",
    "central standard time": "America/Chicago",
    "eastern standard time": "America/New_York",
    "tokyo standard time": "Asia/Tokyo",
    "india standard time": "Asia/Calcutta",
    "aus eastern standard time": "Australia/Sydney",
}
UTC_NAMES = {"utc", "etc/utc", "coordinated universal time", "z", "gmt", "etc/gmt", "tzone://microsoft/utc"}

MIN_YEAR, MAX_YEAR = 1601, 9000
_DATETIME_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def resolve_zone(name: str) -> tzinfo | None:
    """The zone for a Graph ``timeZone`` value, or None when it is not supported."""
    key = name.strip().lower()
    if key in UTC_NAMES:
        return UTC
    if key in WINDOWS_ZONES:
        return ZoneInfo(WINDOWS_ZONES[key])
    if not key:
        return None
    try:
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError):
        return None


def require_zone(name: str) -> tzinfo:
    zone = resolve_zone(name)
    if zone is None:
        raise GraphError(
            400,
            "TimeZoneNotSupportedException",
            f"A valid TimeZone value must be specified. The following TimeZone value is not supported: '{name}'.",
        )
    return zone


def parse_datetime(text: str, zone: tzinfo = UTC) -> datetime:
    """Parse an ISO 8601 date-time (up to 7 fraction digits); naive values are in ``zone``."""
    match = _DATETIME_RE.match(text.strip().replace(" ", "+") if "T" in text else text.strip())
    if not match:
        raise bad_request(f"The value '{text}' is not a valid DateTime.", "ErrorInvalidRequest")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    try:
        micro = int((fraction or "0").ljust(7, "0")[:6])
        value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0), micro)
    except ValueError:
        raise bad_request(f"The value '{text}' is not a valid DateTime.") from None
    if not MIN_YEAR <= value.year <= MAX_YEAR:  # keeps zone conversions far from datetime's limits
        raise bad_request(f"The value '{text}' is out of the supported range.")
    if offset:
        if offset == "Z":
            return value.replace(tzinfo=UTC)
        sign = 1 if offset[0] == "+" else -1
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        return (value - sign * delta).replace(tzinfo=UTC)
    return value.replace(tzinfo=zone).astimezone(UTC)


def parse_query_datetime(text: str | None, name: str) -> datetime:
    if not text:
        raise GraphError(
            400,
            "ErrorInvalidParameter",
            f"This request requires a time window specified by the query string parameters "
            f"StartDateTime and EndDateTime. Missing: {name}.",
        )
    return parse_datetime(text)


def format_local(value: datetime, zone: tzinfo) -> str:
    """Graph's DateTimeTimeZone.dateTime: local wall time, 7 fraction digits, no offset."""
    local = value.astimezone(zone)
    return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond:06d}0"


def format_utc(value: datetime) -> str:
    """Graph's DateTimeOffset style: ``2026-01-05T09:00:00.1234567Z``."""
    return format_local(value, UTC) + "Z"


def to_date(value: str) -> date:
    try:
        result = date.fromisoformat(value)
    except (ValueError, TypeError):
        raise bad_request(f"The value '{value}' is not a valid Date.") from None
    if not MIN_YEAR <= result.year <= MAX_YEAR:
        raise bad_request(f"The value '{value}' is out of the supported range.")
    return result
