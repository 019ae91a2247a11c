"""In-memory state of the emulated Dime.Scheduler tenant, with the look-ups its callers need.

Keys follow SQL Server's default case-insensitive collation: resource numbers, e-mails, category
and time-marker names, job and task numbers match regardless of case; the stored casing is the one
first written. A batch (``POST /import``, a planner action, a seed) runs inside
:meth:`Store.transaction`: each write first journals the previous state of the one record it touches,
and a failing batch is undone from that journal, which is what makes ``POST /import`` atomic. A write
therefore costs the same at 50 or 50,000 appointments (no copy of the whole store).
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from .model import (
    RESOURCE_BOOLEANS,
    RESOURCE_FIELDS,
    Appointment,
    Category,
    Job,
    Resource,
    Task,
    TaskKey,
    TimeMarker,
    same_content,
)

FIRST_APPOINTMENT_ID = 1000  # distinct from resource ids, so a mix-up of the two fails loudly


_ABSENT: Any = object()  # journal marker: the key did not exist before the batch


class LookupProblem(LookupError):
    """A referenced record does not exist (answered 400 by imports and the planner)."""


def _fold(*parts: str) -> tuple[str, ...]:
    return tuple(p.casefold() for p in parts)


def utc_now() -> datetime:
    return datetime.now(UTC)


class Store:
    """Resources, categories, time markers, jobs, tasks and appointments of one tenant."""

    def __init__(self, now: Callable[[], datetime] = utc_now) -> None:
        self._now = now
        self.resources: dict[str, Resource] = {}
        self.categories: dict[str, Category] = {}
        self.time_markers: dict[str, TimeMarker] = {}
        self.jobs: dict[tuple[str, ...], Job] = {}
        self.tasks: dict[tuple[str, ...], Task] = {}
        self.appointments: dict[str, Appointment] = {}
        self._guid_by_id: dict[int, str] = {}  # numeric id -> GUID: look-ups by id stay O(1)
        self._next_ids = {"resource": 1, "category": 1, "timeMarker": 1, "appointment": FIRST_APPOINTMENT_ID}
        self._last_stamp: datetime | None = None
        # The open batch's undo journal: (table, key, previous record or _ABSENT), oldest first.
        self._journal: list[tuple[dict[Any, Any], Any, Any]] | None = None
        self._ids_before: dict[str, int] = {}
        self._appointments_before: dict[str, Appointment | None] = {}

    # --- batches ----------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run a batch: if the block raises, every write it made is undone (ids included)."""
        if self._journal is not None:
            raise RuntimeError("a batch is already open on this store")
        self._journal, self._ids_before, self._appointments_before = [], dict(self._next_ids), {}
        try:
            yield self
        except BaseException:
            for table, key, previous in reversed(self._journal):
                if previous is _ABSENT:
                    table.pop(key, None)
                else:
                    table[key] = previous
            self._next_ids = self._ids_before
            raise
        finally:
            self._journal = None

    def appointment_before_batch(self, guid: str) -> Appointment | None:
        """An appointment as it was when the open batch began (None: it did not exist)."""
        if guid in self._appointments_before:
            return self._appointments_before[guid]
        return self.appointments.get(guid)

    def _remember(self, table: dict[Any, Any], key: Any) -> None:
        """Journal the record at ``table[key]`` before a write changes or replaces it (one record:
        the cost of a write does not grow with the store)."""
        if self._journal is None:
            return
        previous = table.get(key, _ABSENT)
        self._journal.append((table, key, previous if previous is _ABSENT else copy.deepcopy(previous)))
        if table is self.appointments and key not in self._appointments_before:
            self._appointments_before[key] = None if previous is _ABSENT else copy.deepcopy(previous)

    def next_id(self, kind: str) -> int:
        value = self._next_ids[kind]
        self._next_ids[kind] = value + 1
        return value

    def stamp(self) -> datetime:
        """Now (UTC, milliseconds), strictly later than any stamp before: two changes never share
        a LastModifiedDate, so comparing it is a sound change test."""
        now = self._now().astimezone(UTC)
        now = now.replace(microsecond=(now.microsecond // 1000) * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return now

    # --- resources --------------------------------------------------------------------------------
    def resource(self, resource_no: str) -> Resource | None:
        return self.resources.get(resource_no.casefold())

    def require_resource(self, resource_no: str) -> Resource:
        found = self.resource(resource_no)
        if found is None:
            raise LookupProblem(f"unknown resource number {resource_no!r}")
        return found

    def resource_by_email(self, email: str) -> Resource | None:
        wanted = email.strip().casefold()
        for resource in self.resources.values():
            if (resource.get("email") or "").strip().casefold() == wanted:
                return resource
        return None

    def upsert_resource(self, values: dict[str, Any]) -> Resource:
        """Create or merge a resource; ``values`` holds typed camelCase fields incl. ``resourceNo``."""
        resource_no = values["resourceNo"]
        self._remember(self.resources, resource_no.casefold())
        existing = self.resource(resource_no)
        if existing is None:
            existing = {name: (False if name in RESOURCE_BOOLEANS else None) for name in RESOURCE_FIELDS}
            existing["id"] = self.next_id("resource")
            self.resources[resource_no.casefold()] = existing
        for name, value in values.items():
            if name == "resourceNo" and existing.get("resourceNo"):
                continue  # keep the casing first written
            existing[name] = value
        return existing

    # --- indicators -----------------------------------------------------------------------------
    def category(self, name: str) -> Category | None:
        found = self.categories.get(name.casefold())
        if found is None:  # the planner UI shows display names: accept those too
            found = next((c for c in self.categories.values() if c.display_name.casefold() == name.casefold()), None)
        return found

    def upsert_category(self, name: str, display_name: str | None, color: str | None) -> Category:
        self._remember(self.categories, name.casefold())
        existing = self.categories.get(name.casefold())
        if existing is None:
            existing = Category(self.next_id("category"), name, display_name or name, color)
            self.categories[name.casefold()] = existing
        else:
            if display_name is not None:
                existing.display_name = display_name
            if color is not None:
                existing.color = color
        return existing

    def time_marker(self, name: str) -> TimeMarker | None:
        return self.time_markers.get(name.casefold())

    def upsert_time_marker(self, name: str, color: str | None) -> TimeMarker:
        self._remember(self.time_markers, name.casefold())
        existing = self.time_markers.get(name.casefold())
        if existing is None:
            existing = TimeMarker(self.next_id("timeMarker"), name, color)
            self.time_markers[name.casefold()] = existing
        elif color is not None:
            existing.color = color
        return existing

    # --- jobs and tasks -------------------------------------------------------------------------
    def job(self, source_app: str, source_type: str, job_no: str) -> Job | None:
        return self.jobs.get(_fold(source_app, source_type, job_no))

    def upsert_job(self, job: Job) -> Job:
        key = _fold(job.source_app, job.source_type, job.job_no)
        self._remember(self.jobs, key)
        existing = self.jobs.get(key)
        if existing is None:
            self.jobs[key] = job
            return job
        existing.short_description = job.short_description or existing.short_description
        existing.description = job.description or existing.description
        return existing

    def task(self, source_app: str, source_type: str, job_no: str, task_no: str) -> Task | None:
        return self.tasks.get(_fold(source_app, source_type, job_no, task_no))

    def task_by_key(self, key: TaskKey) -> Task | None:
        return self.task(*key)

    def upsert_task(self, task: Task) -> Task:
        if self.job(task.source_app, task.source_type, task.job_no) is None:
            raise LookupProblem(
                f"unknown job {task.job_no!r} (SourceApp {task.source_app!r}, SourceType {task.source_type!r}):"
                " upsert the job first"
            )
        key = _fold(task.source_app, task.source_type, task.job_no, task.task_no)
        self._remember(self.tasks, key)
        existing = self.tasks.get(key)
        if existing is None:
            self.tasks[key] = task
            return task
        existing.short_description = task.short_description or existing.short_description
        existing.description = task.description or existing.description
        return existing

    # --- appointments ---------------------------------------------------------------------------
    def appointment(self, ref: str | int) -> Appointment | None:
        """By GUID (any casing/format) or numeric id (int or digits)."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            guid = self._guid_by_id.get(int(ref))
            return None if guid is None else self.appointments.get(guid)
        return self.appointments.get(str(ref).strip().lower().strip("{}"))

    def find_by_exchange_id(self, exchange_id: str, resource_no: str | None) -> Appointment | None:
        for appt in self.appointments.values():
            if appt.exchange_id == exchange_id and (
                resource_no is None or resource_no.casefold() in (r.casefold() for r in appt.assignments)
            ):
                return appt
        return None

    def save_appointment(self, candidate: Appointment, user: str, force: bool = False) -> bool:
        """Store ``candidate``; False (and nothing touched) when it equals what is stored, unless
        ``force`` (a planner's save on the board counts as a change even when nothing differs).

        A change stamps LastModifiedDate/User (and Created* for a new appointment).
        """
        existing = self.appointments.get(candidate.guid)
        if existing is not None and not force and same_content(existing, candidate):
            return False
        self._remember(self.appointments, candidate.guid)
        self._remember(self._guid_by_id, candidate.id)
        self._guid_by_id[candidate.id] = candidate.guid
        stamp = self.stamp()
        if existing is None:
            candidate.created_date = candidate.created_date or stamp
            candidate.created_user = candidate.created_user or user
        candidate.last_modified_date = stamp
        candidate.last_modified_user = user
        self.appointments[candidate.guid] = candidate
        return True

    def delete_appointment(self, guid: str) -> Appointment | None:
        self._remember(self.appointments, guid)
        found = self.appointments.pop(guid, None)
        if found is not None:
            self._remember(self._guid_by_id, found.id)
            self._guid_by_id.pop(found.id, None)
        return found

    def appointments_in_window(
        self, start: datetime, end: datetime, resource_nos: Iterable[str] | None
    ) -> list[Appointment]:
        """Appointments overlapping [start, end) (a zero-length one counts if it starts inside),
        assigned to any of ``resource_nos`` (every appointment when None), by start then id."""
        wanted = None if resource_nos is None else {r.casefold() for r in resource_nos}
        found = []
        for appt in self.appointments.values():
            overlaps = (appt.start < end and appt.end > start) or (appt.start == appt.end and start <= appt.start < end)
            if not overlaps:
                continue
            if wanted is not None and not any(r.casefold() in wanted for r in appt.assignments):
                continue
            found.append(appt)
        return sorted(found, key=lambda a: (a.start, a.id))
