"""Reading Dime.Scheduler as it really answers (issue 10): import envelopes, appointment flags and
all-day without a flag, the numeric appointment id, and the Source Apps setting."""

from __future__ import annotations

import json
from typing import Any

import pytest

from connector.config import ConfigError, load_settings
from connector.errors import PlanningError
from connector.gateways.planning import EXCHANGE_PARAMETERS, exchange_parameters, read_import_answer
from connector.messages import InvalidMessage, PlanningChange
from connector.model import Appointment, InvalidPayload
from devtools.local_settings import local_values

GUID = "04cd4567-1295-4226-86bd-5b1e99d7bab8"
SUCCESS = {"Success": True, "Message": "1 call(s)", "Status": 200, "Phrase": "OK",
           "Appointments": [{"Id": 1001, "Guid": GUID}]}


# --- import answers ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("body", [
    {"Content": json.dumps(SUCCESS), "ContentType": "application/json", "StatusCode": 200},  # .NET
    {"content": json.dumps(SUCCESS), "contentType": "application/json", "statusCode": 200},  # JS
    {"Content": SUCCESS, "ContentType": "application/json", "StatusCode": "200"},  # an object, a text status
])
def test_a_readable_success_in_every_envelope_variant(body: dict[str, Any]) -> None:
    result = read_import_answer(200, body)
    assert result.success and result.appointments == [{"Id": 1001, "Guid": GUID}]


def test_a_success_without_content_still_counts_by_its_status_code() -> None:
    assert read_import_answer(200, {"StatusCode": 200}).success  # what the .NET SDK checks


@pytest.mark.parametrize(("status", "inner", "transient"), [
    (200, 400, False), (200, 404, False), (200, 429, True), (200, 500, True), (200, 503, True),
    (400, 400, False), (503, 503, True),
])
def test_a_failure_is_an_error_with_the_inner_status(status: int, inner: int, transient: bool) -> None:
    failure = {"Error": "Bad Request", "Description": "parameter 'Start': 'x' is not a date"}
    body = {"Content": json.dumps(failure), "ContentType": "application/json", "StatusCode": inner}
    with pytest.raises(PlanningError) as caught:
        read_import_answer(status, body)
    assert caught.value.status == inner and caught.value.transient is transient
    assert "parameter 'Start'" in str(caught.value)


@pytest.mark.parametrize("body", [
    None,  # no body at all
    {},  # no envelope
    {"Content": json.dumps(SUCCESS)},  # no StatusCode
    {"Content": "not json", "StatusCode": "OK"},  # unreadable status
    "<html>gateway</html>",
])
def test_an_unreadable_answer_is_never_a_success(body: Any) -> None:
    with pytest.raises(PlanningError) as caught:
        read_import_answer(200, body)
    assert caught.value.transient  # retried: the write is idempotent, and nothing says it was applied


def test_a_200_envelope_saying_success_false_is_not_a_success() -> None:
    body = {"Content": json.dumps({"Success": False, "Message": "rejected"}), "StatusCode": 200}
    with pytest.raises(PlanningError):
        read_import_answer(200, body)


def test_the_exchange_procedures_get_exactly_the_sdk_model() -> None:
    item = {"Subject": "Dentist", "Location": "Room 1", "IsAllDayEvent": True, "ShowAs": 3, "Sensitivity": 1}
    values = exchange_parameters(GUID, "AAMk", "a@x.example", item)
    assert tuple(values) == EXCHANGE_PARAMETERS and "Location" not in values and "IsAllDayEvent" not in values
    unknown = exchange_parameters(GUID, "AAMk", "a@x.example", {})  # an item deleted in Outlook
    assert (unknown["Start"], unknown["End"], unknown["ShowAs"]) == (None, None, None)


# --- appointments ------------------------------------------------------------------------------------------
def payload(**extra: Any) -> dict[str, Any]:
    return {"id": 1001, "AppointmentGuid": GUID, "Subject": "x", "StartDate": "2026-01-05T00:00:00",
            "EndDate": "2026-01-06T00:00:00", **extra}


@pytest.mark.parametrize(("value", "expected"), [
    ("False", False), ("false", False), ("0", False), (False, False), (0, False),
    ("True", True), ("1", True), (True, True),
])
def test_flags_are_read_strictly(value: Any, expected: bool) -> None:
    appt = Appointment.from_payload(payload(CreatedByExchange=value, IsAllDayEvent=value))
    assert appt.created_by_exchange is expected and appt.all_day is expected


@pytest.mark.parametrize("value", ["yes", "Falsch", 2, [True]])
def test_a_flag_that_is_no_boolean_is_invalid(value: Any) -> None:
    with pytest.raises(InvalidPayload, match="CreatedByExchange"):
        Appointment.from_payload(payload(CreatedByExchange=value))


@pytest.mark.parametrize(("start", "end", "all_day"), [
    ("2026-01-05T00:00:00Z", "2026-01-06T00:00:00Z", True),  # one whole UTC day
    ("2026-01-05T00:00:00", "2026-01-08T00:00:00", True),  # three, no offset (UTC)
    ("2026-01-05T01:00:00+01:00", "2026-01-06T01:00:00+01:00", True),  # midnight UTC, written in +01:00
    ("2026-01-05T00:00:00+01:00", "2026-01-06T00:00:00+01:00", False),  # midnight in +01:00 is 23:00 UTC
    ("2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z", False),  # 24 hours, not whole days
    ("2026-01-05T00:00:00Z", "2026-01-05T00:00:00Z", False),  # zero length
])
def test_without_a_flag_all_day_means_whole_utc_days(start: str, end: str, all_day: bool) -> None:
    appt = Appointment.from_payload(payload(StartDate=start, EndDate=end))
    assert appt.all_day is all_day and appt.created_by_exchange is False


def test_the_flag_wins_over_the_span() -> None:
    assert Appointment.from_payload(payload(IsAllDayEvent="False")).all_day is False


@pytest.mark.parametrize(("value", "expected"), [(1001, "1001"), ("1001", "1001"), (None, None), ("", None),
                                                 (GUID, None), (True, None)])
def test_the_numeric_id(value: Any, expected: str | None) -> None:
    assert Appointment.from_payload(payload(id=value)).appointment_id == expected


def test_a_planning_change_carries_the_numeric_id() -> None:
    change = PlanningChange(appointment_guid=GUID, event="updated", appointment_id="1001")
    assert PlanningChange.from_json(change.to_json()).appointment_id == "1001"
    old = json.loads(change.to_json())
    del old["appointment_id"]  # a message queued before the id was carried
    assert PlanningChange.from_json(json.dumps(old)).appointment_id == ""
    with pytest.raises(InvalidMessage, match="appointment_id"):
        PlanningChange.from_json(json.dumps(old | {"appointment_id": GUID}))


# --- the Source Apps setting ------------------------------------------------------------------------------------
def test_webhook_source_apps_are_a_clean_list() -> None:
    settings = load_settings(local_values() | {"DS_WEBHOOK_SOURCE_APPS": " BC; crm ;;CRM; Business Central 365 "})
    assert settings.planning.webhook_source_apps == ("BC", "crm", "Business Central 365")
    assert load_settings(local_values() | {"DS_WEBHOOK_SOURCE_APPS": ""}).planning.webhook_source_apps == ()


def test_a_source_app_longer_than_30_characters_is_named() -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(local_values() | {"DS_WEBHOOK_SOURCE_APPS": "BC;" + "X" * 31})
    assert any(p.startswith("DS_WEBHOOK_SOURCE_APPS is invalid") for p in caught.value.problems)
