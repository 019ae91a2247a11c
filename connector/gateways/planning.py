"""The planning side: Dime.Scheduler through its official Python SDK (`dimescheduler`).

The SDK picks its base URL from an `Environment` enum; to reach any other endpoint (the local
emulator, a private deployment) we give it an httpx transport that rewrites scheme, host and port
of each request to the configured `DS_BASE_URL`. Writes go through `POST /import` as procedure
calls whose values are strings formatted the way the .NET SDK sends them, with exactly the
parameters the procedures declare (they are SQL procedures: an unknown parameter fails the call).
The SDK never raises on non-2xx, so every call is checked here and turned into `PlanningError`.

An import counts as applied only when its answer is a readable success: HTTP 2xx *and* an envelope
whose inner `StatusCode` is 200 (`{Content, ContentType, StatusCode}` from the .NET side,
`{content, contentType, statusCode}` from the JS side; `Content` a JSON string or an object). A
failure may arrive as HTTP 200 with an inner 4xx/5xx and `Content` `{Error, Description}`: it is a
`PlanningError` with the inner status (429/5xx transient, other 4xx permanent). An answer that cannot
be read at all is a transient `PlanningError` (502): the write is idempotent, so retrying is safe,
and recording it as applied could lose it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import httpx
from dimescheduler import DimeSchedulerClient, Environment, RetryConfig
from dimescheduler.api.crud import CrudApi
from dimescheduler.result import Result

from connector.config import PlanningConfig
from connector.errors import PlanningError, UnclearAnswer
from connector.gateways.transport import BaseUrlTransport
from connector.model import BoardImport

WEBHOOK_EVENTS: tuple[str, ...] = ("AppointmentCreated", "AppointmentUpdated", "AppointmentDeleted")
_CHANGE_TYPES = {"AppointmentCreated": "Create", "AppointmentUpdated": "Update", "AppointmentDeleted": "Delete"}


def _environment_for(base_url: str) -> Environment | None:
    for environment in Environment:
        if environment.value.rstrip("/") == base_url.rstrip("/"):
            return environment
    return None


# -- import procedure values: strings, as the .NET SDK formats them ------------------------------
ImportValue = str | bool | int | float | datetime | Sequence[str] | IntEnum | None


def format_value(value: ImportValue) -> str:
    """Format one procedure parameter value the way Dime.Scheduler's import expects it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, IntEnum):
        return str(int(value))
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.strftime("%Y-%m-%d %H:%M:%SZ")
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return value
    return ";".join(value)


@dataclass(frozen=True)
class Procedure:
    """One stored-procedure call of an import."""

    name: str
    parameters: Mapping[str, ImportValue]

    def to_json(self) -> dict[str, Any]:
        return {
            "StoredProcedureName": self.name,
            "ParameterNames": list(self.parameters),
            "ParameterValues": [format_value(v) for v in self.parameters.values()],
        }


# One `/import` request of many items: at most this many calls and about this many bytes of them
# (Dime.Scheduler documents no limit; a delta page is 100 items, an item's body may be long).
IMPORT_CALLS = 100
IMPORT_BYTES = 1 << 20

EXCHANGE_PARAMETERS: tuple[str, ...] = (
    "AppointmentId", "AppointmentGuid", "ExchangeId", "ICalUId", "Start", "End", "Subject", "Body", "Importance",
    "ResourceEmail", "ShowAs", "Sensitivity", "Categories", "CreatedByExchange",
)
"""The parameters of `mboc_upsertExchangeAppointment` / `mboc_deleteExchangeAppointment`: the official
SDK models' fields, in their order, and nothing else."""


def exchange_parameters(appointment_guid: str, exchange_id: str, resource_email: str,
                        item: Mapping[str, Any]) -> dict[str, ImportValue]:
    """Every parameter of the Exchange appointment procedures for one item (unknown values empty)."""
    def number(name: str) -> int | None:
        value = item.get(name)
        return None if value is None or value == "" else int(value)

    values: dict[str, ImportValue] = {
        "AppointmentId": 0,  # 0 = none: the GUID names the item (as the .NET SDK's default)
        "AppointmentGuid": appointment_guid,
        "ExchangeId": exchange_id,
        "ICalUId": str(item.get("ICalUId") or ""),
        "Start": item.get("Start"),
        "End": item.get("End"),
        "Subject": str(item.get("Subject") or ""),
        "Body": str(item.get("Body") or ""),
        "Importance": int(item.get("Importance") or 0),
        "ResourceEmail": resource_email,
        "ShowAs": number("ShowAs"),
        "Sensitivity": number("Sensitivity"),
        "Categories": [str(c) for c in item.get("Categories") or ()],
        "CreatedByExchange": True,
    }
    assert tuple(values) == EXCHANGE_PARAMETERS
    return values


