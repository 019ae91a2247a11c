"""Mailbox time zones: Windows zone names (what Graph's `mailboxSettings.timeZone` holds) → IANA zones.

An all-day Outlook item is stored at local midnight of the zone it was written in and read back as
midnight-to-midnight dates whatever `outlook.timezone` asks (docs #1802, msgraph-sdk-javascript
#1158), so both directions interpret all-day items in the mailbox's own zone. Every Windows zone
of CLDR's windowsZones table resolves (`windows_zones.py`); an IANA name is accepted as is, and
anything unknown falls back to UTC (the caller records that once).
Pure: stdlib zoneinfo only (tzdata is pinned in requirements.txt for hosts without zone data).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connector.sync.windows_zones import WINDOWS_ZONES

# Every Windows zone of CLDR (keys lowercased: names are matched case-insensitively), and UTC's aliases.
WINDOWS_TO_IANA: dict[str, str] = {**{name.lower(): iana for name, iana in WINDOWS_ZONES.items()},
                                   "utc": "UTC", "coordinated universal time": "UTC"}
MIDNIGHT = time()


def zone_of(name: str | None) -> tzinfo | None:
    """The zone a mailbox's `timeZone` names (Windows or IANA), or None when it is unknown."""
    key = (name or "").strip()
    if not key:
        return None
    iana = WINDOWS_TO_IANA.get(key.lower(), key)
    if iana.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(iana)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def mailbox_zone(name: str | None) -> tzinfo:
    """The zone to read and write all-day items in; UTC when the mailbox's zone is unknown."""
    return zone_of(name) or UTC


def local_midnight(day: date, zone: tzinfo) -> datetime:
    """The UTC instant at which `day` starts in `zone`."""
    return datetime.combine(day, MIDNIGHT, zone).astimezone(UTC)


def all_day_time(day: date, time_zone: str) -> dict[str, str]:
    """A Graph dateTimeTimeZone at midnight of `day` in the mailbox's zone: how an all-day item is
    written (and compared) so that Outlook shows it on that date for the resource."""
    return {"dateTime": day.strftime("%Y-%m-%dT00:00:00.0000000"), "timeZone": time_zone}
