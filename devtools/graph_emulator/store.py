"""In-memory state of the emulated tenant: users, events (singles, series masters, exceptions).

Occurrences of a series are not stored: :func:`EventStore.series_views` generates them from the
master on the fly, applying stored exceptions and cancellations. An :class:`EventView` is what the
API shows for any kind of item.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from . import ids
from .recurrence import occurrence_starts
from .timeutil import resolve_zone

# (type, guid, "name"|"id", name) with type/guid lower-cased and the name kept as given.
ExtKey = tuple[str, str, str, str]


@dataclass
class User:
    id: str
    display_name: str
    user_principal_name: str
    mail: str | None
    extra: dict[str, Any] = field(default_factory=dict)
    time_zone: str = "UTC"  # mailboxSettings.timeZone, as set (a Windows zone name, usually)


@dataclass
class ExtProp:
    id: str  # normalised display form, e.g. "String {6f1b...} Name AppointmentId"
    value: str


@dataclass
class ExceptionRecord:
    """A modified occurrence: only the overridden properties are kept."""

    original_start: datetime
    props: dict[str, Any]
    start: datetime
    end: datetime
    start_tz: str
    end_tz: str
    ext: dict[ExtKey, ExtProp]
    change_key: str
    created: datetime
    modified: datetime


@dataclass
class EventRecord:
    immutable_id: str
    regular_id: str
    mailbox: str  # user id
    props: dict[str, Any]  # writable properties except start/end/isAllDay/recurrence
    start: datetime
    end: datetime
    is_all_day: bool
    start_tz: str
    end_tz: str
    recurrence: dict[str, Any] | None
    change_key: str
    created: datetime
    modified: datetime
    ical_uid: str
    transaction_id: str | None = None
    ext: dict[ExtKey, ExtProp] = field(default_factory=dict)
    exceptions: dict[datetime, ExceptionRecord] = field(default_factory=dict)
    cancelled: set[datetime] = field(default_factory=set)

    @property
    def is_series(self) -> bool:
        return self.recurrence is not None


@dataclass
class EventView:
    """A single instance, series master, occurrence or exception as the API shows it."""

    type: str  # singleInstance | seriesMaster | occurrence | exception
    record: EventRecord  # the item itself, or the master of an occurrence/exception
    original_start: datetime | None = None
    exception: ExceptionRecord | None = None

    def id(self, immutable: bool) -> str:
        own = self.record.immutable_id if immutable else self.record.regular_id
        if self.original_start is None:
            return own
        return ids.occurrence_id(own, self.original_start)

    @property
    def key(self) -> str:
        """Stable internal identity (the immutable form of the id)."""
        return self.id(True)

    def series_master_id(self, immutable: bool) -> str | None:
        if self.original_start is None:
            return None
        return self.record.immutable_id if immutable else self.record.regular_id

    @property
    def start(self) -> datetime:
        if self.exception:
            return self.exception.start
        if self.original_start is not None:
            return self.original_start
        return self.record.start

    @property
    def end(self) -> datetime:
        if self.exception:
            return self.exception.end
        if self.original_start is not None:
            return self.original_start + (self.record.end - self.record.start)
        return self.record.end

    @property
    def start_tz(self) -> str:
        return self.exception.start_tz if self.exception else self.record.start_tz

    @property
    def end_tz(self) -> str:
        return self.exception.end_tz if self.exception else self.record.end_tz

    @property
    def props(self) -> dict[str, Any]:
        if self.exception:
            return {**self.record.props, **self.exception.props}
        return self.record.props

    @property
    def ext(self) -> dict[ExtKey, ExtProp]:
        if self.exception:
            return {**self.record.ext, **self.exception.ext}
        return self.record.ext

    @property
    def change_key(self) -> str:
        return self.exception.change_key if self.exception else self.record.change_key

    @property
    def created(self) -> datetime:
        return self.exception.created if self.exception else self.record.created

    @property
    def modified(self) -> datetime:
        return self.exception.modified if self.exception else self.record.modified

    @property
    def ical_uid(self) -> str:
        if self.original_start is None:
            return self.record.ical_uid
        stamp = self.original_start.strftime("%Y%m%dT%H%M%S")
        return hashlib.sha256(f"{self.record.ical_uid}/{stamp}".encode()).hexdigest()[:64].upper()

    def overlaps(self, start: datetime, end: datetime) -> bool:
        if self.start == self.end:
            return start <= self.start < end
        return self.start < end and self.end > start


class EventStore:
    """Users and events of the tenant, with the indexes the API needs."""

    def __init__(self, max_occurrences: int) -> None:
        self.max_occurrences = max_occurrences
        self.users: dict[str, User] = {}
        self._upn: dict[str, str] = {}
        self.events: dict[str, EventRecord] = {}  # by immutable id
        self._regular: dict[str, str] = {}  # regular id → immutable id
        self._transactions: dict[tuple[str, str], str] = {}

    # Users -------------------------------------------------------------------------------
    def add_user(self, user: User) -> None:
        self.users[user.id.lower()] = user
        self._upn[user.user_principal_name.lower()] = user.id.lower()

    def find_user(self, ref: str) -> User | None:
        """By id (GUIDs compare case-insensitively) or userPrincipalName (case-insensitive)."""
        key = ref.lower()
        return self.users.get(key) or self.users.get(self._upn.get(key, ""))

    # Events ------------------------------------------------------------------------------
    def add_event(self, record: EventRecord) -> None:
        self.events[record.immutable_id] = record
        self._regular[record.regular_id] = record.immutable_id
        if record.transaction_id is not None:
            self._transactions[(record.mailbox, record.transaction_id)] = record.immutable_id

    def remove_event(self, record: EventRecord) -> None:
        """The event goes; its transactionId stays known as taken (`transaction_taken`)."""
        self.events.pop(record.immutable_id, None)
        self._regular.pop(record.regular_id, None)

    def transaction_taken(self, mailbox: str, transaction_id: str) -> bool:
        """Whether a create used this transactionId in this mailbox, its event deleted since or not."""
        return (mailbox, transaction_id) in self._transactions

    def move_event(self, record: EventRecord) -> None:
        """Simulate a folder move: a new regular id, the same immutable id."""
        self._regular.pop(record.regular_id, None)
        record.regular_id = ids.new_regular_id()
        self._regular[record.regular_id] = record.immutable_id

    def by_transaction(self, mailbox: str, transaction_id: str) -> EventRecord | None:
        key = self._transactions.get((mailbox, transaction_id))
        return self.events.get(key) if key else None

    def _record(self, ref: str) -> EventRecord | None:
        return self.events.get(ref) or self.events.get(self._regular.get(ref, ""))

    def resolve(self, mailbox: str, ref: str) -> EventView | None:
        """Any id form (regular, immutable, occurrence of either) within one mailbox."""
        record = self._record(ref)
        if record is not None:
            if record.mailbox != mailbox:
                return None
            return EventView("seriesMaster" if record.is_series else "singleInstance", record)
        parsed = ids.parse_occurrence_id(ref)
        if parsed is None:
            return None
        master = self._record(parsed[0])
        if master is None or master.mailbox != mailbox or not master.is_series:
            return None
        original = parsed[1]
        if original in master.cancelled:
            return None
        if original in master.exceptions:
            return EventView("exception", master, original, master.exceptions[original])
        if original not in set(self._starts(master, until=original + timedelta(seconds=1))):
            return None
        return EventView("occurrence", master, original)

    def mailbox_records(self, mailbox: str) -> list[EventRecord]:
        return [r for r in self.events.values() if r.mailbox == mailbox]

    def _starts(self, master: EventRecord, until: datetime) -> list[datetime]:
        assert master.recurrence is not None
        zone = resolve_zone(master.start_tz) or UTC  # all-day series too: local midnights of their zone
        local_time = master.start.astimezone(zone).time()
        starts: list[datetime] = []
        for start in occurrence_starts(master.recurrence, local_time, zone, self.max_occurrences):
            if start >= until:
                break
            starts.append(start)
        return starts

    def series_views(self, master: EventRecord, start: datetime, end: datetime) -> list[EventView]:
        """Occurrences and exceptions of a series overlapping [start, end)."""
        duration = master.end - master.start
        views: list[EventView] = []
        for original in self._starts(master, until=end):
            if original in master.cancelled or original in master.exceptions:
                continue
            if original + duration > start or (duration == timedelta(0) and original >= start):
                views.append(EventView("occurrence", master, original))
        for original, exception in master.exceptions.items():
            view = EventView("exception", master, original, exception)
            if view.overlaps(start, end):
                views.append(view)
        return views

    def window_views(self, mailbox: str, start: datetime, end: datetime) -> list[EventView]:
        """calendarView: singles, occurrences and exceptions overlapping the window, by start."""
        views: list[EventView] = []
        for record in self.mailbox_records(mailbox):
            if record.is_series:
                views.extend(self.series_views(record, start, end))
            else:
                view = EventView("singleInstance", record)
                if view.overlaps(start, end):
                    views.append(view)
        views.sort(key=lambda v: (v.start, v.key))
        return views

    def top_level_views(self, mailbox: str) -> list[EventView]:
        """/events: singles and series masters, never occurrences."""
        return [
            EventView("seriesMaster" if r.is_series else "singleInstance", r) for r in self.mailbox_records(mailbox)
        ]
