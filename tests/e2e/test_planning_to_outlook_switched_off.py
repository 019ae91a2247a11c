"""SYNC_TO_EXCHANGE_ENABLED=false: the planning → Outlook direction writes nothing at all."""

from __future__ import annotations

from collections.abc import Callable

from devtools.planning_tenant import appointment, setup_tenant
from tests.e2e.conftest import Stack, wait_until


def test_nothing_is_written_to_outlook_when_the_direction_is_off(start_stack: Callable[..., Stack]) -> None:
    stack = start_stack(SYNC_TO_EXCHANGE_ENABLED="false")
    tenant = setup_tenant(stack, ["ALICE", "BOB"])
    try:
        guid = tenant.create(appointment("Planned while switched off", ["ALICE", "BOB"]))
        tenant.patch(guid, {"Subject": "Edited while switched off"})
        other = tenant.create(appointment("Also planned", ["BOB"]))
        tenant.delete(other)
        # The webhooks are accepted and processed: each change is logged as skipped, and nothing else happens.
        wait_until(lambda: len([e for e in stack.services.activity.history(guid) if e.outcome == "skipped"]) >= 2,
                   what="the changes processed and logged as skipped")
        stack.run_function("poll_planning")
        wait_until(tenant.queue_idle, what="the planning queue drained")
        skipped = stack.services.activity.history(guid)
        assert skipped and all(e.outcome == "skipped" and "SYNC_TO_EXCHANGE_ENABLED" in e.detail for e in skipped)
        assert tenant.writes() == 0
        assert tenant.events("ALICE") == [] and tenant.events("BOB") == []
        assert stack.services.mappings.outlook_copies(guid) == {}
    finally:
        tenant.close()
