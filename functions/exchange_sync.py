"""Outlook → planning: the exchange-changes worker and the sync_resources, renew_subscriptions and reconcile_exchange timers (issue 3)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
