"""Parsing of import parameter values (always strings on the wire) and UTC date formatting.

The SDKs send every ``ParameterValues`` entry as a string: booleans ``True``/``False`` (.NET),
``true``/``false`` (JS) or ``1``/``0`` (``ToBit()``), dates ISO 8601 in UTC (``yyyy-MM-dd HH:mm:ssZ``
from .NET, ``toISOString()`` from JS), lists joined with ``;``, enums as integers, decimals with ``.``.
Each parser raises :class:`ValueProblem` with a message that says what was expected.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta, timezone


class ValueProblem(ValueError):
    """A value that cannot be read; the message says what was expected."""


_DATE_RE = re.compile(
    r"^(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[Tt ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}:?\d{2})?$"
)
_INT_RE = re.compile(r"^[+-]?\d+$")
_DECIMAL_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_COLOR_RE = re.compile(r"^#[0-9A-Fa-f]{6}$")
_TRUE = {"true", "1"}
_FALSE = {"false", "0"}


def parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueProblem(f"{text!r} is not a boolean (expected True/False, true/false or 1/0)")


def parse_int(text: str, low: int | None = None, high: int | None = None) -> int:
    if not _INT_RE.match(text.strip()):
        raise ValueProblem(f"{text!r} is not an integer")
    value = int(text.strip())
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueProblem(f"{text!r} is out of range {low}..{high}")
    return value


def parse_decimal(text: str) -> float:
    if not _DECIMAL_RE.match(text.strip()):
        raise ValueProblem(f"{text!r} is not a decimal number (use '.' as the decimal separator)")
    return float(text.strip())


def parse_list(text: str) -> list[str]:
    """A ``;``-joined list; blanks around items and empty items are dropped."""
    return [item.strip() for item in text.split(";") if item.strip()]


def parse_color(text: str) -> str:
    if not _COLOR_RE.match(text.strip()):
        raise ValueProblem(f"{text!r} is not a hex colour '#RRGGBB'")
    return text.strip()


def parse_guid(text: str) -> str:
    """A GUID in any of .NET's textual forms, normalised to lower-case with hyphens."""
    try:
        return str(uuid.UUID(text.strip()))
    except ValueError:
        raise ValueProblem(f"{text!r} is not a GUID") from None


def parse_datetime(text: str, accept_naive: bool = False) -> datetime:
    """An ISO 8601 date-time, returned as an aware UTC ``datetime`` truncated to milliseconds.

    Accepts ``2026-01-05 09:00:00Z``, ``2026-01-05T09:00:00.000Z``, ``2026-01-05T09:00:00+00:00``,
    other offsets (converted to UTC) and a bare date (midnight UTC). A time without ``Z`` or an
    offset is ambiguous and rejected unless ``accept_naive`` (then read as UTC).
    """
    raw = text.strip()
    match = _DATE_RE.match(raw)
    if not match:
        raise ValueProblem(f"{text!r} is not an ISO 8601 date-time (e.g. 2026-01-05T09:00:00Z)")
    g = match.groupdict()
    fraction = (g["f"] or "0").ljust(6, "0")[:6]
    tz = g["tz"]
    if g["h"] is not None and tz is None and not accept_naive:
        raise ValueProblem(f"{text!r} has no time zone: send UTC with a 'Z' suffix (or an offset)")
    try:
        value = datetime(
            int(g["y"]), int(g["mo"]), int(g["d"]),
            int(g["h"] or 0), int(g["mi"] or 0), int(g["s"] or 0), int(fraction),
            tzinfo=_zone(tz),
        )
    except ValueError as exc:
        raise ValueProblem(f"{text!r} is not a valid date-time: {exc}") from None
    value = value.astimezone(UTC)
    return value.replace(microsecond=(value.microsecond // 1000) * 1000)


def _zone(tz: str | None) -> timezone:
    if tz is None or tz in ("Z", "z"):
        return UTC
    sign = -1 if tz[0] == "-" else 1
    digits = tz[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:])
    if hours > 23 or minutes > 59:
        raise ValueProblem(f"{tz!r} is not a valid UTC offset")
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def iso_z(value: datetime | None) -> str | None:
    """UTC ISO 8601 with ``Z``; milliseconds only when the value has them."""
    if value is None:
        return None
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
