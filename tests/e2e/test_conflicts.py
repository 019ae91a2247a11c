"""Both sides changed: a planner retitles an appointment while the technician edits its event in Outlook.

The connector's PATCH carries the changeKey of the last sync (`If-Match`); the Graph emulator answers 412
because the technician's edit moved it; the connector reads the event, sees a real edit (not Graph's own
spontaneous 412) and lets `CONFLICT_POLICY` decide, recording the conflict with both sides' versions.
The Outlook → planning direction is not subscribed here, so only the planning worker meets the conflict.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.local_stack import stack_factory
from devtools.planning_tenant import Tenant, appointment, email, setup_tenant
from tests.e2e.conftest import wait_until

TIMEOUT = 30


@pytest.fixture(scope="module", params=["board", "outlook"])
def tenant(request: pytest.FixtureRequest) -> Iterator[Tenant]:
    # One stack per policy, the first stopped before the second starts: two in-process dev hosts at once
    # would share the process's settings and service clients.
    with stack_factory() as start:
        tenant = setup_tenant(start(CONFLICT_POLICY=request.param), ["ALICE"])
        yield tenant
        tenant.close()


def board_subject(tenant: Tenant, guid: str) -> str:
    payload = tenant.stack.ds_api("GET", "/appointment", params={"startDate": "2000-01-01T00:00:00Z",
                                                                 "endDate": "2100-01-01T00:00:00Z"}).json()
    found: dict[str, Any] = next(a for a in payload if str(a.get("AppointmentGuid") or a.get("appointmentGuid")).lower()
                                 == guid)
    return str(found.get("Subject") or found.get("subject"))


def conflicts(tenant: Tenant, guid: str) -> list[str]:
    return [e.detail for e in tenant.stack.services.activity.history(guid) if e.action == "conflict"]


def test_a_planner_and_a_technician_editing_at_once_end_as_the_policy_says_with_the_conflict_logged(
        tenant: Tenant) -> None:
    stack = tenant.stack
    policy = stack.settings["CONFLICT_POLICY"]
    guid = tenant.create(appointment("Boiler service", ["ALICE"]))
    [event] = tenant.wait_events("ALICE", guid, 1, "the planner's event")
    edited = stack.graph_api("PATCH", f"/users/{email('ALICE')}/events/{event['id']}",
                             json={"subject": "Boiler service (gate code 4411)"})
    assert edited.status_code == 200, edited.text
    tenant.patch(guid, {"Subject": "Boiler service, hall B"})

    [detail] = wait_until(lambda: conflicts(tenant, guid), TIMEOUT, what="the conflict in the activity log")
    assert "planning board: subject" in detail and "Outlook: subject" in detail
    assert f"changeKey {event['changeKey']} → {edited.json()['changeKey']}" in detail
    assert f"CONFLICT_POLICY={policy}" in detail
    winner = "Boiler service, hall B" if policy == "board" else "Boiler service (gate code 4411)"
    tenant.wait_events("ALICE", guid, 1, f"the {policy}'s version in Outlook", check=lambda e: e["subject"] == winner)
    wait_until(lambda: board_subject(tenant, guid) == winner, TIMEOUT, what=f"the {policy}'s version on the board")
    wait_until(tenant.queue_idle, TIMEOUT, what="the planning queue to drain")
    writes = tenant.writes()
    assert [e["subject"] for e in tenant.events_of("ALICE", guid)] == [winner]
    assert board_subject(tenant, guid) == winner and len(conflicts(tenant, guid)) == 1
    assert tenant.writes() == writes  # settled: nothing goes back and forth
