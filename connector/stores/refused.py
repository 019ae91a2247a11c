"""Planning changes refused for good, kept so the poll does not send them again and again (rows
`refused` / `<appointment guid>|<resource no>` in the `cursors` table).

A change Graph refuses as permanent (a 4xx for the event's content) is parked at once and shown on the
monitor. The poll would find the same difference five minutes later and send it again, to be parked
again, for ever. So the refusal is remembered with the appointment's version as it was read
(`LastModifiedDate`): while the appointment still has that version, the poll leaves that resource's
event alone. A planner's change gives it a new version and it is tried again (the webhook's change at
once, the poll's otherwise); the admin's Retry of the parked change works as ever. A row whose
appointment has moved on is dropped by the poll that sees it.
"""

from __future__ import annotations

from connector.model import Appointment
from connector.stores.repositories import TableRepository, safe_key

PARTITION = "refused"
GONE = "gone"  # the version of an appointment no longer on the board


def version_of(appointment: Appointment | None) -> str:
    """What a refusal is remembered against: the appointment's LastModifiedDate (`GONE` once deleted)."""
    if appointment is None:
        return GONE
    return appointment.last_modified or ""


def _key(guid: str, resource_no: str) -> str:
    return safe_key(f"{guid.lower()}|{resource_no}")


def remember(cursors: TableRepository, guid: str, resource_no: str, version: str) -> None:
    cursors.upsert(PARTITION, _key(guid, resource_no), {"Version": version})


def refused_version(cursors: TableRepository, guid: str, resource_no: str) -> str | None:
    """The version a change for this appointment and resource was refused at, or None."""
    row = cursors.get(PARTITION, _key(guid, resource_no))
    return None if row is None else str(row.data.get("Version") or "")


def forget(cursors: TableRepository, guid: str, resource_no: str) -> None:
    cursors.delete(PARTITION, _key(guid, resource_no))  # idempotent
