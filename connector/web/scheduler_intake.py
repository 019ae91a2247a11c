"""Dime.Scheduler appointment webhooks in: check the secret, validate the payload, turn it into a `PlanningChange`.

The connector registers one webhook per event type at
`{CONNECTOR_PUBLIC_URL}/api/scheduler/notifications?event=created|updated|deleted&secret=<secret>`
(see `connector/workers/webhook_registration.py`): Dime.Scheduler's payload does not say which event
it is, and it documents no request signing, so the URL carries both. The secret may also come in
the `X-Connector-Secret` header (for a gateway in front of the app). Everything here is pure and
SDK-free so the HTTP function stays light (no msgraph import on this path).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from connector.messages import PlanningChange
from connector.model import Appointment, InvalidPayload
from connector.web.jsonbody import BadJson, parse_json

MAX_BODY_BYTES = 1024 * 1024  # a long description is fine: only ids go on the queue
SECRET_HEADER = "x-connector-secret"
EVENTS: tuple[str, ...] = ("created", "updated", "deleted")


class Rejection(Exception):
    """The answer to a notification that is not accepted: HTTP status and a message safe to return."""

    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(f"{status}: {message}")


def secret_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison; an empty configured secret accepts nothing."""
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode(), given.encode())


def parse_notification(
    expected_secret: str,
    params: Mapping[str, str],
    headers: Mapping[str, str],
    body: bytes,
) -> PlanningChange:
    """The queue message for one webhook delivery, or `Rejection` (401, 413 or 400 with the reason).

    The secret is checked first, so an unauthenticated caller learns nothing about the payload rules.
    """
    given = params.get("secret") or _header(headers, SECRET_HEADER)
    if not secret_matches(expected_secret, given):
        raise Rejection(401, "unauthorized")
    if len(body) > MAX_BODY_BYTES:
        raise Rejection(413, f"the body is larger than {MAX_BODY_BYTES // 1024} KiB")
    event = (params.get("event") or "").strip().lower()
    if event not in EVENTS:
        raise Rejection(400, f"query parameter 'event' must be one of {', '.join(EVENTS)}, got {event!r}")
    try:
        data: Any = parse_json(body)
    except BadJson as exc:
        raise Rejection(400, str(exc)) from None
    try:
        appointment = Appointment.from_payload(data)
    except InvalidPayload as exc:
        raise Rejection(400, f"invalid appointment: {exc}") from None
    # Ids only, never the payload: a queue message holds 64 KiB and the worker reads the appointment anyway.
    return PlanningChange(appointment_guid=appointment.guid, event=event,
                          appointment_id=appointment.appointment_id or "")


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None
