"""A tenant on the benchmark stack: Graph users and Dime.Scheduler resources tracked through the real
`sync_resources` run (subscriptions with their clientState, the Dime.Scheduler webhooks, first full
rounds), the planner's hand, a person's Outlook, and the rows a long history leaves in `mappings`.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connector.model import Appointment
from connector.stores.mappings import MappingStore
from connector.stores.repositories import MAPPINGS_TABLE
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE
from connector.sync.status import OutlookCopy, event_span, hashes_of
from connector.sync.to_outlook import desired_event
from devtools.benchstack.stack import BenchStack, wait_until
from devtools.benchstack.tablewriter import upsert_rows
from devtools.scheduler_emulator.config import SchedulerEmulatorConfig
from devtools.scheduler_emulator.payloads import View, incoming
from devtools.scheduler_emulator.planner import create_appointment
from devtools.scheduler_emulator.store import Store

DOMAIN = "bench.example"
SOURCE_APP = "DEMO"  # in DS_WEBHOOK_SOURCE_APPS of the local settings: its appointments reach the hooks
WORK_QUEUES = (PLANNING_CHANGES_QUEUE, EXCHANGE_CHANGES_QUEUE)


def email(resource_no: str) -> str:
    return f"{resource_no.lower()}@{DOMAIN}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_time(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def appointment(subject: str, resources: list[str], start: datetime, hours: float = 1, **fields: Any) -> dict[str, Any]:
    """A planner's appointment in the `appointment-incoming` shape."""
    return {
        "Subject": subject, "Body": f"{subject}: see the work order.",
        "StartDate": iso(start), "EndDate": iso(start + timedelta(hours=hours)), "Importance": 0,
        "Category": {"DisplayName": "Maintenance", "Color": "#1F77B4"},
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": SOURCE_APP, "SourceType": "SVC", "JobNo": "J-1001"}},
        "Assignments": [{"Resource": {"ResourceNo": r}} for r in resources], **fields,
    }


def tomorrow(hour: int = 6) -> datetime:
    return (datetime.now(UTC) + timedelta(days=1)).replace(hour=hour, minute=0, second=0, microsecond=0)


@dataclass
class Tenant:
    stack: BenchStack
    resources: list[str]
    user_ids: dict[str, str]  # resource no -> Graph user id
    client_states: dict[str, tuple[str, str]]  # resource no -> (subscription id, clientState)

    # -- the planner -----------------------------------------------------------------------------
    def plan(self, body: dict[str, Any]) -> str:
        response = self.stack.ds_control("POST", "/planner/appointments", json=body)
        if response.status_code != 201:
            raise RuntimeError(f"planner create answered {response.status_code}: {response.text}")
        return str(response.json()["AppointmentGuid"]).lower()

    def replan(self, guid: str, changes: dict[str, Any]) -> dict[str, Any]:
        response = self.stack.ds_control("PATCH", f"/planner/appointments/{guid}", json=changes)
        if response.status_code != 200:
            raise RuntimeError(f"planner patch answered {response.status_code}: {response.text}")
        return dict(response.json())

    # -- a person's Outlook --------------------------------------------------------------------------
    def outlook(self, method: str, resource_no: str, path: str = "", **kwargs: Any) -> Any:
        headers = {"Prefer": 'IdType="ImmutableId"', **kwargs.pop("headers", {})}
        response = self.stack.graph_api(method, f"/users/{self.user_ids[resource_no]}/events{path}",
                                        headers=headers, **kwargs)
        if response.status_code >= 300:
            raise RuntimeError(f"Outlook {method} answered {response.status_code}: {response.text}")
        return response.json() if response.content else None

    # -- waiting ---------------------------------------------------------------------------------
    def settle(self, timeout: float = 600, quiet: float = 0.3) -> None:
        """Until no work is ready or running, twice `quiet` seconds apart (a function that just ended
        may have sent a message that is not visible yet). Delayed follow-ups are left for later."""
        def idle() -> bool:
            if not self.stack.queues_idle(*WORK_QUEUES):
                return False
            time.sleep(quiet)
            return self.stack.queues_idle(*WORK_QUEUES)

        wait_until(idle, timeout, 0.1, "the work queues to drain")


def track(stack: BenchStack, resource_nos: list[str], timeout: float = 600) -> Tenant:
    """Graph users and tracked Dime.Scheduler resources, then the real `sync_resources` run and the
    first full rounds it enqueues."""
    users = [{"displayName": no.title(), "userPrincipalName": email(no), "mail": email(no)} for no in resource_nos]
    seeded = stack.graph_control("POST", "/seed", json={"users": users})
    seeded.raise_for_status()
    by_upn = {u["userPrincipalName"]: u["id"] for u in seeded.json()["users"]}
    resources = [{"resourceNo": no, "displayName": no.title(), "email": email(no), "exchangeIntegrationEnabled": True}
                 for no in resource_nos]
    stack.ds_control("POST", "/seed", json={"resources": resources}).raise_for_status()
    if stack.run_function_and_wait("sync_resources", timeout=timeout) is None:
        raise TimeoutError("sync_resources did not finish")
    tenant = Tenant(stack, list(resource_nos), {no: by_upn[email(no)] for no in resource_nos}, {})
    tenant.settle(timeout)
    subscriptions = stack.graph_control("GET", "/subscriptions").json()["value"]
    by_user = {no: uid for no, uid in tenant.user_ids.items()}
    for no, uid in by_user.items():
        live = [s for s in subscriptions if s["mailbox"] == uid and not s["removed"] and not s["expired"]]
        if not live:
            raise RuntimeError(f"sync_resources made no subscription for {no}")
        tenant.client_states[no] = (live[-1]["id"], live[-1]["clientState"])
    return tenant


