"""The local stack fixture for the end-to-end tests (the stack itself lives in `devtools.local_stack`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devtools.local_stack import Stack, stack_factory, wait_until
from devtools.scheduler_emulator import SchedulerEmulatorConfig

__all__ = ["Stack", "start_stack", "wait_until"]


@pytest.fixture(scope="module")
def start_stack() -> Iterator[Callable[..., Stack]]:
    """`start_stack(graph_config=..., scheduler_config=..., **settings)`, one Azurite per module."""
    with stack_factory() as start:
        yield start


@pytest.fixture
def knobs(stack: Stack) -> Iterator[Callable[..., None]]:
    """Set Dime.Scheduler emulator knobs for one test; they go back to the defaults afterwards (a module
    whose tests set Graph emulator knobs defines its own)."""
    changed: set[str] = set()

    def set_knobs(**values: Any) -> None:
        changed.update(values)
        stack.ds_control("PATCH", "/config", json=values).raise_for_status()

    yield set_knobs
    defaults = SchedulerEmulatorConfig().as_json()
    if changed:
        stack.ds_control("PATCH", "/config", json={k: defaults[k] for k in changed}).raise_for_status()
