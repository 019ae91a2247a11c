"""Small builders for the emulator tests: import calls as the SDKs send them, and seed data."""

from __future__ import annotations

import json
from typing import Any

import httpx
from dimescheduler import Result

ALICE = {"resourceNo": "ALICE", "displayName": "Alice Smith", "email": "alice@contoso.com",
         "exchangeIntegrationEnabled": True, "department": "Field", "resourceType": "Technician",
         "sourceApp": "BC", "sourceType": "RES"}
BOB = {"ResourceNo": "BOB", "DisplayName": "Bob Jones", "Email": "Bob@Contoso.com",
       "ExchangeIntegrationEnabled": "False"}  # import-style keys and string values


def call(procedure: str, **params: str | None) -> dict[str, Any]:
    """One ``/import`` call; every value a string (or None), as the SDKs send them."""
    return {"StoredProcedureName": procedure, "ParameterNames": list(params), "ParameterValues": list(params.values())}


def exchange_item(guid: str, *, email: str = "alice@contoso.com", start: str = "2026-01-05 09:00:00Z",
                  end: str = "2026-01-05 10:00:00Z", subject: str = "Dentist", **extra: str | None) -> dict[str, Any]:
    params: dict[str, str | None] = dict(
        AppointmentGuid=guid, ExchangeId=f"AAMk-{guid[:8]}", ICalUId=f"ical-{guid[:8]}", Start=start, End=end,
        Subject=subject, Body="private", Importance="0", ResourceEmail=email, ShowAs="3", Sensitivity="1",
        Categories="Red;Blue", CreatedByExchange="True",
    )
    return call("mboc_upsertExchangeAppointment", **(params | extra))


def job_and_task(job: str = "J1", task: str = "T1") -> list[dict[str, Any]]:
    return [
        call("mboc_upsertJob", SourceApp="BC", SourceType="JOB", JobNo=job, ShortDescription="Job"),
        call("mboc_upsertTask", SourceApp="BC", SourceType="JOB", JobNo=job, TaskNo=task, ShortDescription="Task"),
    ]


def planning_appointment(guid: str, *, resource: str = "ALICE", start: str = "2026-01-05T13:00:00.000Z",
                         end: str = "2026-01-05T14:00:00.000Z", subject: str = "Install", **extra: str | None
                         ) -> dict[str, Any]:
    params: dict[str, str | None] = dict(
        AppointmentId="0", AppointmentGuid=guid, SourceApp="BC", SourceType="JOB", JobNo="J1", TaskNo="T1",
        ResourceNo=resource, Subject=subject, Body="Boiler", Start=start, End=end, SentFromBackOffice="True",
    )
    return call("mboc_upsertAppointment", **(params | extra))


def envelope(result: Result | httpx.Response) -> dict[str, Any]:
    """An import answer's body (PascalCase, as the default emulator and the .NET SDK spell it)."""
    body = result.json() if isinstance(result, httpx.Response) else (result.data or result.error)
    assert set(body) >= {"Content", "ContentType", "StatusCode"}, body
    assert body["ContentType"] == "application/json"
    return dict(body)


def content(result: Result | httpx.Response) -> dict[str, Any]:
    """The JSON inside an import answer's ``Content`` string: ``{Success, Message, Status, Phrase,
    Appointments}`` on success, ``{Error, Description}`` on failure."""
    body = envelope(result)
    parsed: dict[str, Any] = json.loads(body["Content"])
    if body["StatusCode"] == 200:
        assert parsed["Status"] == body["StatusCode"]
    else:
        assert set(parsed) == {"Error", "Description"}, parsed
    return parsed


def import_status(result: Result | httpx.Response) -> int:
    """The import's own status (inner ``StatusCode``): a failure may come with HTTP 200."""
    return int(envelope(result)["StatusCode"])


def imported(result: Result) -> bool:
    """Success as the .NET SDK counts it: HTTP 2xx *and* inner StatusCode 200."""
    return result.response.is_success and import_status(result) == 200


def numeric_id(ctl: httpx.Client, guid: str) -> str:
    """The appointment's numeric id (what ``GET /appointment/{id}`` takes by default)."""
    response = ctl.get(f"/appointments/{guid}")
    assert response.status_code == 200, response.text
    return str(response.json()["id"])


def seed_people(ctl: httpx.Client) -> None:
    ctl.post("/seed", json={"resources": [ALICE, BOB]}).raise_for_status()


def planner_body(**extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "Subject": "Service visit", "Body": "Replace filter",
        "StartDate": "2026-01-06T08:00:00Z", "EndDate": "2026-01-06T09:30:00Z",
        "Importance": 1, "Task": {"TaskNo": "T1", "Job": {"SourceApp": "BC", "SourceType": "JOB", "JobNo": "J1"}},
        "Category": {"DisplayName": "Confirmed", "Color": "#00FF00"},
        "Assignments": [{"Resource": {"ResourceNo": "ALICE"}}],
    }
    return body | extra
