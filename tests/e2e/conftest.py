"""The local stack fixture for the end-to-end tests (the stack itself lives in `devtools.local_stack`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from devtools.local_stack import Stack, stack_factory, wait_until

__all__ = ["Stack", "start_stack", "wait_until"]


@pytest.fixture(scope="module")
def start_stack() -> Iterator[Callable[..., Stack]]:
    """`start_stack(graph_config=..., scheduler_config=..., **settings)`, one Azurite per module."""
    with stack_factory() as start:
        yield start
