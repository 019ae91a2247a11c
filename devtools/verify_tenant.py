"""`python -m devtools.verify_tenant`: settle, on a real tenant, the behaviours the documentation leaves open.

Pointed at Microsoft Graph and Dime.Scheduler through the same settings as the app (local.settings.json
or the environment), it makes the fewest harmless calls that tell which variant the real services use,
prints each with what the connector will do about it, and removes what it created:

- in the test mailbox (`--mailbox`): one event and one weekly series of three occurrences, deleted at
  the end;
- on the board (`--resource`, a resource with that mailbox's email): one Outlook-style item imported
  with `mboc_upsertExchangeAppointment` and removed with `mboc_deleteExchangeAppointment`, and one
  webhook registered under the Source App `VERIFYTENANT` (no appointment has it) and deleted again.

Webhook routing by Source App is not probed here (it needs a delivery to a reachable URL): the
README says how to check it on the deployed app. Nothing else is touched. Run it before the first
deployment's go-live, with a test mailbox and a test resource: the answers go into the README's
"Real-world behaviour" table. Every variant it can report is a knob of the emulators, and
`tests/integration/test_verify_tenant.py` runs it against each.

    .venv/bin/python -m devtools.verify_tenant --mailbox test.tech@contoso.com --resource TEST01 [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from kiota_abstractions.method import Method

from connector.config import Settings, load_settings
from connector.gateways.graph import IMMUTABLE_ID, UTC_TIMEZONE, ExchangeGateway
from connector.gateways.planning import PlanningGateway, Procedure, exchange_parameters
from connector.model import graph_time

SOURCE_APP = "VERIFYTENANT"
MARK = "verify-tenant"


@dataclass
class Finding:
    point: str
    variant: str  # what the service did: one of the emulator knob's values, or "unknown"
    connector: str  # what the connector does about it
    detail: str = ""


@dataclass
class Report:
    findings: list[Finding] = field(default_factory=list)
    cleanup: list[str] = field(default_factory=list)

    def add(self, point: str, variant: str, connector: str, detail: str = "") -> None:
        self.findings.append(Finding(point, variant, connector, detail))

    def variant(self, point: str) -> str:
        return next(f.variant for f in self.findings if f.point == point)


# -- Microsoft Graph -----------------------------------------------------------------------------------
async def _raw_get(graph: ExchangeGateway, user_id: str, event_id: str, prefer: tuple[str, ...]) -> dict[str, Any]:
    """An event read with exactly these Prefer headers (the gateway itself always asks for text bodies)."""
    url = f"{graph.base_url}/users/{user_id}/events/{event_id}"
    return await graph._send(Method.GET, url=url, prefer=prefer) or {}


async def _delta_round(graph: ExchangeGateway, user_id: str, start: datetime, end: datetime,
                       link: str | None = None) -> tuple[list[dict[str, Any]], str]:
    page = await (graph.delta_page(user_id, link=link) if link else graph.delta_page(user_id, start=start, end=end))
    items = list(page.items)
    while page.next_link:
        page = await graph.delta_page(user_id, link=page.next_link)
        items += page.items
    return items, page.delta_link or ""


async def verify_graph(graph: ExchangeGateway, mailbox: str, report: Report) -> None:
    user = await graph.get_user(mailbox)
    if user is None:
        raise SystemExit(f"Graph has no user {mailbox!r}: give --mailbox a test mailbox of the tenant")
    user_id = str(user["id"])
    zone = await graph.mailbox_time_zone(user_id)
    report.add("mailbox time zone", zone or "unknown", "all-day items are read and written in this zone "
               "(refreshed at each sync_resources)", "needs MailboxSettings.Read" if zone is None else "")
    monday = datetime.combine(datetime.now(UTC).date() + timedelta(days=7 - datetime.now(UTC).weekday() + 7),
                              time(10), UTC)
    created: list[str] = []
    try:
        single = await graph.create_event(user_id, {
            "subject": f"{MARK} single", "body": {"contentType": "text", "content": "line one\nline two"},
            "start": graph_time(monday), "end": graph_time(monday + timedelta(hours=1)),
            "transactionId": f"{MARK}-{uuid.uuid4().hex}", "showAs": "free"})
        created.append(str(single["id"]))
        plain = await _raw_get(graph, user_id, str(single["id"]), (IMMUTABLE_ID, UTC_TIMEZONE))
        asked = await _raw_get(graph, user_id, str(single["id"]),
                               (IMMUTABLE_ID, UTC_TIMEZONE, 'outlook.body-content-type="text"'))
        plain_type = str((plain.get("body") or {}).get("contentType", "")).lower()
        asked_type = str((asked.get("body") or {}).get("contentType", "")).lower()
        report.add("body without the text Prefer", plain_type or "unknown",
                   "every read asks for text; an HTML body is made readable anyway")
        report.add("body with the text Prefer honoured", "true" if asked_type == "text" else "false",
                   "an HTML body is turned into readable text (model.html_to_text)")

        series = await graph.create_event(user_id, {
            "subject": f"{MARK} series", "body": {"contentType": "text", "content": ""}, "showAs": "free",
            "start": graph_time(monday + timedelta(hours=2)), "end": graph_time(monday + timedelta(hours=3)),
            "recurrence": {"pattern": {"type": "weekly", "interval": 1, "daysOfWeek": [monday.strftime("%A").lower()]},
                           "range": {"type": "numbered", "startDate": monday.date().isoformat(),
                                     "numberOfOccurrences": 3}}})
        created.insert(0, str(series["id"]))
        window = (monday - timedelta(days=1), monday + timedelta(days=22))
        items, link = await _delta_round(graph, user_id, *window)
        ours = [i for i in items if i.get("seriesMasterId") == series["id"] or i.get("id") == series["id"]]
        occurrences = [i for i in ours if i.get("type") == "occurrence"]
        master_listed = any(i.get("type") == "seriesMaster" for i in ours)
        stub = bool(occurrences) and all("subject" not in i for i in occurrences)
        report.add("delta occurrences", "stub" if stub else ("full" if occurrences else "unknown"),
                   "stubs (when they come) are completed from their master, one read per series per round",
                   f"{len(occurrences)} occurrence(s) listed; series master listed: {master_listed}")
        instances = await graph.instances(user_id, str(series["id"]), *window)
        if len(instances) < 2:
            report.add("deleted occurrence signal", "unknown", "the next full round converges in any case",
                       f"only {len(instances)} instance(s) found")
            return
        gone = str(instances[1]["id"])
        await graph.delete_event(user_id, gone)
        changes, _ = await _delta_round(graph, user_id, *window, link=link)
        removed = any(i.get("id") == gone and "@removed" in i for i in changes)
        master_again = any(i.get("id") == series["id"] for i in changes)
        report.add("deleted occurrence signal", "removed" if removed else "none",
                   "the round that brings the master re-reads its instances and removes what is gone; "
                   "the next full round (≤ 24 h) is the backstop",
                   f"series master in the same round: {master_again}")
    finally:
        for event_id in created:
            await graph.delete_event(user_id, event_id)
            report.cleanup.append(f"Graph event {event_id} deleted")


# -- Dime.Scheduler -------------------------------------------------------------------------------------
def _import_answer(planning: PlanningGateway, procedure: Procedure) -> dict[str, Any]:
    result = planning.client.imports.run([procedure.to_json()])
    data = result.data if result.ok else result.error
    return data if isinstance(data, dict) else {}


def verify_planning(planning: PlanningGateway, resource_no: str, mailbox: str, notification_url: str,
                    report: Report) -> None:
    resources = {str(r.get("resourceNo") or r.get("ResourceNo")): r for r in planning.list_resources()}
    if resource_no not in resources:
        raise SystemExit(f"Dime.Scheduler has no resource {resource_no!r}: give --resource a test resource")
    email = str(resources[resource_no].get("email") or resources[resource_no].get("Email") or mailbox)
    guid = str(uuid.uuid4())
    start = datetime.combine(datetime.now(UTC).date() + timedelta(days=15), time(9), UTC)
    item = {"Start": start, "End": start + timedelta(hours=1), "Subject": f"{MARK} board item", "Body": f"{MARK} notes",
            "ShowAs": 3, "Sensitivity": 1, "Importance": 0, "Categories": []}
    answer = _import_answer(planning, Procedure("mboc_upsertExchangeAppointment",
                                                exchange_parameters(guid, f"{MARK}-{guid}", email, item)))
    content = next((v for k, v in answer.items() if k.lower() == "content"), None)
    casing = "pascal" if "Content" in answer else ("camel" if "content" in answer else "unknown")
    report.add("import envelope casing", casing, "both casings are read; only a readable success counts")
    report.add("import content as object", "true" if isinstance(content, dict) else "false",
               "a JSON string and an object are both read")
    try:
        listed = planning.appointments(start - timedelta(hours=1), start + timedelta(hours=2), [resource_no])
        ours = next((a for a in listed if str(a.get("AppointmentGuid") or a.get("appointmentGuid") or "").lower()
                     == guid), None)
        if ours is None:
            report.add("GET /appointment/{id} takes the GUID", "unknown", "the numeric id is kept and used",
                       "the test item was not found in the planning window")
            return
        start_text = str(ours.get("StartDate") or ours.get("startDate") or ours.get("start") or "")
        dates = "utc_z" if start_text.endswith("Z") else (
            "offset" if len(start_text) > 19 and start_text[19:20] in "+-" else "naive")
        report.add("payload dates", dates, "a missing offset is read as UTC; Z and ±hh:mm are converted",
                   f"StartDate {start_text!r}")
        # A blank Body: does the upsert clear it, or take it as "not given" (the item keeps its notes)?
        planning.upsert_exchange_appointment(guid, f"{MARK}-{guid}", email, dict(item, Body=""))
        again = planning.appointments(start - timedelta(hours=1), start + timedelta(hours=2), [resource_no])
        mine = next((a for a in again if str(a.get("AppointmentGuid") or a.get("appointmentGuid") or "").lower()
                     == guid), {})
        body = str(mine.get("Body") or mine.get("body") or "")
        report.add("a blank parameter", "keeps" if body.strip() else "clears",
                   "an emptied Subject, Body or Categories replaces the board item (delete + upsert, same GUID)",
                   f"Body after a blank: {body!r}")
        by_guid = planning.client.appointments.get_by_id(guid)
        accepted = bool(by_guid.ok and isinstance(by_guid.data, dict) and str(
            by_guid.data.get("AppointmentGuid") or by_guid.data.get("appointmentGuid") or "").lower() == guid)
        report.add("GET /appointment/{id} takes the GUID", "id_or_guid" if accepted else "id",
                   "the numeric id is kept in messages and mappings and used first",
                   f"numeric id {ours.get('id')}")
    finally:
        planning.delete_exchange_appointment(guid, f"{MARK}-{guid}", email, item)
        report.cleanup.append(f"board item {guid} removed")
    hooks = planning._hooks("AppointmentUpdated")
    created = hooks.create({"sourceApp": SOURCE_APP, "name": f"{MARK} probe", "notificationURL": notification_url,
                            "resource": "Appointments", "changeType": ["Update"]})
    body_id = created.data.get("id") if isinstance(created.data, dict) else None
    location = created.response.headers.get("location") or ""
    report.add("webhook registration answer", "body" if body_id else ("location" if location else "unknown"),
               "the hook id is read from the body or the Location header")
    hook_id = str(body_id or location.rstrip("/").rsplit("/", 1)[-1])
    if hook_id:
        planning.delete_webhook("AppointmentUpdated", hook_id)
        report.cleanup.append(f"webhook {hook_id} ({SOURCE_APP}) deleted")


# -- running it --------------------------------------------------------------------------------------------
async def verify(settings: Settings, mailbox: str, resource_no: str) -> Report:
    report = Report()
    await verify_graph(ExchangeGateway(settings.graph), mailbox, report)
    planning = PlanningGateway(settings.planning)
    try:
        notification_url = f"{settings.scheduler_notification_url}?event=updated&secret=verify-tenant-probe"
        await asyncio.to_thread(verify_planning, planning, resource_no, mailbox, notification_url, report)
    finally:
        planning.close()
    return report


def app_settings(path: Path = Path("local.settings.json")) -> dict[str, str]:
    """The app's own settings: local.settings.json `Values`, with the environment winning (as the host does)."""
    values = json.loads(path.read_text())["Values"] if path.is_file() else {}
    return {**{k: str(v) for k, v in values.items()}, **os.environ}


def render(report: Report) -> str:
    width = max(len(f.point) for f in report.findings)
    lines = [f"{f.point:<{width}}  {f.variant:<10}  {f.connector}" + (f"  ({f.detail})" if f.detail else "")
             for f in report.findings]
    return "\n".join(["What the real services do, and what the connector does about it:", *lines,
                      "Cleaned up: " + "; ".join(report.cleanup)])


def main(argv: list[str] | None = None, run: Callable[..., Awaitable[Report]] = verify) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mailbox", required=True, help="a test mailbox (UPN) the probes may write to")
    parser.add_argument("--resource", required=True, help="a test Dime.Scheduler resource (its number)")
    parser.add_argument("--json", action="store_true", help="one JSON document instead of the table")
    args = parser.parse_args(argv)
    report = asyncio.run(run(load_settings(app_settings()), args.mailbox, args.resource))
    print(json.dumps(asdict(report)) if args.json else render(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