def quiet_graph(stack: BenchStack) -> None:
    """No automatic reauthorizationRequired (Graph sends it every few minutes per subscription): its
    renewals would add Graph and Table calls that belong to no measured change."""
    stack.graph_control("PATCH", "/config", json={"reauthorization_interval_seconds": None}).raise_for_status()


# -- history: the rows years of synced appointments leave behind ---------------------------------------
class _Recorder:
    """Stands in for the mappings `TableRepository`: records the upserts `MappingStore` makes, so the
    rows are exactly the connector's (whatever its key design) but written in batches."""

    def __init__(self) -> None:
        self.rows: dict[str, list[dict[str, Any]]] = defaultdict(list)

    def upsert(self, partition_key: str, row_key: str, data: dict[str, Any]) -> str:
        self.rows[partition_key].append({**data, "PartitionKey": partition_key, "RowKey": row_key})
        return ""

    def __getattr__(self, name: str) -> Any:
        raise NotImplementedError(f"seeding history needs only upserts, not {name}")


def _write_rows(stack: BenchStack, table_name: str, rows: dict[str, list[dict[str, Any]]]) -> int:
    """Big partitions in entity-group transactions (100 rows each, through the SDK); the many small ones
    (an appointment's two rows) as signed raw upserts, many in flight. Returns the requests made."""
    table = stack.services.storage.table(table_name)
    batches = [entities[i:i + 100] for entities in rows.values() if len(entities) >= 10
               for i in range(0, len(entities), 100)]
    singles = [e for entities in rows.values() if len(entities) < 10 for e in entities]
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda batch: table.submit_transaction([("upsert", e) for e in batch]), batches))
    upsert_rows(stack.azurite.connection_string, table_name, singles)
    return len(batches) + len(singles)


def seed_history(tenant: Tenant, count: int, first: int = 0, years_back: float = 2.0) -> int:
    """`count` appointments that ended long ago (before the sync window), each synced to one tracked
    resource: on the board (Dime.Scheduler) and in `mappings` (an `OutlookCopy` with its event id, the
    numeric id row; none in `window`: they aged out of it). Returns the number of table transactions written."""
    if count <= 0:
        return 0
    stack = tenant.stack
    base = datetime.now(UTC) - timedelta(days=365 * years_back)
    recorder = _Recorder()
    # Their rows in the `window` table were dropped by the polls that saw them age out long ago: not written.
    store = MappingStore(recorder, _Recorder())  # type: ignore[arg-type]
    appointments = []
    for n in range(first, first + count):
        guid = str(uuid.UUID(int=n + 1, version=4))
        resource = tenant.resources[n % len(tenant.resources)]
        start = base + timedelta(hours=n % 8000)
        appointments.append({**appointment(f"History {n}", [resource], start), "AppointmentGuid": guid})
    ids: dict[str, int] = {}
    for i in range(0, len(appointments), 2000):  # the emulator takes bodies up to 16 MB
        summary = stack.ds_control("POST", "/seed", json={"appointments": appointments[i:i + 2000]})
        summary.raise_for_status()
        ids.update({a["AppointmentGuid"].lower(): int(a["id"]) for a in summary.json()["appointments"]})
    # The hashes of what the connector wrote back then: the appointment as the emulator renders it.
    local = Store()
    view = View.of(SchedulerEmulatorConfig())
    for no in tenant.resources:
        local.upsert_resource({"resourceNo": no, "email": email(no)})
    for n, body in enumerate(appointments, start=first):
        guid = body["AppointmentGuid"].lower()
        resource = tenant.resources[n % len(tenant.resources)]
        rendered = Appointment.from_payload(incoming(local, create_appointment(local, body, "planner"), view))
        written = desired_event(rendered, "UTC")
        starts_at, ends_at = event_span(written)  # as the connector records them since spans exist
        store.save_outlook_copy(OutlookCopy(
            appointment_guid=guid, resource_no=resource, user_id=tenant.user_ids[resource],
            transaction_id=f"dsx-{guid}", event_id=f"AAMkHistory{n:08d}=",
            field_hashes=hashes_of(written), change_key=f"ck{n}", starts_at=starts_at, ends_at=ends_at))
        store.remember_appointment_id(guid, str(ids[guid]))
    return _write_rows(stack, MAPPINGS_TABLE, recorder.rows)


def chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]
