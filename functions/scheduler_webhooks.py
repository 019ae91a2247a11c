"""Dime.Scheduler webhooks: scheduler_notifications (issue 4)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