def _exchange_calls(one: BoardImport) -> list[Procedure]:
    """The calls that mirror one Outlook item: its upsert, after its deletion when it is `replace`d (the
    deletion carries the item's values, as the .NET SDK sends every field of the model)."""
    values = exchange_parameters(one.appointment_guid, one.exchange_id, one.resource_email, one.item)
    upsert = Procedure("mboc_upsertExchangeAppointment", values)
    return [Procedure("mboc_deleteExchangeAppointment", values), upsert] if one.replace else [upsert]


@dataclass(frozen=True)
class ImportResult:
    success: bool
    message: str
    appointments: list[dict[str, Any]]


def _error_text(result: Result) -> str:
    error = result.error
    if isinstance(error, dict):
        for key in ("message", "Message", "error", "title"):
            if error.get(key):
                return str(error[key])
        content = error.get("Content")
        if isinstance(content, str):
            try:
                return str(json.loads(content).get("Message", content))
            except ValueError:
                return content
    return result.response.reason_phrase or "request failed"


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return float(header)
        except ValueError:
            return None
    return None


def _check(result: Result, what: str) -> Any:
    if result.ok:
        return result.data
    raise PlanningError(result.response.status_code, f"{what}: {_error_text(result)}", _retry_after(result.response))


def _key(data: Mapping[str, Any], name: str) -> Any:
    """A property in either casing (`Content` / `content`)."""
    for key, value in data.items():
        if isinstance(key, str) and key.casefold() == name.casefold():
            return value
    return None


def _content(envelope: Mapping[str, Any]) -> dict[str, Any] | None:
    """The envelope's `Content` as a dict (it may be a JSON string or an object), or None."""
    raw = _key(envelope, "Content")
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return None
    return dict(raw) if isinstance(raw, Mapping) else None


def _failure_text(content: Mapping[str, Any] | None, fallback: str) -> str:
    if content:
        parts = [str(v) for v in (_key(content, "Error"), _key(content, "Description") or _key(content, "Message")) if v]
        if parts:
            return ": ".join(parts)
    return fallback


def read_import_answer(status: int, body: Any, retry_after: float | None = None) -> ImportResult:
    """The outcome of `POST /import` from its HTTP status and JSON body (None when it had none).

    Success only when the HTTP status is 2xx and the envelope's inner `StatusCode` is 200; raises
    `PlanningError` otherwise (see the module docstring).
    """
    envelope = body if isinstance(body, Mapping) else None
    inner = _key(envelope, "StatusCode") if envelope is not None else None
    content = _content(envelope) if envelope is not None else None
    if not 200 <= status < 300:
        fallback = str(_key(envelope, "message") or "") if envelope is not None else ""
        raise PlanningError(status, f"import: {_failure_text(content, fallback or f'HTTP {status}')}", retry_after)
    if isinstance(inner, bool) or not isinstance(inner, int | str) or not str(inner).strip().isdigit():
        # Nothing says whether the calls were applied: retry (imports are idempotent), never assume.
        raise PlanningError(502, f"import: HTTP {status} without a readable StatusCode in the answer")
    code = int(str(inner))
    if code != 200:
        raise PlanningError(code, f"import: {_failure_text(content, f'StatusCode {code}')}", retry_after)
    if content is not None and _key(content, "Success") is False:
        raise PlanningError(502, f"import: StatusCode 200 but Success false: {_failure_text(content, '')}")
    content = content or {}
    return ImportResult(True, str(_key(content, "Message") or ""), list(_key(content, "Appointments") or []))


def _same_guid(a: str, b: str) -> bool:
    return a.strip().strip("{}").lower() == b.strip().strip("{}").lower()


def read_by_refs(guid: str, appointment_id: str | None, read_one: Callable[[str], Any]) -> dict[str, Any] | None:
    """`GET /appointment/{id}` by each id the appointment is known by: the numeric id first (the route
    may take only that), then the GUID (it may take that too). The payload of the first that answers;
    None only when every one answers 404. An answer that is not clearly this appointment (a payload for
    another GUID, or none at all, an empty or unreadable body) raises `UnclearAnswer`: whoever mixed
    the ids up (a forged webhook, an `id` that is not the appointment's) must not cause a deletion.
    Whether a 404 is enough is the caller's to decide (`connector.workers.appointment_reads`).
    `read_one(ref)` returns the answer's data or raises `PlanningError` (shared with the simulation's
    Dime.Scheduler, so the same rule runs there)."""
    refs = ([appointment_id] if appointment_id and appointment_id.isdigit() else []) + [guid]
    for ref in refs:
        try:
            found = read_one(ref)
        except PlanningError as exc:
            if exc.status == 404:
                continue
            raise
        if not isinstance(found, Mapping) or not found:
            raise UnclearAnswer(f"read appointment {ref}: an empty or unreadable answer")
        got = str(_key(found, "AppointmentGuid") or "")
        if not _same_guid(got, guid):
            raise UnclearAnswer(f"read appointment {ref}: the answer is for appointment {got or '(no GUID)'}, "
                                f"not {guid}")
        return dict(found)
    return None


