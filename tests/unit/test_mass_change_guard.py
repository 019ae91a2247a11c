"""The mass-change guard's thresholds (settings, validated at start-up) and the hold store's decision for
one calendar or board (`HoldStore.guard_items`), on the in-memory table the simulation uses (held to
Azurite by tests/sim/test_contract.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.config import ConfigError, MassChangeGuard, load_settings
from connector.stores.holds import HELD, RELEASED, HeldItem, HoldKind, HoldStore, is_hold_id
from connector.stores.repositories import TableRepository
from devtools.local_settings import local_values
from devtools.sim.storage import FakeTable

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)


def test_the_thresholds_default_to_a_fifth_of_the_resources_at_least_two_and_fifty_items() -> None:
    guard = load_settings(local_values()).mass_change
    assert guard == MassChangeGuard(untrack_percent=20, untrack_min=2, max_items=50)
    assert not guard.holds_untrack(1, 3)  # one resource is never a mass change
    assert guard.holds_untrack(2, 3) and guard.holds_untrack(2, 9)
    assert not guard.holds_untrack(2, 10)  # exactly 20 %: not more than the share
    assert guard.holds_untrack(3, 10)
    assert not guard.holds_removal(50) and guard.holds_removal(51)


def test_the_thresholds_are_settings() -> None:
    guard = load_settings({**local_values(), "MASS_CHANGE_UNTRACK_PERCENT": "50", "MASS_CHANGE_UNTRACK_MIN": "3",
                           "MASS_CHANGE_MAX_ITEMS": "5"}).mass_change
    assert not guard.holds_untrack(2, 3)  # 67 %, but fewer than 3
    assert guard.holds_untrack(3, 5) and not guard.holds_untrack(3, 6)
    assert guard.holds_removal(6) and not guard.holds_removal(5)
    assert not MassChangeGuard(untrack_percent=100).holds_untrack(10, 10)  # 100: the share rule is off


@pytest.mark.parametrize(("name", "value"), [("MASS_CHANGE_UNTRACK_PERCENT", "120"), ("MASS_CHANGE_UNTRACK_PERCENT", "x"),
                                             ("MASS_CHANGE_UNTRACK_MIN", "0"), ("MASS_CHANGE_MAX_ITEMS", "0")])
def test_a_bad_threshold_stops_the_app_naming_the_setting(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**local_values(), name: value})
    assert any(p.startswith(f"{name} is invalid") for p in caught.value.problems)


def store() -> HoldStore:
    return HoldStore(TableRepository(FakeTable("cursors")))  # type: ignore[arg-type]


def wanted(*keys: str) -> dict[str, HeldItem]:
    return {k: HeldItem(k, "", appointment_guid=k) for k in keys}


def decide(holds: HoldStore, keys: tuple[str, ...], complete: bool = True, limit: int = 2):  # type: ignore[no-untyped-def]
    return holds.guard_items(HoldKind.CALENDAR, "ALICE", "ALICE", wanted(*keys), limit, lambda n: f"Delete {n}", NOW,
                             complete)


def test_up_to_the_limit_is_allowed_more_is_held_with_one_row_each() -> None:
    holds = store()
    assert set(decide(holds, ("a", "b")).allowed) == {"a", "b"} and holds.held() == []
    decision = decide(holds, ("a", "b", "c"))
    assert decision.created and decision.held == {"a", "b", "c"} and decision.allowed == {}
    [hold] = holds.held()
    assert is_hold_id(hold.hold_id) and hold.items == 3 and hold.what == "Delete 3" and hold.since == NOW
    assert {k: i.state for k, i in holds.items(HoldKind.CALENDAR, "ALICE").items()} == dict.fromkeys("abc", HELD)


def test_while_a_hold_waits_every_removal_there_joins_it_and_it_resolves_when_none_is_left() -> None:
    holds = store()
    decide(holds, ("a", "b", "c"))
    one = decide(holds, ("d",), complete=False)  # a delta round: only its own removals, all held
    assert one.held == {"d"} and one.allowed == {} and holds.held()[0].items == 4
    shrunk = decide(holds, ("a", "b"))  # the complete list: c and d are no longer wanted
    assert shrunk.held == {"a", "b"} and holds.held()[0].items == 2
    assert set(holds.items(HoldKind.CALENDAR, "ALICE")) == {"a", "b"}
    resolved = decide(holds, ())
    assert resolved.resolved is not None and holds.held() == [] and holds.items(HoldKind.CALENDAR, "ALICE") == {}


def test_released_rows_are_allowances_and_rows_of_a_vanished_hold_are_dropped() -> None:
    holds = store()
    decide(holds, ("a", "b", "c"))
    [hold] = holds.held()
    holds.release_items(hold, "Ada")
    decision = decide(holds, ("a", "b", "c", "d"))
    assert decision.allowed == {"a": "Ada", "b": "Ada", "c": "Ada", "d": ""} and decision.held == set()
    assert {i.state for i in holds.items(HoldKind.CALENDAR, "ALICE").values()} == {RELEASED}
    holds.consume(HoldKind.CALENDAR, "ALICE", ["a", "b", "c"])
    assert holds.items(HoldKind.CALENDAR, "ALICE") == {}
    # Rows left by a hold that is gone (a crash between the rows and the hold row) are dropped.
    holds.put_item(HoldKind.CALENDAR, "ALICE", HeldItem("x", "0123456789abcdef"))
    assert set(decide(holds, ("x",)).allowed) == {"x"} and holds.items(HoldKind.CALENDAR, "ALICE") == {}
