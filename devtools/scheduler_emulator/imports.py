"""``POST /import``: validate the batch, apply it (atomically or up to a failing call), build the SDK's
response envelope.

The batch runs in a store transaction (an undo journal). Under ``import_batch_partial`` (the default,
the harsher case: Dime.Scheduler documents neither) the calls before a failing one stay applied and the
answer is the failure all the same; without it a failing call rolls every earlier call back. The
appointment webhooks an import causes are the net effect per appointment (created / updated / deleted),
computed by comparing the appointments it addressed before and after — a write that changes nothing fires nothing.
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
    store: Store | None = None  # the store the batch was applied to, when it succeeded
    events: list[AppointmentEvent] = field(default_factory=list)
    applied: Counter[str] = field(default_factory=Counter)
    changed: Counter[str] = field(default_factory=Counter)


def envelope(config: SchedulerEmulatorConfig, status: int, message: str,
             appointments: list[dict[str, Any]] | None = None) -> tuple[int, dict[str, Any]]:
    """The HTTP status and the body of an import answer, as the knobs shape them.

    ``{Content, ContentType, StatusCode}`` (camelCase under ``import_envelope_casing = camel``);
    ``Content`` is a JSON string (an object under ``import_content_as_object``): on success
    ``{Success, Message, Status, Phrase, Appointments}``, on failure ``{Error, Description}`` (what
    the .NET SDK's ``FailedRequestException`` reads). A failure answers HTTP 200 under
    ``import_failure_as_http_200``, else its own status.
    """
    if 200 <= status < 300:
        content: dict[str, Any] = {
            "Success": True, "Message": message, "Status": status, "Phrase": HTTPStatus(status).phrase,
            "Appointments": appointments or [],
        }
    else:
        content = {"Error": HTTPStatus(status).phrase, "Description": message}
    names = ("content", "contentType", "statusCode") if config.import_envelope_casing == "camel" else (
        "Content", "ContentType", "StatusCode")
    packed: Any = content if config.import_content_as_object else json.dumps(content)
    body: dict[str, Any] = dict(zip(names, (packed, "application/json", status), strict=True))
    if status >= 400:
        body["message"] = message  # what the SDK's typed errors show (they read "message")
    http_status = 200 if status >= 400 and config.import_failure_as_http_200 else status
    return http_status, body


def _fail(config: SchedulerEmulatorConfig, message: str) -> ImportResult:
    http_status, body = envelope(config, 400, message)
    return ImportResult(http_status, body)


def _field(call: dict[str, Any], name: str) -> Any:
    """A call's property, matched case-insensitively as ASP.NET's model binding does."""
    for key, value in call.items():
        if key.casefold() == name.casefold():
            return value
    return None


class _Rejected(Exception):
    """A call of the batch failed: the batch is rolled back and answered with this result."""

    def __init__(self, result: ImportResult, applied: int = 0) -> None:
        self.result = result
        self.applied = applied  # how many calls before the failing one went through


def run_import(store: Store, config: SchedulerEmulatorConfig, payload: Any) -> ImportResult:
    """Apply a parsed ``/import`` body (a list of calls, or one call) to ``store``, all or nothing."""
    calls = [payload] if isinstance(payload, dict) else payload
    if not isinstance(calls, list):
        return _fail(config, "the body must be a JSON array of procedure calls (or a single call object)")
    try:
        with store.transaction():
            return _run_calls(store, config, calls)
    except _Rejected as rejected:
        if config.import_batch_partial and rejected.applied:
            # The calls before the failing one stand: applied (and announced) as a batch of their own.
            done = run_import(store, config, calls[:rejected.applied])
            rejected.result.store, rejected.result.events = done.store, done.events
            rejected.result.applied, rejected.result.changed = done.applied, done.changed
        return rejected.result


def _run_calls(store: Store, config: SchedulerEmulatorConfig, calls: list[Any]) -> ImportResult:
    ctx = Context(store, config, config.import_user)
    result = ImportResult(200, {})
    touched: dict[str, int] = {}  # guid -> id, in first-touch order
    loud: set[str] = set()
    for number, call in enumerate(calls, start=1):
        try:
            _run_call(ctx, config, result, number, call, touched, loud)
        except _Rejected as rejected:
            raise _Rejected(rejected.result, number - 1) from None
    result.store = store
    result.events = _net_events(store, [g for g in touched if g in loud]) if config.import_fires_webhooks else []
    listed = [{"Id": appt_id, "Guid": guid} for guid, appt_id in touched.items()]
    result.status, result.body = envelope(config, 200, f"{len(calls)} procedure call(s) imported", listed)
    return result


def _run_call(ctx: Context, config: SchedulerEmulatorConfig, result: ImportResult, number: int, call: Any,
              touched: dict[str, int], loud: set[str]) -> None:
    """Run call #number of a batch into `result`; `_Rejected` when it fails."""
    if not isinstance(call, dict):
        raise _Rejected(_fail(config, f"call #{number}: each call must be an object with StoredProcedureName,"
                              " ParameterNames and ParameterValues"))
    name = _field(call, "StoredProcedureName")
    if not isinstance(name, str) or not name:
        raise _Rejected(_fail(config, f"call #{number}: 'StoredProcedureName' must be a non-empty string"))
    procedure = PROCEDURES.get(name.casefold())
    if procedure is None:
        known = ", ".join(p.name for p in PROCEDURES.values())
        raise _Rejected(_fail(config, f"call #{number}: unknown stored procedure {name!r} (this emulator knows: {known})"))
    names, values = _field(call, "ParameterNames"), _field(call, "ParameterValues")
    if not isinstance(names, list) or not isinstance(values, list):
        raise _Rejected(_fail(config, f"{procedure.name} (call #{number}): 'ParameterNames' and 'ParameterValues'"
                              " must be arrays"))
    if len(names) != len(values):
        raise _Rejected(_fail(config, f"{procedure.name} (call #{number}): {len(names)} ParameterNames but"
                              f" {len(values)} ParameterValues"))
    try:
        args = procedure.parse(names, values, config)
        outcome = procedure.run(ctx, args)
    except ProcedureError as exc:
        raise _Rejected(_fail(config, f"{procedure.name} (call #{number}): {exc}")) from None
    result.applied[procedure.name] += 1
    result.changed[procedure.name] += int(outcome.changed)
    for appt_id, guid in outcome.touched:
        touched.setdefault(guid, appt_id)
        if outcome.changed and not outcome.quiet:
            loud.add(guid)


def _net_events(store: Store, guids: list[str]) -> list[AppointmentEvent]:
    """Called inside the batch's transaction, which still knows each appointment's state before it."""
    events = []
    for guid in guids:
        old, new = store.appointment_before_batch(guid), store.appointments.get(guid)
        if old is None and new is not None:
            events.append(AppointmentEvent("AppointmentCreated", new, store))
        elif old is not None and new is None:
            events.append(AppointmentEvent("AppointmentDeleted", old, store))
        elif old is not None and new is not None and old != new:
            events.append(AppointmentEvent("AppointmentUpdated", new, store))
    return events
