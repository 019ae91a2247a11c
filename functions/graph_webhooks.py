"""Graph webhooks: graph_notifications and graph_lifecycle (issue 3)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
