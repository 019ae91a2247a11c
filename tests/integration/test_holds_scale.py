"""The untrack guard at scale and over a long history, against Azurite and both emulators (issue 19, hole 2).

The connector's core runs in the test process on real storage: the registry holds the tracked resources
as a previous run left them (missing once already), Dime.Scheduler no longer lists them, and
`sync_resources` decides. What an untrack would remove is what the poll would delete (the window's
events) and the board items; a release removes exactly that, never past events.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from azure.core.exceptions import ResourceNotFoundError

from connector.config import load_settings
from connector.services import Services
from connector.stores.holds import RELEASED, HoldKind
from connector.stores.registry import ResourceRecord, Status
from connector.stores.repositories import TABLES
from connector.stores.storage import PLANNING_CHANGES_QUEUE
from connector.sync.status import OutlookCopy
from connector.workers.holds import release_hold
from connector.workers.poll import INDEXED_ROW
from connector.workers.resources import sync_resources
from connector.workers.to_outlook import TRACKED_TTL_SECONDS, handle_planning_message
from devtools.serve import ServerThread
from tests.integration.conftest import stack_settings

NOW = datetime.now(UTC)
WHY = "the resource is no longer in Dime.Scheduler"


@pytest.fixture
def services(graph_emulator: ServerThread, scheduler_emulator: ServerThread,
             storage_connection_string: str) -> Iterator[Services]:
    """The connector's services on Azurite and the emulators, from empty tables and queues."""
    built = Services(load_settings(stack_settings(graph_emulator, scheduler_emulator, storage_connection_string,
                                                  "http://127.0.0.1:9")))
    _empty(built)
    built.repositories.cursors.upsert(*INDEXED_ROW, {"At": NOW.isoformat()})  # the poll reads the window table
    try:
        yield built
    finally:
        _empty(built)


def _empty(services: Services) -> None:
    services.repositories.ensure()
    services.work_queues.ensure()
    for name in TABLES:
        table = services.storage.table(name)
        for entity in list(table.list_entities(select=["PartitionKey", "RowKey"])):
            with contextlib.suppress(ResourceNotFoundError):
                table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    services.storage.queue(PLANNING_CHANGES_QUEUE).clear_messages()


def _missing_once(services: Services, resource_no: str, user_id: str = "") -> ResourceRecord:
    """A tracked resource the last run did not find: this run untracks it, unless the guard holds it."""
    record = ResourceRecord(resource_no, f"{resource_no.lower()}@contoso.example", resource_no.title(),
                            user_id or str(uuid.uuid4()), Status.TRACKED, missing_since=NOW - timedelta(minutes=20))
    services.registry.save(record)
    return record


