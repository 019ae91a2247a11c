"""Shared by the simulation's tests: the connector's own log lines are off (a run logs every activity entry)."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.disable(logging.CRITICAL)
