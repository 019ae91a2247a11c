"""Small pieces the hand-written situations share: a planner's appointment tomorrow, what a calendar shows."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from devtools.sim.clock import EPOCH
from devtools.sim.planning import BoardAppointment
from devtools.sim.world import Sim


def new_appointment(subject: str, resources: list[str], hours: int = 10, **fields: Any) -> BoardAppointment:
    """An hour-long appointment tomorrow at `hours` (UTC), not yet on the board."""
    start = EPOCH + timedelta(days=1, hours=hours - EPOCH.hour)
    return BoardAppointment(str(uuid.uuid4()), subject, start, start + timedelta(hours=1), resources, **fields)


def event_subjects(sim: Sim, resource_no: str) -> list[str]:
    """The subjects in the resource's calendar, sorted."""
    return sorted(str(e.get("subject")) for e in sim.graph.mailboxes[sim.user_of(resource_no)].events.values())
