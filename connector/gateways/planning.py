"""The planning side: Dime.Scheduler through its official Python SDK (`dimescheduler`).

The SDK picks its base URL from an `Environment` enum; to reach any other endpoint (the local
emulator, a private deployment) we give it an httpx transport that rewrites scheme, host and port
of each request to the configured `DS_BASE_URL`. Writes go through `POST /import` as procedure
calls whose values are strings formatted the way the .NET SDK sends them. The SDK never raises on
non-2xx, so every call is checked here and turned into `PlanningError`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import httpx
from dimescheduler import DimeSchedulerClient, Environment, RetryConfig
from dimescheduler.api.crud import CrudApi
from dimescheduler.result import Result

from connector.config import PlanningConfig
from connector.errors import PlanningError
from connector.gateways.transport import BaseUrlTransport

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


def _check(result: Result, what: str) -> Any:
    if result.ok:
        return result.data
    retry_after: float | None = None
    header = result.response.headers.get("retry-after")
    if header:
        try:
            retry_after = float(header)
        except ValueError:
            retry_after = None
    raise PlanningError(result.response.status_code, f"{what}: {_error_text(result)}", retry_after)


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

    def get_appointment(self, appointment_id: str) -> dict[str, Any] | None:
        try:
            return dict(self._call(f"read appointment {appointment_id}", self.client.appointments.get_by_id,
                                   appointment_id) or {}) or None
        except PlanningError as exc:
            if exc.status == 404:
                return None
            raise

    def ping(self) -> None:
        """A cheap authenticated call for the health check."""
        self._call("health check", self.client.time_markers.get_all)

    # -- writes -----------------------------------------------------------------------------
    def run_import(self, procedures: Sequence[Procedure]) -> ImportResult:
        data = self._call("import", self.client.imports.run, [p.to_json() for p in procedures])
        content: dict[str, Any] = {}
        if isinstance(data, dict) and isinstance(data.get("Content"), str):
            try:
                content = json.loads(data["Content"])
            except ValueError:
                content = {}
        if content and not content.get("Success", True):
            raise PlanningError(400, f"import: {content.get('Message', 'rejected')}")
        return ImportResult(bool(content.get("Success", True)), str(content.get("Message", "")),
                            list(content.get("Appointments") or []))

    # -- Outlook → planning writes -----------------------------------------------------------
    def upsert_exchange_appointment(self, appointment_guid: str, exchange_id: str, resource_email: str,
                                    item: Mapping[str, Any]) -> None:
        """Mirror one Outlook item on the board (`mboc_upsertExchangeAppointment`); `item` is `board_item()`."""
        self.run_import([Procedure("mboc_upsertExchangeAppointment", {
            "AppointmentGuid": appointment_guid,
            "ExchangeId": exchange_id,
            "ICalUId": str(item.get("ICalUId") or ""),
            "Start": item["Start"],
            "End": item["End"],
            "Subject": str(item.get("Subject") or ""),
            "Body": str(item.get("Body") or ""),
            "Importance": int(item.get("Importance") or 0),
            "ResourceEmail": resource_email,
            "ShowAs": int(item["ShowAs"]),
            "Sensitivity": int(item["Sensitivity"]),
            "Categories": [str(c) for c in item.get("Categories") or ()],
            "CreatedByExchange": True,
            "IsAllDayEvent": bool(item.get("IsAllDayEvent")),
            "Location": str(item.get("Location") or ""),
        })])

    def delete_exchange_appointment(self, appointment_guid: str, exchange_id: str, resource_email: str) -> None:
        """Remove an Outlook item from the board (`mboc_deleteExchangeAppointment`; idempotent)."""
        self.run_import([Procedure("mboc_deleteExchangeAppointment", {
            "AppointmentGuid": appointment_guid, "ExchangeId": exchange_id, "ResourceEmail": resource_email,
        })])

    def update_planner_appointment(self, appointment: Mapping[str, Any], subject: str, body: str,
                                   start: datetime, end: datetime, all_day: bool) -> None:
        """Move/retitle a planner's appointment (`mboc_upsertAppointment`), keeping job, task and resources.

        `appointment` is its current `appointment-incoming` payload (from `get_appointment`).
        """
        task = appointment.get("Task")
        job = task.get("Job") if isinstance(task, Mapping) else None
        job = job if isinstance(job, Mapping) else {}
        guid = appointment.get("AppointmentGuid") or appointment.get("appointmentGuid")
        self.run_import([Procedure("mboc_upsertAppointment", {
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

    def register_webhook(self, event: str, notification_url: str, name: str) -> str:
        """Subscribe `notification_url` to one appointment event; returns the hook id."""
        if event not in _CHANGE_TYPES:
            raise ValueError(f"unknown webhook event {event!r}")
        body = {"sourceApp": self._source_app, "name": name, "notificationURL": notification_url,
                "resource": "Appointments", "changeType": [_CHANGE_TYPES[event]]}
        data = self._call(f"register webhook {event}", self._hooks(event).create, body)
        hook_id = (data or {}).get("id") or (data or {}).get("Id")
        if not hook_id:
            raise PlanningError(502, f"register webhook {event}: the answer carried no hook id")
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
