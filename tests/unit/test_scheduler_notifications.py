"""Dime.Scheduler webhook intake: the secret, the size limit, the event name and the payload."""

from __future__ import annotations

import json

import pytest

from connector.messages import PlanningChange
from connector.web.scheduler_intake import MAX_BODY_BYTES, Rejection, parse_notification, secret_matches

SECRET = "s3cret-value"
PASCAL = {
    "AppointmentGuid": "6D1F3C2E-0000-4000-8000-000000000001",
    "Subject": "Boiler maintenance",
    "StartDate": "2026-01-05T09:00:00Z",
    "EndDate": "2026-01-05T11:00:00Z",
    "Assignments": [{"Resource": {"ResourceNo": "ALICE"}}],
}
CAMEL = {"appointmentGuid": "6d1f3c2e-0000-4000-8000-000000000002", "subject": "Flat", "start": "2026-01-05T09:00:00Z",
         "end": "2026-01-05T10:00:00Z", "resourceNo": "BOB"}


def parse(params: dict[str, str], body: object, headers: dict[str, str] | None = None) -> PlanningChange:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return parse_notification(SECRET, params, headers or {}, raw)


def test_a_valid_delivery_becomes_a_planning_change_that_carries_ids_only() -> None:
    """The worker reads the appointment itself: a snapshot could be forged, and a long description would
    not fit in a queue message."""
    change = parse({"event": "updated", "secret": SECRET}, PASCAL | {"Description": "x" * 200_000})
    assert change.event == "updated" and change.appointment_guid == "6d1f3c2e-0000-4000-8000-000000000001"
    assert change.appointment is None and change.attempt == 0
    assert len(change.to_json()) < 2_000
    assert PlanningChange.from_json(change.to_json()) == change


def test_the_flat_camel_case_shape_is_accepted_and_the_header_carries_the_secret() -> None:
    change = parse({"event": "Created"}, CAMEL, {"X-Connector-Secret": SECRET})
    assert change.event == "created" and change.appointment_guid == CAMEL["appointmentGuid"]


@pytest.mark.parametrize("params,headers", [
    ({"event": "created"}, {}),
    ({"event": "created", "secret": "wrong"}, {}),
    ({"event": "created", "secret": SECRET.upper()}, {}),
    ({"event": "created"}, {"x-connector-secret": "s3cret-valu"}),
])
def test_a_missing_or_wrong_secret_is_401_without_detail(params: dict[str, str], headers: dict[str, str]) -> None:
    with pytest.raises(Rejection) as caught:
        parse(params, {"not": "even an appointment"}, headers)
    assert caught.value.status == 401 and caught.value.message == "unauthorized"


def test_an_empty_configured_secret_accepts_nothing() -> None:
    assert not secret_matches("", "")
    assert not secret_matches("", "anything")
    assert secret_matches("a", "a") and not secret_matches("a", None)


def test_an_unknown_event_is_400() -> None:
    with pytest.raises(Rejection) as caught:
        parse({"event": "moved", "secret": SECRET}, PASCAL)
    assert caught.value.status == 400 and "event" in caught.value.message


def test_a_body_over_the_limit_is_413() -> None:
    with pytest.raises(Rejection) as caught:
        parse({"event": "created", "secret": SECRET}, b" " * (MAX_BODY_BYTES + 1))
    assert caught.value.status == 413


@pytest.mark.parametrize("body,field", [
    (b"{not json", "not JSON"),
    ([1, 2], "JSON object"),
    ({**PASCAL, "AppointmentGuid": ""}, "AppointmentGuid"),
    ({**PASCAL, "StartDate": "tomorrow"}, "StartDate"),
    ({**PASCAL, "EndDate": "2026-01-05T08:00:00Z"}, "EndDate"),
    ({**PASCAL, "Assignments": [{"Resource": {}}]}, "Assignments[0].Resource.ResourceNo"),
])
def test_an_invalid_payload_is_400_naming_the_field(body: object, field: str) -> None:
    with pytest.raises(Rejection) as caught:
        parse({"event": "created", "secret": SECRET}, body)
    assert caught.value.status == 400 and field in caught.value.message


def test_the_webhook_path_never_imports_the_sdks() -> None:
    import subprocess
    import sys

    code = ("import sys, functions.scheduler_webhooks; "
            "print(sorted(m for m in ('msgraph', 'kiota_http', 'dimescheduler') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=__import__("pathlib").Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == "[]"