def _numeric(value: Any) -> str | None:
    text = str(value).strip() if isinstance(value, int | str) and not isinstance(value, bool) else ""
    return str(int(text)) if text.isdigit() and int(text) > 0 else None


def id_for_update(appointment: Mapping[str, Any], appointment_id: str | None,
                  read_one: Callable[[str], Any]) -> str:
    """The numeric id `mboc_upsertAppointment` must get to update a planner's appointment: "the appointment
    id is required if you want to update an existing appointment; otherwise it inserts" (a second
    appointment for the same job). The payload's `id` (just read from Dime.Scheduler), else the id remembered
    from it (`appointment_id`), else read first by GUID (`GET /appointment/{guid}`, where the service takes GUIDs).
    Without one, no update is sent: a permanent `PlanningError` (the change is parked on the monitor).
    Shared with the simulation's Dime.Scheduler, so the same rule runs there."""
    for candidate in (_key(appointment, "id"), _key(appointment, "AppointmentId"), appointment_id):
        if (found := _numeric(candidate)) is not None:
            return found
    guid = str(_key(appointment, "AppointmentGuid") or "")
    read = read_by_refs(guid, None, read_one) if guid else None
    found = _numeric(_key(read, "id")) if read else None
    if found is None:
        raise PlanningError(422, f"update appointment {guid or '(no GUID)'}: its numeric id is not known, and "
                                 "mboc_upsertAppointment without one inserts a second appointment: not sent")
    return found


