"""Dime.Scheduler emulator: the API the connector uses, its webhooks, and a control plane.

Follows ``../shared/reference/dimescheduler.md`` and the Power Platform Swagger beside it. Start it with
``python -m devtools.scheduler_emulator --host 127.0.0.1 --port 7073`` or, in tests, with
``ServerThread(create_app(SchedulerEmulatorConfig(...))).start()``. Point the official SDK at it with
:func:`devtools.scheduler_emulator.sdk.emulator_transport`.
"""

from .app import create_app
from .config import SchedulerEmulatorConfig

__all__ = ["SchedulerEmulatorConfig", "create_app"]
