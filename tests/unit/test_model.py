"""Parsing of the two sides' payloads into the domain model."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connector.model import Appointment, CalendarEvent, Importance, InvalidPayload, Sensitivity, ShowAs, html_to_text

PASCAL = {
    "id": 17, "AppointmentGuid": "04CD4567-1295-4226-86BD-5B1E99D7BAB8", "Subject": "Boiler", "Body": "Main St",
    "StartDate": "2026-01-05T09:00:00Z", "EndDate": "2026-01-05T10:30:00Z", "Importance": 1,
    "Task": {"TaskNo": "T1", "Job": {"SourceApp": "CRM", "SourceType": "SVC", "JobNo": "J1"}},
    "Category": {"DisplayName": "Maintenance", "Color": "#112233"}, "TimeMarker": {"Name": "Urgent"},
    "Assignments": [{"ResourceId": 2, "Resource": {"ResourceNo": "BOB", "Email": "bob@x.example"}},
                    {"ResourceId": 1, "Resource": {"ResourceNo": "ALICE"}}],
}
CAMEL = {
    "appointmentGuid": "04cd4567-1295-4226-86bd-5b1e99d7bab8", "sourceApp": "CRM", "sourceType": "SVC",
    "jobNo": "J1", "taskNo": "T1", "resourceNo": "ALICE", "subject": "Boiler", "body": "Main St",
    "start": "2026-01-05T09:00:00Z", "end": "2026-01-05T10:30:00Z",
}


def test_pascal_case_webhook_payload() -> None:
    appt = Appointment.from_payload(PASCAL)
    assert appt.guid == "04cd4567-1295-4226-86bd-5b1e99d7bab8"  # GUIDs compare case-insensitively
    assert appt.start == datetime(2026, 1, 5, 9, tzinfo=UTC) and appt.end == datetime(2026, 1, 5, 10, 30, tzinfo=UTC)
    assert appt.importance is Importance.HIGH
    assert (appt.category, appt.time_marker, appt.job_no, appt.task_no) == ("Maintenance", "Urgent", "J1", "T1")
    assert appt.resource_nos == {"ALICE", "BOB"}
    assert appt.appointment_id == "17"


def test_flat_camel_case_payload_means_the_same_appointment() -> None:
    camel, pascal = Appointment.from_payload(CAMEL), Appointment.from_payload(PASCAL)
    assert (camel.guid, camel.subject, camel.start, camel.end, camel.job_no) == (
        pascal.guid, pascal.subject, pascal.start, pascal.end, pascal.job_no)
    assert camel.resource_nos == {"ALICE"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"AppointmentGuid": ""}, "AppointmentGuid: required"),
        ({"StartDate": "tomorrow"}, "StartDate"),
        ({"EndDate": "2026-01-05T08:00:00Z"}, "is before StartDate"),
        ({"Assignments": [{"Resource": {}}]}, "Assignments[0].Resource.ResourceNo"),
        ({"Assignments": "ALICE"}, "Assignments: expected a list"),
    ],
)
def test_invalid_appointments_say_which_field(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidPayload, match=message.replace("[", r"\[").replace("]", r"\]")):
        Appointment.from_payload({**PASCAL, **change})


def test_non_object_payload_is_rejected() -> None:
    with pytest.raises(InvalidPayload):
        Appointment.from_payload(["not", "an", "object"])


def test_dotnet_style_dates_and_offsets_are_utc() -> None:
    appt = Appointment.from_payload({**PASCAL, "StartDate": "2026-01-05 09:00:00Z", "EndDate": "2026-01-05T11:00:00+01:00"})
    assert appt.start == datetime(2026, 1, 5, 9, tzinfo=UTC) and appt.end == datetime(2026, 1, 5, 10, tzinfo=UTC)


def test_graph_event_with_seven_digit_fractions_and_html_body() -> None:
    event = CalendarEvent.from_graph({
        "id": "AAkALg==", "changeKey": "ck1", "subject": "Dentist", "showAs": "oof", "sensitivity": "private",
        "importance": "high", "categories": ["Red"], "isAllDay": False, "type": "occurrence",
        "start": {"dateTime": "2026-01-05T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-01-05T10:00:00.0000000", "timeZone": "Europe/Brussels"},
        "body": {"contentType": "html", "content": "<html><head><style>p{}</style></head>"
                                                   "<body><p>Line&nbsp;1</p>Two</body></html>"},
        "location": {"displayName": "Clinic"},
    })
    assert event.start == datetime(2026, 1, 5, 9, tzinfo=UTC)
    assert event.end == datetime(2026, 1, 5, 9, tzinfo=UTC)  # 10:00 Brussels in winter is 09:00 UTC
    assert (event.show_as, event.sensitivity, event.importance) == (ShowAs.OOF, Sensitivity.PRIVATE, Importance.HIGH)
    assert event.body == "Line 1\nTwo" and event.location == "Clinic"  # &nbsp; reads as a space


def test_removed_marker_from_delta() -> None:
    event = CalendarEvent.from_graph({"@odata.type": "#microsoft.graph.event", "id": "x", "@removed": {"reason": "deleted"}})
    assert event.removed and event.id == "x"


def test_planning_codes_follow_dime_scheduler() -> None:
    assert [s.planning_code for s in ShowAs] == [1, 2, 3, 4, 5, 6]
    assert [s.planning_code for s in Sensitivity] == [1, 2, 3, 4]
    assert (Importance.NORMAL.planning_code, Importance.HIGH.planning_code, Importance.LOW.planning_code) == (0, 1, 2)


def test_html_to_text_keeps_words_and_breaks() -> None:
    assert html_to_text("a<br>b<div>c</div>&amp;") == "a\nb\nc\n&"