class PlanningGateway:
    """Dime.Scheduler reads, imports and webhook registrations."""

    def __init__(self, config: PlanningConfig, transport: httpx.BaseTransport | None = None,
                 retry: RetryConfig | None = None) -> None:
        environment = _environment_for(config.base_url)
        if environment is None:
            transport = BaseUrlTransport(config.base_url, transport)
            environment = Environment.Production
        # Short, bounded retries inside a call; longer outages are retried by the queue.
        self.client = DimeSchedulerClient(
            config.api_key.reveal(), environment, transport=transport,
            retry=retry or RetryConfig(max_retries=2, initial_delay_s=0.2, max_delay_s=2.0), timeout=30.0,
        )
        self._source_app = config.source_app

    def close(self) -> None:
        self.client.close()

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            result = fn(*args, **kwargs)
        except httpx.HTTPError as exc:
            raise PlanningError(0, f"{what}: {type(exc).__name__}: {exc}") from None
        return _check(result, what)

    # -- reads ------------------------------------------------------------------------------
    def list_resources(self) -> list[dict[str, Any]]:
        data = self._call("list resources", self.client.resources.get_all)
        return list(data or [])

    def appointments(self, start: datetime, end: datetime, resources: Sequence[str] | None = None) -> list[dict[str, Any]]:
        data = self._call("list appointments", self.client.appointments.get, _iso(start), _iso(end),
                          list(resources) if resources else None)
        return list(data or [])

    def get_appointment(self, guid: str, appointment_id: str | None = None) -> dict[str, Any] | None:
        """The appointment's current `appointment-incoming` payload, or None when every id it is known
        by answers 404 (see `read_by_refs`)."""
        return read_by_refs(guid, appointment_id, self._read_one)

    def _read_one(self, ref: str) -> Any:
        return self._call(f"read appointment {ref}", self.client.appointments.get_by_id, ref)

    def ping(self) -> None:
        """A cheap authenticated call for the health check."""
        self._call("health check", self.client.time_markers.get_all)

    # -- writes -----------------------------------------------------------------------------
    def run_import(self, procedures: Sequence[Procedure]) -> ImportResult:
        """Run the calls; returns only on a readable success (see `read_import_answer`)."""
        try:
            result = self.client.imports.run([p.to_json() for p in procedures])
        except httpx.HTTPError as exc:
            raise PlanningError(0, f"import: {type(exc).__name__}: {exc}") from None
        body = result.data if result.ok else result.error
        return read_import_answer(result.response.status_code, body, _retry_after(result.response))

    # -- Outlook → planning writes -----------------------------------------------------------
    def upsert_exchange_appointment(self, appointment_guid: str, exchange_id: str, resource_email: str,
                                    item: Mapping[str, Any], replace: bool = False) -> None:
        """Mirror one Outlook item on the board (`mboc_upsertExchangeAppointment`); `item` is `board_item()`.

        Only the parameters of the official SDK model are sent: the item's all-day flag and location
        have no parameter there (the board shows an all-day item by its midnight-to-midnight times).
        `replace`: the board item is deleted first, in the same `/import` (`BoardImport.replace`).
        """
        self.run_import(_exchange_calls(BoardImport(appointment_guid, exchange_id, resource_email, item, replace)))

    def upsert_exchange_appointments(self, items: Sequence[BoardImport]) -> None:
        """Mirror many Outlook items at once: one `/import` per IMPORT_CALLS calls (or IMPORT_BYTES of
        parameters). Whether Dime.Scheduler applies a failing batch's other calls is not documented:
        the caller treats a failed batch as unknown and applies its items one by one."""
        batch: list[Procedure] = []
        size = 0
        for one in items:
            calls = _exchange_calls(one)  # a replaced item's two calls stay in one `/import`
            weight = sum(len(json.dumps(call.to_json(), default=str)) for call in calls)
            if batch and (len(batch) + len(calls) > IMPORT_CALLS or size + weight > IMPORT_BYTES):
                self.run_import(batch)
                batch, size = [], 0
            batch += calls
            size += weight
        if batch:
            self.run_import(batch)

    def delete_exchange_appointment(self, appointment_guid: str, exchange_id: str, resource_email: str,
                                    item: Mapping[str, Any] | None = None) -> None:
        """Remove an Outlook item from the board (`mboc_deleteExchangeAppointment`; idempotent).

        Like the .NET SDK, every field of the model is sent (Start and End included); the item's
        values when they are known (`board_item()`), else empty (an item deleted in Outlook is gone).
        """
        self.run_import([Procedure("mboc_deleteExchangeAppointment",
                                   exchange_parameters(appointment_guid, exchange_id, resource_email, item or {}))])

    def update_planner_appointment(self, appointment: Mapping[str, Any], subject: str, body: str,
                                   start: datetime, end: datetime, all_day: bool,
                                   appointment_id: str | None = None) -> None:
        """Move/retitle a planner's appointment (`mboc_upsertAppointment`), keeping job, task and resources.

        `appointment` is its current `appointment-incoming` payload (from `get_appointment`); the call
        names it by its numeric id too (`id_for_update`: without one the procedure would insert).
        """
        task = appointment.get("Task")
        job = task.get("Job") if isinstance(task, Mapping) else None
        job = job if isinstance(job, Mapping) else {}
        guid = appointment.get("AppointmentGuid") or appointment.get("appointmentGuid")
        number = id_for_update(appointment, appointment_id, self._read_one)
        self.run_import([Procedure("mboc_upsertAppointment", {
            "AppointmentId": number,
            "AppointmentGuid": str(guid),
            "SourceApp": str(job.get("SourceApp") or appointment.get("SourceApp") or self._source_app),
            "SourceType": str(job.get("SourceType") or appointment.get("SourceType") or self._source_app[:10]),
            "Subject": subject,
            "Body": body,
            "Start": start,
            "End": end,
            "IsAllDayEvent": all_day,
        })])

    # -- webhooks ---------------------------------------------------------------------------
    def _hooks(self, event: str) -> CrudApi:
        # The SDK has no webhook accessor; its generic CRUD accessor posts to any route.
        return CrudApi(self.client.appointments._dispatcher, f"/webhooks/{event}")

    def register_webhook(self, event: str, notification_url: str, name: str, source_app: str | None = None) -> str:
        """Subscribe `notification_url` to one appointment event of the appointments whose Source App is
        `source_app` (default `DS_SOURCE_APP`); returns the hook id.

        The 201 may carry the hook as JSON or only a `Location` header (`/webhooks/<event>/<id>`):
        the id is read from either.
        """
        if event not in _CHANGE_TYPES:
            raise ValueError(f"unknown webhook event {event!r}")
        body = {"sourceApp": source_app or self._source_app, "name": name, "notificationURL": notification_url,
                "resource": "Appointments", "changeType": [_CHANGE_TYPES[event]]}
        try:
            result = self._hooks(event).create(body)
        except httpx.HTTPError as exc:
            raise PlanningError(0, f"register webhook {event}: {type(exc).__name__}: {exc}") from None
        data = _check(result, f"register webhook {event}")
        hook_id = _key(data, "id") if isinstance(data, Mapping) else None
        if not hook_id:
            location = result.response.headers.get("location") or ""
            hook_id = location.rstrip("/").rsplit("/", 1)[-1] if f"/{event}/" in location else None
        if not hook_id:
            raise PlanningError(502, f"register webhook {event}: the answer carried no hook id (no body, no Location)")
        return str(hook_id)

    def delete_webhook(self, event: str, hook_id: str) -> None:
        """Unsubscribe; a hook already gone counts as deleted."""
        dispatcher = self.client.appointments._dispatcher
        try:
            self._call(f"delete webhook {event}", dispatcher.request, "DELETE", f"/webhooks/{event}/{hook_id}")
        except PlanningError as exc:
            if exc.status != 404:
                raise


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC) if moment.tzinfo else moment
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
