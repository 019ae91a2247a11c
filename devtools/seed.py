"""The demo tenant `make run` seeds: people who exist both as Graph users and Dime.Scheduler resources.

Alice, Bob and Carol are field technicians with `ExchangeIntegrationEnabled` (tracked); Dave is a
resource without Exchange integration (never tracked). Their calendars hold a mix the connector must
handle: a normal meeting, a private appointment, an all-day training, a tentative item and a weekly
recurring stand-up; the planning board holds a few appointments. Dates are relative to today (UTC).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

DOMAIN = "contoso.example"
PEOPLE: tuple[tuple[str, str, bool], ...] = (
    ("ALICE", "Alice Field", True),
    ("BOB", "Bob Tech", True),
    ("CAROL", "Carol Repair", True),
    ("DAVE", "Dave Office", False),
)


def email(resource_no: str) -> str:
    return f"{resource_no.lower()}@{DOMAIN}"


def _graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def _event(subject: str, start: datetime, hours: float, **fields: Any) -> dict[str, Any]:
    return {"subject": subject, "start": _graph_time(start), "end": _graph_time(start + timedelta(hours=hours)),
            "body": {"contentType": "text", "content": f"{subject} (demo)"}, **fields}


def demo_graph(today: datetime) -> dict[str, Any]:
    day = today.replace(hour=0, minute=0, second=0, microsecond=0)
    users = [{"displayName": name, "userPrincipalName": email(no), "mail": email(no)} for no, name, _ in PEOPLE]
    monday = day - timedelta(days=day.weekday())
    events = {
        email("ALICE"): [
            _event("Customer kick-off", day + timedelta(days=1, hours=9), 1.5, showAs="busy"),
            _event("Dentist", day + timedelta(days=2, hours=14), 1, sensitivity="private", showAs="oof"),
            _event("Team stand-up", monday + timedelta(hours=8), 0.25, showAs="busy", recurrence={
                "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday", "wednesday", "friday"]},
                "range": {"type": "numbered", "startDate": monday.strftime("%Y-%m-%d"), "numberOfOccurrences": 12},
            }),
        ],
        email("BOB"): [
            {"subject": "Safety training", "isAllDay": True, "showAs": "busy",
             "start": _graph_time(day + timedelta(days=3)), "end": _graph_time(day + timedelta(days=4))},
            _event("Maybe: supplier visit", day + timedelta(days=1, hours=13), 2, showAs="tentative"),
        ],
        email("CAROL"): [
            _event("Lunch with the team", day + timedelta(days=1, hours=12), 1, showAs="free"),
        ],
    }
    return {"users": users, "events": events}


def _appointment(guid: str, subject: str, start: datetime, hours: float, resources: list[str],
                 category: str = "Maintenance") -> dict[str, Any]:
    return {
        "AppointmentGuid": guid,
        "Subject": subject,
        "Body": f"{subject}: see the work order.",
        "StartDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndDate": (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Importance": 0,
        "Task": {"TaskNo": "T-" + guid[-4:], "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1001"}},
        "Category": {"DisplayName": category, "Color": "#1F77B4"},
        "Assignments": [{"Resource": {"ResourceNo": r}} for r in resources],
    }


def demo_scheduler(today: datetime) -> dict[str, Any]:
    day = today.replace(hour=0, minute=0, second=0, microsecond=0)
    resources = [
        {"resourceNo": no, "displayName": name, "email": email(no), "exchangeIntegrationEnabled": tracked,
         "department": "Field service"}
        for no, name, tracked in PEOPLE
    ]
    categories = [
        {"name": "Maintenance", "displayName": "Maintenance", "color": "#1F77B4"},
        {"name": "Installation", "displayName": "Installation", "color": "#2CA02C"},
    ]
    appointments = [
        _appointment("6d1f3c2e-0000-4000-8000-000000000001", "Boiler maintenance, Main St 12",
                     day + timedelta(days=1, hours=13), 2, ["ALICE"]),
        _appointment("6d1f3c2e-0000-4000-8000-000000000002", "Heat pump installation",
                     day + timedelta(days=2, hours=8), 4, ["BOB", "CAROL"], category="Installation"),
        _appointment("6d1f3c2e-0000-4000-8000-000000000003", "Yearly inspection",
                     day + timedelta(days=4, hours=10), 1, ["DAVE"]),
    ]
    return {"resources": resources, "categories": categories, "appointments": appointments}


def seed_demo_tenant(graph_url: str, scheduler_url: str, today: datetime | None = None) -> str:
    """Seed both emulators (their control planes; no webhooks, no notifications) and say what was made."""
    now = today or datetime.now(UTC)
    graph = demo_graph(now)
    scheduler = demo_scheduler(now)
    httpx.post(f"{graph_url}/_emulator/seed", json=graph, timeout=30).raise_for_status()
    httpx.post(f"{scheduler_url}/_emulator/seed", json=scheduler, timeout=30).raise_for_status()
    events = sum(len(v) for v in graph["events"].values())
    return (f"{len(graph['users'])} Graph users with {events} calendar items, "
            f"{len(scheduler['resources'])} Dime.Scheduler resources "
            f"({sum(1 for _, _, t in PEOPLE if t)} with Exchange integration), "
            f"{len(scheduler['appointments'])} appointments")
