"""Reading a planner's appointment for a decision that may delete its events: "gone" must be confirmed.

`PlanningGateway.get_appointment` reads by each id the appointment is known by (`read_by_refs`): a
payload, None when each answered 404, or `UnclearAnswer` when an answer was not clearly about this
appointment. Neither a 404 alone (a route that takes only numeric ids answers 404 for a GUID, and an
`id` may be wrong) nor an unclear answer proves the appointment is gone. Where its events were written
is known (`known_span` of its copies), a window read over that span decides: the appointment is there
(its payload is used) or it is not (gone, or moved away from its events: either way they go). Without
a span only the 404s of every known id say "gone", and an unclear answer stays an error: retried, and
on the monitor if it persists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from connector.errors import UnclearAnswer
from connector.sync.status import OutlookCopy, known_span

if TYPE_CHECKING:
    from connector.gateways.planning import PlanningGateway


def read_appointment(planning: PlanningGateway, guid: str, appointment_id: str | None,
                     copies: Iterable[OutlookCopy]) -> dict[str, Any] | None:
    """The appointment's payload, or None when its absence is confirmed (see the module docstring)."""
    span = known_span(copies)
    try:
        found = planning.get_appointment(guid, appointment_id)
    except UnclearAnswer:
        if span is None:
            raise
        found = None
    if found is not None or span is None:
        return found
    for data in planning.appointments(span.start, span.end, list(span.resource_nos)):
        if isinstance(data, Mapping) and _guid_of(data) == _plain(guid):
            return dict(data)
    return None


def _plain(guid: str) -> str:
    return guid.strip().strip("{}").lower()


def _guid_of(data: Mapping[str, Any]) -> str:
    for key, value in data.items():
        if isinstance(key, str) and key.casefold() == "appointmentguid":
            return _plain(str(value or ""))
    return ""
