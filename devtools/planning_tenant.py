"""Helpers for the planning → Outlook end-to-end tests: a tenant of tracked resources, the planner's
hand, and a resource's Outlook calendar read through the Graph API (as the person would see it)."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from azure.core.exceptions import ResourceNotFoundError

from connector.stores.registry import ResourceRecord, Status
from connector.stores.repositories import CURSORS_TABLE, MAPPINGS_TABLE, SUBSCRIPTIONS_TABLE
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE, poison_queue_name
from connector.sync.status import TAG_PROPERTY_ID
from connector.workers.webhook_registration import ensure_scheduler_webhooks, notification_url
from devtools.local_stack import Stack, wait_until

DOMAIN = "contoso.example"
TAG_EXPAND = f"singleValueExtendedProperties($filter=id eq '{TAG_PROPERTY_ID}')"


def email(resource_no: str) -> str:
    return f"{resource_no.lower()}@{DOMAIN}"


def clean_storage(stack: Stack) -> None:
    """Azurite is shared by the whole session: start from empty connector tables and queues (and leave
    them so: the modules call it again when they finish, so no tracked resource outlives its stack)."""
    svc = stack.services
    svc.repositories.ensure()
    svc.work_queues.ensure()
    for name in (MAPPINGS_TABLE, SUBSCRIPTIONS_TABLE, CURSORS_TABLE):
        table = svc.storage.table(name)
        for entity in list(table.list_entities(select=["PartitionKey", "RowKey"])):
            with contextlib.suppress(ResourceNotFoundError):
                table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    for queue in (PLANNING_CHANGES_QUEUE, poison_queue_name(PLANNING_CHANGES_QUEUE), EXCHANGE_CHANGES_QUEUE):
        svc.storage.queue(queue).clear_messages()


@dataclass
class Tenant:
    """The tracked resources of one stack, the planner's hand and their calendars."""

    stack: Stack
    user_ids: dict[str, str]  # resource no -> Graph user id
    # One pooled client: a new httpx client per call costs an SSL context (~20 ms CPU), which
    # dominated the bulk scenario on two cores.
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=30))

    def close(self) -> None:
        clean_storage(self.stack)
        self.http.close()

    def planner(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"{self.stack.scheduler.url}/_emulator/planner/appointments{path}", **kwargs)

    def events(self, resource_no: str) -> list[dict[str, Any]]:
        """Every event in the resource's calendar, in UTC, with the connector's tag expanded."""
        response = self.http.get(f"{self.stack.graph.url}/v1.0/users/{email(resource_no)}/events",
                                 params={"$top": "1000", "$expand": TAG_EXPAND},
                                 headers={"Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"',
                                          "Authorization": "Bearer dev-graph-token"})
        response.raise_for_status()
        return list(response.json()["value"])

    def events_of(self, resource_no: str, guid: str) -> list[dict[str, Any]]:
        return [e for e in self.events(resource_no) if tag_of(e) == guid.lower()]

    def wait_events(self, resource_no: str, guid: str, count: int, what: str = "", timeout: float = 20,
                    check: Any = None) -> list[dict[str, Any]]:
        def done() -> list[dict[str, Any]] | None:
            found = self.events_of(resource_no, guid)
            if len(found) != count or (check is not None and not all(check(e) for e in found)):
                return None
            return found or [{}]

        result: list[dict[str, Any]] = wait_until(done, timeout=timeout, interval=0.2,
                                                  what=what or f"{count} event(s) of {guid} for {resource_no}")
        return [e for e in result if e]

    # -- the planner -----------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> str:
        response = self.planner("POST", "", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["AppointmentGuid"]).lower()

    def patch(self, guid: str, body: dict[str, Any]) -> dict[str, Any]:
        response = self.planner("PATCH", f"/{guid}", json=body)
        assert response.status_code == 200, response.text
        return dict(response.json())

    def delete(self, guid: str) -> None:
        response = self.planner("DELETE", f"/{guid}")
        assert response.status_code == 204, response.text

    def queue_idle(self) -> bool:
        """No planning change waiting or running (approximate count from the queue, then a settle check)."""
        return self.stack.services.work_queues.depth(PLANNING_CHANGES_QUEUE) == 0

    def writes(self) -> int:
        """Graph event writes so far (inner $batch requests are counted one by one by the emulator)."""
        stats = self.stack.stats("graph")
        return sum(n for key, n in stats.items() if key.split(" ")[0] in ("POST", "PATCH", "DELETE")
                   and "/events" in key)


def tag_of(event: dict[str, Any]) -> str | None:
    for prop in event.get("singleValueExtendedProperties") or ():
        if prop.get("id") == TAG_PROPERTY_ID:
            return str(prop.get("value")).lower()
    return None


def setup_tenant(stack: Stack, resource_nos: list[str], untracked: tuple[str, ...] = (), register: bool = True) -> Tenant:
    """Graph users and Dime.Scheduler resources for `resource_nos` (tracked), plus untracked resources;
    with `register`, the registry knows the tracked ones and the webhooks are registered (what
    sync_resources does, without its Graph subscriptions); without, run sync_resources."""
    clean_storage(stack)
    users = [{"displayName": no.title(), "userPrincipalName": email(no), "mail": email(no)} for no in resource_nos]
    seeded = stack.graph_control("POST", "/seed", json={"users": users})
    seeded.raise_for_status()
    user_ids = {u["userPrincipalName"].split("@")[0].upper(): u["id"] for u in seeded.json()["users"]}
    resources = [{"resourceNo": no, "displayName": no.title(), "email": email(no), "exchangeIntegrationEnabled": True}
                 for no in resource_nos]
    resources += [{"resourceNo": no, "displayName": no.title(), "email": email(no), "exchangeIntegrationEnabled": False}
                  for no in untracked]
    stack.ds_control("POST", "/seed", json={"resources": resources}).raise_for_status()
    if register:
        registry = stack.services.registry
        for no in resource_nos:
            registry.save(ResourceRecord(no, email(no), no.title(), user_ids[no], Status.TRACKED))
        ensure_scheduler_webhooks(stack.services)
    return Tenant(stack, user_ids)


def appointment(subject: str, resources: list[str], start: datetime | None = None, hours: float = 2,
                **fields: Any) -> dict[str, Any]:
    begin = start or (datetime.now(UTC) + timedelta(days=2)).replace(hour=9, minute=0, second=0, microsecond=0)
    return {
        "Subject": subject,
        "Body": f"{subject}: see the work order.",
        "StartDate": begin.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndDate": (begin + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Importance": 0,
        "Category": {"DisplayName": "Maintenance", "Color": "#1F77B4"},
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1001"}},
        "Assignments": [{"Resource": {"ResourceNo": r}} for r in resources],
        **fields,
    }


def replay_webhook(tenant: Tenant, event: str, payload: dict[str, Any]) -> int:
    """POST a Dime.Scheduler delivery to the connector exactly as the registered hook does."""
    stack = tenant.stack
    url = notification_url(stack.services, event).replace(stack.settings["CONNECTOR_PUBLIC_URL"], stack.app.url)
    return tenant.http.post(url, json=payload).status_code