def _wall(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S")


def _copy(services: Services, record: ResourceRecord, days: float, event_id: str | None = None) -> OutlookCopy:
    """The connector's event for a planner appointment `days` from now, as the planning worker records it."""
    guid = str(uuid.uuid4())
    start = NOW + timedelta(days=days)
    copy = OutlookCopy(guid, record.resource_no, record.user_id, f"dsx-{guid}", event_id or f"ev-{guid}",
                       starts_at=_wall(start), ends_at=_wall(start + timedelta(hours=1)))
    services.mappings.save_outlook_copy(copy)
    return copy


async def test_three_hundred_resources_untracked_at_once_make_one_hold_that_lists_them_all(services: Services) -> None:
    records = [_missing_once(services, f"R{n:04d}") for n in range(300)]
    first = await sync_resources(services)
    assert first.errors == [] and sorted(first.held) == [r.resource_no for r in records]
    [hold] = services.holds.held()
    assert hold.kind == HoldKind.UNTRACK and len(hold.entries) == 300
    assert sorted(hold.resource_nos) == [r.resource_no for r in records]
    assert {e.user_id for e in hold.entries} == {r.user_id for r in records}
    [shown] = services.monitor.holds()
    assert len(shown["resources"]) == 300 and "300 of 300 tracked resources" in shown["what"]
    assert all(services.registry.get(r.resource_no).status == Status.TRACKED for r in records)  # type: ignore[union-attr]

    again = await sync_resources(services)  # the next run keeps running, and keeps the same hold
    assert again.errors == [] and len(again.held) == 300
    assert [h.hold_id for h in services.holds.held()] == [hold.hold_id]


async def test_a_long_history_does_not_hold_an_untrack_whose_window_is_small(services: Services) -> None:
    record = _missing_once(services, "VETERAN")
    limit = services.settings.mass_change.max_items
    for n in range(limit + 10):  # years of past work: each event ended long before the window
        _copy(services, record, -400 - n)
    for n in range(3):
        _copy(services, record, 1 + n)
    report = await sync_resources(services)
    assert report.held == [] and services.holds.held() == []
    assert report.untracked == ["VETERAN"]
    assert services.registry.get("VETERAN").status == Status.UNTRACKED  # type: ignore[union-attr]


async def test_releasing_a_held_untrack_deletes_the_windows_events_and_leaves_past_ones(
        services: Services, graph_emulator: ServerThread) -> None:
    people = {no: str(uuid.uuid5(uuid.NAMESPACE_DNS, f"{no}.scale")) for no in ("PAST1", "PAST2")}
    seeded = httpx.post(f"{graph_emulator.url}/_emulator/seed", json={"users": [
        {"id": user_id, "displayName": no.title(), "userPrincipalName": f"{no.lower()}@contoso.example",
         "mail": f"{no.lower()}@contoso.example"} for no, user_id in people.items()]}, timeout=10)
    assert seeded.status_code == 200, seeded.text
    past: list[OutlookCopy] = []
    window: list[OutlookCopy] = []
    for no, user_id in people.items():
        record = _missing_once(services, no, user_id)
        for days, into in ((-300, past), (-200, past), (-120, past), (2, window), (3, window)):
            event = (await services.exchange.create_event(user_id, {
                "subject": "Job", "start": {"dateTime": _wall(NOW + timedelta(days=days)), "timeZone": "UTC"},
                "end": {"dateTime": _wall(NOW + timedelta(days=days, hours=1)), "timeZone": "UTC"}}))
            into.append(_copy(services, record, days, str(event["id"])))
    await sync_resources(services)  # two of two resources at once: held
    [hold] = services.holds.held()

    outcome = await release_hold(services, hold, "Ada Admin")
    assert "2 resource(s) untracked" in outcome["outcome"]
    assert f"{len(window)} of the planner's event(s)" in outcome["outcome"]
    allowed = {key for no in people for key, item in services.holds.items(HoldKind.CALENDAR, no).items()
               if item.state == RELEASED}
    assert allowed == {c.appointment_guid for c in window}
    await _work_off_planning_changes(services)
    for copy in window:
        assert await services.exchange.get_event(copy.user_id, str(copy.event_id)) is None, "a window event stayed"
    for copy in past:
        assert await services.exchange.get_event(copy.user_id, str(copy.event_id)) is not None, "a past event went"


async def _work_off_planning_changes(services: Services) -> None:
    """Run the planning → Outlook worker on what the release enqueued (sent with a delay of a few seconds)."""
    queue = services.storage.queue(PLANNING_CHANGES_QUEUE)
    deadline = datetime.now(UTC) + timedelta(seconds=TRACKED_TTL_SECONDS + 30)
    while datetime.now(UTC) < deadline:
        messages = list(queue.receive_messages(messages_per_page=32, visibility_timeout=60))
        for message in messages:
            await handle_planning_message(services, message.content)
            queue.delete_message(message)
        if not messages and services.work_queues.depth(PLANNING_CHANGES_QUEUE) == 0:
            return
        if not messages:
            await asyncio.sleep(0.5)
    raise AssertionError("the planning-changes queue did not drain")
