"""POST /import through the official SDK: envelope, value formats, errors, atomicity, procedures."""

from __future__ import annotations

import uuid

import httpx
import pytest
from dimescheduler import DimeSchedulerClient

from .builders import (
    call,
    content,
    exchange_item,
    import_status,
    imported,
    job_and_task,
    numeric_id,
    planning_appointment,
    seed_people,
)

G1 = "6f1c2b1e-0000-4000-8000-000000000001"
G2 = "6f1c2b1e-0000-4000-8000-000000000002"
G3 = "6f1c2b1e-0000-4000-8000-000000000003"


def stored(ctl: httpx.Client, guid: str) -> dict:
    response = ctl.get(f"/appointments/{guid}")
    assert response.status_code == 200, response.text
    return response.json()


def procedures(ctl: httpx.Client) -> dict[str, int]:
    return ctl.get("/stats").json()["procedures"]


def test_success_envelope_lists_touched_appointments(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    result = sdk.imports.run([exchange_item(G1), exchange_item(G2, subject="Lunch")])
    assert result.response.status_code == 200
    assert set(result.data) == {"Content", "ContentType", "StatusCode"}
    assert result.data["StatusCode"] == 200
    body = content(result)
    assert body["Success"] is True and body["Phrase"] == "OK" and body["Message"]
    assert [a["Guid"] for a in body["Appointments"]] == [G1, G2]
    assert all(isinstance(a["Id"], int) for a in body["Appointments"])
    assert body["Appointments"][0]["Id"] != body["Appointments"][1]["Id"]


def test_single_call_object_is_accepted(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    result = sdk.imports.run(exchange_item(G1))
    assert result.ok and content(result)["Appointments"][0]["Guid"] == G1


@pytest.mark.parametrize(
    ("start", "end"),
    [
        ("2026-01-05 09:00:00Z", "2026-01-05 10:00:00Z"),  # .NET
        ("2026-01-05T09:00:00.000Z", "2026-01-05T10:00:00.000Z"),  # JS toISOString()
        ("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z"),
        ("2026-01-05T09:00:00+00:00", "2026-01-05T10:00:00+00:00"),
        ("2026-01-05T10:00:00+01:00", "2026-01-05T11:00:00+01:00"),  # converted to UTC
    ],
)
def test_date_formats_are_read_as_utc(sdk: DimeSchedulerClient, ctl: httpx.Client, start: str, end: str) -> None:
    seed_people(ctl)
    assert imported(sdk.imports.run([exchange_item(G1, start=start, end=end)]))
    item = stored(ctl, G1)
    assert (item["StartDate"], item["EndDate"]) == ("2026-01-05T09:00:00Z", "2026-01-05T10:00:00Z")


@pytest.mark.parametrize(("text", "expected"), [("True", True), ("false", False), ("1", True), ("0", False)])
def test_boolean_forms(sdk: DimeSchedulerClient, ctl: httpx.Client, text: str, expected: bool) -> None:
    seed_people(ctl)
    item = exchange_item(G1)
    _set(item, "CreatedByExchange", text)
    assert imported(sdk.imports.run([item]))
    assert stored(ctl, G1)["CreatedByExchange"] is expected


def test_lists_and_enums(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    item = exchange_item(G1)
    item["ParameterValues"][item["ParameterNames"].index("Categories")] = "Red; Blue;;Green"
    assert imported(sdk.imports.run([item]))
    got = stored(ctl, G1)
    assert got["Categories"] == ["Red", "Blue", "Green"]
    assert (got["ShowAs"], got["Sensitivity"], got["Importance"]) == (3, 1, 0)


def _error_message(result: object) -> str:
    assert import_status(result) == 400  # type: ignore[arg-type]
    body = content(result)  # type: ignore[arg-type]
    assert body["Error"] == "Bad Request"
    return str(body["Description"])


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (lambda c: c["ParameterValues"].pop(), ["mboc_upsertExchangeAppointment", "ParameterNames", "ParameterValues"]),
        (lambda c: c.update(StoredProcedureName="mboc_nope"), ["mboc_nope", "unknown stored procedure"]),
        (lambda c: _set(c, "Start", None), ["mboc_upsertExchangeAppointment", "Start", "missing"]),
        (lambda c: _set(c, "Start", "05/01/2026 09:00"), ["Start", "05/01/2026 09:00", "ISO 8601"]),
        (lambda c: _set(c, "Start", "2026-01-05T09:00:00"), ["Start", "time zone"]),
        (lambda c: _set(c, "CreatedByExchange", "yes"), ["CreatedByExchange", "'yes'", "boolean"]),
        (lambda c: _set(c, "ShowAs", "7"), ["ShowAs", "'7'", "range"]),
        (lambda c: _set(c, "Sensitivity", "Private"), ["Sensitivity", "'Private'", "integer"]),
        (lambda c: _set(c, "AppointmentGuid", "not-a-guid"), ["AppointmentGuid", "GUID"]),
        (lambda c: _set(c, "ResourceEmail", "nobody@contoso.com"), ["ResourceEmail", "nobody@contoso.com"]),
        (lambda c: _set(c, "End", "2026-01-05T08:00:00Z"), ["End", "before"]),
        (lambda c: _add(c, "Colour", "red"), ["unknown parameter", "Colour"]),
        (lambda c: _add(c, "subject", "twice"), ["given twice"]),
        (lambda c: _set(c, "Importance", 1), ["Importance", "must be a string"]),
    ],
)
def test_bad_calls_are_400_naming_procedure_parameter_and_value(
    sdk: DimeSchedulerClient, ctl: httpx.Client, mutate: object, expected: list[str]
) -> None:
    seed_people(ctl)
    bad = exchange_item(G1)
    mutate(bad)  # type: ignore[operator]
    result = sdk.imports.run([bad])
    assert import_status(result) == 400
    message = _error_message(result)
    for fragment in expected:
        assert fragment in message, (fragment, message)
    # HTTP 200 (the default): the SDK's Result sees no error; only the envelope tells.
    assert result.response.status_code == 200 and result.to_error() is None


def _set(c: dict, name: str, value: object) -> None:
    c["ParameterValues"][c["ParameterNames"].index(name)] = value


def _add(c: dict, name: str, value: str) -> None:
    c["ParameterNames"].append(name)
    c["ParameterValues"].append(value)


@pytest.mark.parametrize(
    "body",
    [b"{not json", b"", b'"a string"', b"[1, 2]", b'[{"StoredProcedureName": 5}]',
     b'[{"StoredProcedureName": "mboc_upsertCategory", "ParameterNames": "x", "ParameterValues": []}]'],
)
def test_malformed_bodies_are_400(api: httpx.Client, body: bytes) -> None:
    response = api.post("/import", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and import_status(response) == 400  # a failure may come as HTTP 200
    assert content(response)["Description"]
    assert response.json()["message"] == content(response)["Description"]


def test_import_is_atomic_without_import_batch_partial(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    ctl.patch("/config", json={"import_batch_partial": False}).raise_for_status()
    before = procedures(ctl)
    bad = exchange_item(G2)
    _set(bad, "Start", "tomorrow")
    result = sdk.imports.run([
        call("mboc_upsertResource", ResourceNo="CAROL", Email="carol@contoso.com"),
        exchange_item(G1),
        bad,
    ])
    assert "call #3" in _error_message(result)
    assert ctl.get("/appointments").json() == []
    assert "CAROL" not in [r["resourceNo"] for r in sdk.resources.get_all().data]
    assert procedures(ctl) == before


def test_a_failing_batch_keeps_the_calls_before_it_by_default(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    bad = exchange_item(G2)
    _set(bad, "Start", "tomorrow")
    result = sdk.imports.run([exchange_item(G1), bad, exchange_item(G3)])
    assert "call #2" in _error_message(result)  # the answer is the failure all the same
    assert [a["AppointmentGuid"].lower() for a in ctl.get("/appointments").json()] == [G1.lower()]


def test_exchange_upsert_is_keyed_by_guid_and_keeps_origin(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    first = content(sdk.imports.run([exchange_item(G1, email="ALICE@contoso.COM")]))["Appointments"][0]
    assert imported(sdk.imports.run([exchange_item(G1, subject="Dentist (moved)", start="2026-01-05 11:00:00Z",
                                          end="2026-01-05 12:00:00Z")]))
    items = ctl.get("/appointments").json()
    assert len(items) == 1
    item = items[0]
    assert item["id"] == first["Id"] and item["AppointmentGuid"] == G1
    assert item["Subject"] == "Dentist (moved)" and item["StartDate"] == "2026-01-05T11:00:00Z"
    assert item["CreatedByExchange"] is True and item["ExchangeId"] == f"AAMk-{G1[:8]}"
    assert item["ICalUId"] == f"ical-{G1[:8]}" and item["Origin"] == "exchange"
    assert [a["Resource"]["ResourceNo"] for a in item["Assignments"]] == ["ALICE"]
    assert item["LastModifiedUser"] == "api" and item["LastModifiedDate"].endswith("Z")
    # Upsert by AppointmentId alone updates the same item; the Id must exist.
    by_id = exchange_item(G1, subject="by id")
    _set(by_id, "AppointmentGuid", None)
    _add(by_id, "AppointmentId", str(first["Id"]))
    assert imported(sdk.imports.run([by_id]))
    assert stored(ctl, G1)["Subject"] == "by id"
    _set(by_id, "AppointmentId", "999999")
    assert "999999" in _error_message(sdk.imports.run([by_id]))


def test_exchange_item_moves_to_the_resource_of_its_email(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    assert imported(sdk.imports.run([exchange_item(G1)]))
    assert imported(sdk.imports.run([exchange_item(G1, email="bob@contoso.com")]))
    assert stored(ctl, G1)["ResourceNos"] == ["BOB"]


def test_a_write_that_changes_nothing_keeps_last_modified(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    assert imported(sdk.imports.run([exchange_item(G1)]))
    before = stored(ctl, G1)
    again = sdk.imports.run([exchange_item(G1)])
    assert again.ok and content(again)["Appointments"][0]["Guid"] == G1
    assert stored(ctl, G1)["LastModifiedDate"] == before["LastModifiedDate"]
    stats = ctl.get("/stats").json()
    assert stats["procedures"]["mboc_upsertExchangeAppointment"] == 2
    assert stats["proceduresChanged"]["mboc_upsertExchangeAppointment"] == 1
    assert imported(sdk.imports.run([exchange_item(G1, subject="changed")]))
    assert stored(ctl, G1)["LastModifiedDate"] > before["LastModifiedDate"]


def test_exchange_delete_by_guid_by_exchange_id_and_unknown(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    assert imported(sdk.imports.run([exchange_item(G1), exchange_item(G2)]))
    assert imported(sdk.imports.run([call("mboc_deleteExchangeAppointment", AppointmentGuid=G1)]))
    gone = sdk.imports.run([call("mboc_deleteExchangeAppointment", ExchangeId=f"AAMk-{G2[:8]}",
                                 ResourceEmail="alice@contoso.com")])
    assert content(gone)["Appointments"] == [{"Id": content(gone)["Appointments"][0]["Id"], "Guid": G2}]
    assert ctl.get("/appointments").json() == []
    # Idempotent: deleting what is not there succeeds and changes nothing.
    again = sdk.imports.run([call("mboc_deleteExchangeAppointment", AppointmentGuid=G1)])
    assert again.ok and content(again)["Appointments"] == []
    missing = sdk.imports.run([call("mboc_deleteExchangeAppointment", Subject="x")])
    assert "ExchangeId" in _error_message(missing)


def test_exchange_procedures_may_not_touch_planned_appointments(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    assert imported(sdk.imports.run([*job_and_task(), planning_appointment(G1)]))
    for attempt in (exchange_item(G1), call("mboc_deleteExchangeAppointment", AppointmentGuid=G1)):
        message = _error_message(sdk.imports.run([attempt]))
        assert "planned on the board" in message
    ctl.patch("/config", json={"allow_exchange_procedures_on_planner_items": True}).raise_for_status()
    assert imported(sdk.imports.run([exchange_item(G1)]))


def test_upsert_appointment_needs_an_existing_task(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    assert "upsert the job and task first" in _error_message(sdk.imports.run([planning_appointment(G1)]))
    result = sdk.imports.run([*job_and_task(), planning_appointment(G1, Importance="2", Locked="1")])
    assert result.ok
    got = stored(ctl, G1)
    assert got["Task"] == {"TaskNo": "T1", "Job": {"SourceApp": "BC", "SourceType": "JOB", "JobNo": "J1"}}
    assert got["Importance"] == 2 and got["Locked"] is True and got["Origin"] == "planning"
    assert "CreatedByExchange" not in sdk.appointments.get_by_id(numeric_id(ctl, G1)).data


def test_upsert_appointment_resources_indicators_and_errors(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    setup = [
        *job_and_task(),
        call("mboc_upsertCategory", CategoryName="CONF", DisplayName="Confirmed", CategoryHexColor="#00AA00"),
        call("mboc_upsertTimeMarker", Name="Travel", Color="#112233"),
        planning_appointment(G1),
    ]
    assert imported(sdk.imports.run(setup))
    number = numeric_id(ctl, G1)  # an update names the appointment by its id (without one, the call inserts)
    assert imported(sdk.imports.run([planning_appointment(G1, resource="BOB", Category="conf", TimeMarker="Travel",
                                                          AppointmentId=number)]))
    got = stored(ctl, G1)
    assert got["ResourceNos"] == ["ALICE", "BOB"]  # added: ReplaceResource not set
    assert got["Category"] == {"DisplayName": "Confirmed", "Color": "#00AA00"}
    assert got["TimeMarker"] == {"Name": "Travel", "Color": "#112233"}
    assert imported(sdk.imports.run([planning_appointment(G1, resource="BOB", ReplaceResource="True",
                                                          AppointmentId=number)]))
    assert stored(ctl, G1)["ResourceNos"] == ["BOB"]
    for bad, fragment in [
        (planning_appointment(G1, Category="Nope", AppointmentId=number), "unknown category"),
        (planning_appointment(G1, TimeMarker="Nope", AppointmentId=number), "unknown time marker"),
        (planning_appointment(G1, resource="ZED", AppointmentId=number), "ZED"),
        (planning_appointment(G1, Importance="3", AppointmentId=number), "Importance"),
        (call("mboc_upsertCategory", CategoryName="X", CategoryHexColor="green"), "#RRGGBB"),
        (call("mboc_upsertAppointment", AppointmentGuid=G1, SourceApp="B" * 31, SourceType="JOB",
              Start="2026-01-05T13:00:00Z", End="2026-01-05T14:00:00Z"), "at most 30"),
    ]:
        assert fragment in _error_message(sdk.imports.run([bad])), fragment


def test_assignment_procedures_and_delete(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    assert imported(sdk.imports.run([*job_and_task(), planning_appointment(G1)]))
    assert imported(sdk.imports.run([call("mboc_addAppointmentResource", AppointmentGuid=G1, ResourceNo="bob")]))
    assert stored(ctl, G1)["ResourceNos"] == ["ALICE", "BOB"]
    assert imported(sdk.imports.run([call("mboc_deleteAppointmentResource", AppointmentGuid=G1, ResourceNo="ALICE")]))
    assert stored(ctl, G1)["ResourceNos"] == ["BOB"]
    unknown = str(uuid.uuid4())
    assert "unknown appointment" in _error_message(
        sdk.imports.run([call("mboc_addAppointmentResource", AppointmentGuid=unknown, ResourceNo="BOB")]))
    assert imported(sdk.imports.run([call("mboc_deleteAppointmentResource", AppointmentGuid=unknown, ResourceNo="BOB")]))
    delete = call("mboc_deleteAppointment", AppointmentId="0", AppointmentGuid=G1, SourceApp="BC", SourceType="JOB",
                  ResourceNo="BOB", SentFromBackOffice="1")
    assert imported(sdk.imports.run([delete]))
    assert ctl.get(f"/appointments/{G1}").status_code == 404
    assert imported(sdk.imports.run([delete]))  # idempotent


def test_master_data_procedures(sdk: DimeSchedulerClient) -> None:
    result = sdk.imports.run([
        call("mboc_upsertResource", ResourceNo="R1", DisplayName="Room 1", Email="room1@contoso.com",
             ExchangeIntegrationEnabled="True", Department="Sales", ResourceType="Room", BulkCapacity="2.5",
             TeamSort="3", InServiceFrom="2025-01-01T00:00:00Z"),
        call("mboc_upsertResource", ResourceNo="r1", Phone="123"),  # merges into R1 (case-insensitive)
        call("mboc_upsertCategory", CategoryName="OOO", DisplayName="Out of office", CategoryHexColor="#7f61ff"),
        call("mboc_upsertTimeMarker", Name="Underway", Color="#99AA22"),
    ])
    assert result.ok, result.error
    (resource,) = sdk.resources.get_all().data
    assert resource["resourceNo"] == "R1" and resource["phone"] == "123" and resource["id"] == 1
    assert resource["exchangeIntegrationEnabled"] is True and resource["bulkCapacity"] == 2.5
    assert resource["teamSort"] == 3 and resource["inServiceFrom"] == "2025-01-01T00:00:00Z"
    assert resource["resourceType"] == "Room" and resource["freeBit1"] is False and resource["freeText1"] is None
    bad = sdk.imports.run([call("mboc_upsertResource", ResourceNo="R2", Email="not-an-email")])
    assert "Email" in _error_message(bad)
    assert "ResourceNo" in _error_message(sdk.imports.run([call("mboc_upsertResource", DisplayName="x")]))


def test_new_exchange_item_without_ids_gets_a_guid(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    item = exchange_item(G1)
    _set(item, "AppointmentGuid", None)
    first = content(sdk.imports.run([item]))["Appointments"][0]
    assert str(uuid.UUID(first["Guid"])) == first["Guid"]
    # Without a GUID, the same ExchangeId makes a second item (harsh default: the connector keeps the GUID)...
    second = content(sdk.imports.run([item]))["Appointments"][0]
    assert second["Guid"] != first["Guid"]
    # ...unless configured to match on ExchangeId.
    ctl.patch("/config", json={"exchange_upsert_matches_exchange_id": True}).raise_for_status()
    _set(item, "Subject", "matched")
    third = content(sdk.imports.run([item]))["Appointments"][0]
    assert third["Guid"] in (first["Guid"], second["Guid"])
    assert stored(ctl, third["Guid"])["Subject"] == "matched"


def test_lenient_knobs(sdk: DimeSchedulerClient, ctl: httpx.Client) -> None:
    seed_people(ctl)
    naive = exchange_item(G1, start="2026-01-05T09:00:00", end="2026-01-05T10:00:00")
    typed = exchange_item(G2)
    _set(typed, "Importance", 1)
    unknown = exchange_item(G2)
    _add(unknown, "Colour", "red")
    for body in (naive, typed, unknown):
        assert import_status(sdk.imports.run([body])) == 400
    ctl.patch("/config", json={"accept_naive_dates": True, "strict_value_types": False,
                               "reject_unknown_parameters": False}).raise_for_status()
    assert imported(sdk.imports.run([naive, typed, unknown]))
    assert stored(ctl, G1)["StartDate"] == "2026-01-05T09:00:00Z"  # naive read as UTC
    assert stored(ctl, G2)["Importance"] == 0  # the last call set it back to "0"


def test_sent_from_back_office_knob(
    sdk: DimeSchedulerClient, ctl: httpx.Client, api: httpx.Client
) -> None:
    seed_people(ctl)
    api.post("/webhooks/AppointmentCreated", json={
        "sourceApp": "BC", "notificationURL": "http://127.0.0.1:1/never", "resource": "Appointments",
        "changeType": ["Create"]}).raise_for_status()
    ctl.post("/webhooks/faults", json={"drop": 10}).raise_for_status()  # count deliveries without sending
    assert imported(sdk.imports.run([*job_and_task(), planning_appointment(G1)]))  # SentFromBackOffice=True
    assert ctl.get("/stats").json()["webhooks"]["dropped"] == 1  # fired by default
    ctl.patch("/config", json={"sent_from_back_office_suppresses_webhooks": True}).raise_for_status()
    assert imported(sdk.imports.run([planning_appointment(G2)]))
    assert ctl.get("/stats").json()["webhooks"]["dropped"] == 1  # suppressed
    assert imported(sdk.imports.run([planning_appointment(str(uuid.uuid4()), SentFromBackOffice="False")]))
    assert ctl.get("/stats").json()["webhooks"]["dropped"] == 2


@pytest.mark.parametrize("mode", ["inserts", "by_guid"])
def test_upsert_appointment_without_an_id_inserts_unless_the_guid_is_enough(
        sdk: DimeSchedulerClient, ctl: httpx.Client, mode: str) -> None:
    """"The appointment id is required if you want to update an existing appointment; otherwise it inserts"
    (the default, `update_without_id=inserts`); `by_guid` is the kinder reading. With the id, both update."""
    seed_people(ctl)
    if mode != "inserts":
        ctl.patch("/config", json={"update_without_id": mode}).raise_for_status()
    assert imported(sdk.imports.run([*job_and_task(), planning_appointment(G1)]))
    number = numeric_id(ctl, G1)
    assert imported(sdk.imports.run([planning_appointment(G1, subject="by id", AppointmentId=number)]))
    assert [a["Subject"] for a in ctl.get("/appointments").json()] == ["by id"]
    assert imported(sdk.imports.run([planning_appointment(G1, subject="by GUID")]))
    subjects = sorted(a["Subject"] for a in ctl.get("/appointments").json())
    assert subjects == (["by GUID", "by id"] if mode == "inserts" else ["by GUID"])
    assert stored(ctl, G1)["Subject"] == ("by id" if mode == "inserts" else "by GUID")
    without_job = call("mboc_upsertAppointment", AppointmentGuid=G1, SourceApp="BC", SourceType="JOB",
                       Subject="no job", Start="2026-01-05T13:00:00Z", End="2026-01-05T14:00:00Z")
    if mode == "inserts":
        assert "needs 'JobNo' and 'TaskNo'" in _error_message(sdk.imports.run([without_job]))
    else:
        assert imported(sdk.imports.run([without_job]))


@pytest.mark.parametrize("mode", ["keeps", "clears"])
def test_a_blank_subject_body_or_category_list_keeps_or_clears(
        sdk: DimeSchedulerClient, ctl: httpx.Client, mode: str) -> None:
    """Whether a blank clears an Outlook item's field is undocumented: `blank_parameter` (default `keeps`: a
    blank is "not given"). A deletion and a new import under the same GUID clear it under either."""
    seed_people(ctl)
    if mode != "keeps":
        ctl.patch("/config", json={"blank_parameter": mode}).raise_for_status()
    assert imported(sdk.imports.run([exchange_item(G1)]))
    assert imported(sdk.imports.run([exchange_item(G1, subject="", Body="", Categories="")]))
    got = stored(ctl, G1)
    assert (got["Subject"], got["Body"], got["Categories"]) == (
        ("Dentist", "private", ["Red", "Blue"]) if mode == "keeps" else ("", "", []))
    replaced = [call("mboc_deleteExchangeAppointment", AppointmentGuid=G1),
                exchange_item(G1, subject="Private appointment", Body="", Categories="")]
    assert imported(sdk.imports.run(replaced))
    got = stored(ctl, G1)
    assert (got["Subject"], got["Body"] or "", got["Categories"]) == ("Private appointment", "", [])
