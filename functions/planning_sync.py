"""Planning → Outlook: the planning-changes worker and the poll_planning timer (issue 4)."""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()  # type: ignore[no-untyped-call]
