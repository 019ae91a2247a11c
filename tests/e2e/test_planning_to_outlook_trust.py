"""A webhook is a hint, not a command: a `deleted` notification for an appointment Dime.Scheduler still
has deletes nothing (whoever holds the webhook URL must not be able to empty calendars), while a real
deletion still reaches Outlook."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devtools.planning_tenant import Tenant, appointment, replay_webhook, setup_tenant
from tests.e2e.conftest import Stack, wait_until


@pytest.fixture(scope="module")
def tenant(start_stack: Callable[..., Stack]) -> Iterator[Tenant]:
    tenant = setup_tenant(start_stack(), ["ALICE"])
    yield tenant
    tenant.close()


def test_a_deleted_webhook_for_a_live_appointment_deletes_nothing(tenant: Tenant) -> None:
    guid = tenant.create(appointment("Boiler service", ["ALICE"]))
    [event] = tenant.wait_events("ALICE", guid, 1, "the planner's event")
    payload = tenant.stack.ds_api("GET", "/appointment", params={"startDate": "2000-01-01T00:00:00Z",
                                                                 "endDate": "2100-01-01T00:00:00Z"}).json()
    current = next(a for a in payload if str(a.get("AppointmentGuid") or a.get("appointmentGuid")).lower() == guid)
    assert replay_webhook(tenant, "deleted", current) == 200  # the secret is right: only the claim is false
    wait_until(tenant.queue_idle, 30, what="the planning queue to drain")
    assert [e["id"] for e in tenant.events_of("ALICE", guid)] == [event["id"]]
    # A real deletion on the board still empties the calendar.
    tenant.delete(guid)
    tenant.wait_events("ALICE", guid, 0, "the event gone after the real deletion")
