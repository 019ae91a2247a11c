"""``POST /import``: validate the batch, apply it atomically, build the SDK's response envelope.

The batch runs against a clone of the store; the clone replaces the live store only when every call
succeeded, so a failing call leaves nothing applied. The appointment webhooks an import causes are
the net effect per appointment (created / updated / deleted), computed by comparing the appointments
it addressed before and after — a write that changes nothing fires nothing.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from .config import SchedulerEmulatorConfig
from .model import Appointment
from .procedures import PROCEDURES, Context, ProcedureError
from .store import Store

EventType = str  # "AppointmentCreated" | "AppointmentUpdated" | "AppointmentDeleted"


@dataclass
class AppointmentEvent:
    """A change to announce: the appointment's state after it (before it, for a delete) and the
    store to render it with (the one it lived in)."""

    event: EventType
    appointment: Appointment
    store: Store


@dataclass
class ImportResult:
    status: int
    body: dict[str, Any]
    store: Store | None = None  # the new state, when the batch succeeded
    events: list[AppointmentEvent] = field(default_factory=list)
    applied: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)


def envelope(status: int, message: str, appointments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``{Content, ContentType, StatusCode}`` as the .NET SDK reads it; Content is a JSON string."""
    content = {
        "Success": 200 <= status < 300,
        "Message": message,
        "Status": status,
        "Phrase": HTTPStatus(status).phrase,
        "Appointments": appointments or [],
    }
    body: dict[str, Any] = {"Content": json.dumps(content), "ContentType": "application/json", "StatusCode": status}
    if status >= 400:
        body["message"] = message  # what the SDK's typed errors show (they read "message")
    return body


def _fail(message: str) -> ImportResult:
    return ImportResult(400, envelope(400, message))


def _field(call: dict[str, Any], name: str) -> Any:
    """A call's property, matched case-insensitively as ASP.NET's model binding does."""
    for key, value in call.items():
        if key.casefold() == name.casefold():
            return value
    return None


def run_import(store: Store, config: SchedulerEmulatorConfig, payload: Any) -> ImportResult:
    """Apply a parsed ``/import`` body (a list of calls, or one call) to a clone of ``store``."""
    calls = [payload] if isinstance(payload, dict) else payload
    if not isinstance(calls, list):
        return _fail("the body must be a JSON array of procedure calls (or a single call object)")
    work = store.clone()
    ctx = Context(work, config, config.import_user)
    result = ImportResult(200, {})
    touched: dict[str, int] = {}  # guid -> id, in first-touch order
    loud: set[str] = set()
    for number, call in enumerate(calls, start=1):
        if not isinstance(call, dict):
            return _fail(f"call #{number}: each call must be an object with StoredProcedureName,"
                         " ParameterNames and ParameterValues")
        name = _field(call, "StoredProcedureName")
        if not isinstance(name, str) or not name:
            return _fail(f"call #{number}: 'StoredProcedureName' must be a non-empty string")
        procedure = PROCEDURES.get(name.casefold())
        if procedure is None:
            known = ", ".join(p.name for p in PROCEDURES.values())
            return _fail(f"call #{number}: unknown stored procedure {name!r} (this emulator knows: {known})")
        names, values = _field(call, "ParameterNames"), _field(call, "ParameterValues")
        if not isinstance(names, list) or not isinstance(values, list):
            return _fail(f"{procedure.name} (call #{number}): 'ParameterNames' and 'ParameterValues' must be arrays")
        if len(names) != len(values):
            return _fail(
                f"{procedure.name} (call #{number}): {len(names)} ParameterNames but {len(values)} ParameterValues"
            )
        try:
            args = procedure.parse(names, values, config)
            outcome = procedure.run(ctx, args)
        except ProcedureError as exc:
            return _fail(f"{procedure.name} (call #{number}): {exc}")
        result.applied[procedure.name] += 1
        result.changed[procedure.name] += int(outcome.changed)
        for appt_id, guid in outcome.touched:
            touched.setdefault(guid, appt_id)
            if outcome.changed and not outcome.quiet:
                loud.add(guid)
    result.store = work
    result.events = _net_events(store, work, [g for g in touched if g in loud]) if config.import_fires_webhooks else []
    listed = [{"Id": appt_id, "Guid": guid} for guid, appt_id in touched.items()]
    result.body = envelope(200, f"{len(calls)} procedure call(s) imported", listed)
    return result


def _net_events(before: Store, after: Store, guids: list[str]) -> list[AppointmentEvent]:
    events = []
    for guid in guids:
        old, new = before.appointments.get(guid), after.appointments.get(guid)
        if old is None and new is not None:
            events.append(AppointmentEvent("AppointmentCreated", new, after))
        elif old is not None and new is None:
            events.append(AppointmentEvent("AppointmentDeleted", old, before))
        elif old is not None and new is not None and old != new:
            events.append(AppointmentEvent("AppointmentUpdated", new, after))
    return events
