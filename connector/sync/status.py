"""The per-pair sync status both directions share: what the connector wrote or mirrored, and how
changes are recognised.

- `OutlookCopy`: one (appointment, resource) pair, the event the planning → Outlook direction wrote,
  with a hash per field of what it wrote.
- `BoardCopy`: one (Outlook item, resource) pair, the board item the Outlook → planning direction
  mirrored, with a hash of what it imported.
- Hashes compare what a person would see (`hashes_of`, `content_hash`): equal hashes mean no write.
- The tag and transactionId prefix that mark the connector's own events (echo suppression).

Pure data and hashing: no I/O, no SDK.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

# The single-value extended property that tags the connector's events with the appointment GUID.
# (A fixed property-set GUID of this connector; the Name part is case-sensitive in Graph.)
TAG_PROPERTY_ID = "String {5b2c8a2e-6f0a-4b8e-9b7e-3c1d2e4f5a60} Name DimeSchedulerAppointmentGuid"
TRANSACTION_PREFIX = "dsx-"
EVENT_FIELDS: tuple[str, ...] = ("subject", "body", "start", "end", "isAllDay", "showAs", "importance", "categories")
# A second property, written with every create and PATCH: the hash of each field as the connector wrote it.
# It lands in the same request as the fields, so it tells the connector's own write from a person's edit even
# when the write's answer was lost (a 503 after it took effect): the copy row then still holds the version
# before it, and only the event itself knows which version it holds.
STAMP_PROPERTY_ID = "String {5b2c8a2e-6f0a-4b8e-9b7e-3c1d2e4f5a60} Name DimeSchedulerWrittenFields"
_STAMP_VERSION = "v1:"


@dataclass(frozen=True)
class TrackedResource:
    """A resource the connector syncs: Dime.Scheduler number, mailbox, Graph user id, and the mailbox's
    time zone (`mailboxSettings.timeZone`, a Windows name: all-day items are read and written in it)."""

    resource_no: str
    email: str
    user_id: str
    time_zone: str = "UTC"


@dataclass(frozen=True)
class OutlookCopy:
    """What the connector wrote to one resource's calendar for one appointment."""

    appointment_guid: str
    resource_no: str
    user_id: str
    transaction_id: str
    event_id: str | None = None  # None while the create has not been confirmed
    field_hashes: Mapping[str, str] = field(default_factory=dict)
    change_key: str | None = None
    # When the written event starts and ends (`event_span`): a full round of the mailbox knows which of
    # the connector's events its window must show, so one deleted unseen is found (and restored).
    starts_at: str = ""
    ends_at: str = ""


def event_span(body: Mapping[str, Any]) -> tuple[str, str]:
    """Start and end of an event body as written (`desired_event` / `outlook_fields` shape): the wall
    time, UTC for timed events, the mailbox's midnight for all-day ones (so right within a day)."""
    def wall(value: Any) -> str:
        return str(value.get("dateTime") or "")[:19] if isinstance(value, Mapping) else ""
    return wall(body.get("start")), wall(body.get("end"))


def field_hash(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:20]


def _comparable(name: str, value: Any) -> Any:
    """Exchange may re-wrap text (CRLF, trailing blanks): compare what a person would see."""
    if name == "body" and isinstance(value, Mapping):
        return " ".join(str(value.get("content", "")).split())
    if name == "subject" and isinstance(value, str):
        return value.strip()
    return value


def hashes_of(payload: Mapping[str, Any]) -> dict[str, str]:
    """A hash per event field of what was (or would be) written; equal hashes mean no write."""
    return {name: field_hash(_comparable(name, payload[name])) for name in EVENT_FIELDS}


def stamp_property(hashes: Mapping[str, str]) -> dict[str, str]:
    """The extended property recording which field hashes a write puts in the event."""
    return {"id": STAMP_PROPERTY_ID, "value": _STAMP_VERSION + ",".join(hashes.get(n, "") for n in EVENT_FIELDS)}


def written_stamp(event: Mapping[str, Any]) -> dict[str, str] | None:
    """The field hashes of the connector's last write into this event, when the event was read with its stamp."""
    for prop in event.get("singleValueExtendedProperties") or ():
        if isinstance(prop, Mapping) and str(prop.get("id", "")).lower() == STAMP_PROPERTY_ID.lower():
            value = str(prop.get("value") or "")
            parts = value[len(_STAMP_VERSION):].split(",") if value.startswith(_STAMP_VERSION) else []
            return dict(zip(EVENT_FIELDS, parts, strict=True)) if len(parts) == len(EVENT_FIELDS) else None
    return None


@dataclass(frozen=True)
class BoardCopy:
    """An Outlook item the connector mirrored on the board (an occurrence knows its series master)."""

    user_id: str
    event_id: str
    appointment_guid: str
    content_hash: str
    change_key: str | None = None
    series_master_id: str | None = None
    # The fields of `CLEARABLE` the board item may hold a value in (what the imports sent, and while an
    # import is in flight what it sends too); None: not recorded (a copy saved before this was kept), any may.
    filled: frozenset[str] | None = None


# The board fields an Outlook item may lose (a person clears them, or the item turns private and masked).
# An empty value goes as a blank, and whether Dime.Scheduler's upsert takes a blank as "empty" or as "not
# given" (keep what the item had) is not documented: `connector.sync.to_planning.plan_item` decides.
CLEARABLE: tuple[str, ...] = ("Subject", "Body", "Categories")


def filled_fields(item: Mapping[str, Any]) -> frozenset[str]:
    """The fields of `CLEARABLE` that hold a value in a board item (`board_item` shape)."""
    def blank(value: Any) -> bool:
        if isinstance(value, str):
            return not value.strip()
        return not any(str(v).strip() for v in value or ())
    return frozenset(name for name in CLEARABLE if not blank(item.get(name)))


def content_hash(item: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(item, sort_keys=True, default=str).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class KnownSpan:
    """Where an appointment's events were last written: the resources and the time they cover, a
    day's slack either side (all-day events sit at the mailbox's midnight). A window read over it
    shows the appointment unless it is gone (or was moved away from these events meanwhile)."""

    start: datetime
    end: datetime
    resource_nos: tuple[str, ...]


def known_span(copies: Iterable[OutlookCopy]) -> KnownSpan | None:
    """The span of the copies whose events have one (None when none has: pending or older copies)."""
    spans = [(c.starts_at, c.ends_at, c.resource_no) for c in copies if c.starts_at and c.ends_at]
    try:
        starts = [datetime.fromisoformat(s[:19]).replace(tzinfo=UTC) for s, _, _ in spans]
        ends = [datetime.fromisoformat(e[:19]).replace(tzinfo=UTC) for _, e, _ in spans]
    except ValueError:
        return None
    if not spans:
        return None
    slack = timedelta(days=1)
    return KnownSpan(min(starts) - slack, max(ends) + slack, tuple(sorted({r for _, _, r in spans})))
