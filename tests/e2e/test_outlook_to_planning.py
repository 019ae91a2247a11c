"""End to end, Outlook → planning: Outlook (Graph emulator) → the connector under the dev host → the planning board
(Dime.Scheduler emulator), with Azurite. Each test acts as a person would (edits a calendar through the
Graph API, flips a setting, runs a timer through the admin call) and checks what a planner sees on the
board (`/_emulator/appointments`) and what an operator sees (subscriptions, activity, DS write counts).

One stack for the module; tests share it in order but each works on its own events. Resource numbers
are unique to this module because Azurite (and so the registry) is shared by the whole session.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.stores.activity import ActivityEntry
from connector.stores.registry import Status
from connector.sync.to_planning import PRIVATE_SUBJECT
from devtools.graph_emulator import GraphEmulatorConfig
from tests.e2e.conftest import Stack, wait_until

PREFIX = "O3" + uuid.uuid4().hex[:4].upper()  # unique resource numbers per run (shared Azurite)
ALICE, BOB, CAROL, DAVE = (f"{PREFIX}-{n}" for n in ("ALICE", "BOB", "CAROL", "DAVE"))
DOMAIN = f"{PREFIX.lower()}.example"
ALICE_MAIL, BOB_MAIL, CAROL_MAIL, DAVE_MAIL = (f"{n}@{DOMAIN}" for n in ("alice", "bob", "carol", "dave"))
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
TIMEOUT = 60  # generous bound for a noisy shared machine: a poll, not a timing assertion


def gtime(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S.0000000"), "timeZone": "UTC"}


def event(subject: str, start: datetime, hours: float = 1, **fields: Any) -> dict[str, Any]:
    return {"subject": subject, "start": gtime(start), "end": gtime(start + timedelta(hours=hours)),
            "body": {"contentType": "text", "content": f"{subject}: details"}, **fields}


class Outlook:
    """A resource's calendar, driven through the Graph API as Outlook would."""

    def __init__(self, stack: Stack, mailbox: str) -> None:
        self.stack = stack
        self.user_id = stack.graph_api("GET", f"/users/{mailbox}").json()["id"]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        response = self.stack.graph_api("POST", f"/users/{self.user_id}/events", json=body,
                                        headers={"Prefer": 'IdType="ImmutableId"'})
        assert response.status_code == 201, response.text
        return dict(response.json())

    def patch(self, event_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        response = self.stack.graph_api("PATCH", f"/users/{self.user_id}/events/{event_id}", json=changes,
                                        headers={"Prefer": 'IdType="ImmutableId"'})
        assert response.status_code == 200, response.text
        return dict(response.json())

    def delete(self, event_id: str) -> None:
        response = self.stack.graph_api("DELETE", f"/users/{self.user_id}/events/{event_id}",
                                        headers={"Prefer": 'IdType="ImmutableId"'})
        assert response.status_code == 204, response.text

    def instances(self, event_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        response = self.stack.graph_api(
            "GET", f"/users/{self.user_id}/events/{event_id}/instances",
            params={"startDateTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "endDateTime": end.strftime("%Y-%m-%dT%H:%M:%SZ")},
            headers={"Prefer": 'IdType="ImmutableId"'})
        assert response.status_code == 200, response.text
        return list(response.json()["value"])


def board(stack: Stack, resource_no: str | None = None) -> list[dict[str, Any]]:
    """The Outlook items on the planning board (optionally one resource's)."""
    items = stack.ds_control("GET", "/appointments").json()
    return [a for a in items if a["Origin"] == "exchange" and (resource_no is None or resource_no in a["ResourceNos"])]


def on_board(stack: Stack, event_id: str) -> dict[str, Any] | None:
    return next((a for a in board(stack) if a["ExchangeId"] == event_id), None)


def exchange_writes(stack: Stack) -> int:
    procedures = stack.ds_control("GET", "/stats").json()["procedures"]
    return int(procedures.get("mboc_upsertExchangeAppointment", 0) + procedures.get("mboc_deleteExchangeAppointment", 0))


def activity(stack: Stack) -> list[ActivityEntry]:
    return [e for e in stack.services.activity.recent(days=1) if e.resource_no.startswith(PREFIX) or not e.resource_no]


def subscriptions(stack: Stack, user_id: str) -> list[dict[str, Any]]:
    items = stack.graph_control("GET", "/subscriptions").json()["value"]
    return [s for s in items if s["mailbox"] == user_id and not s["removed"] and not s["expired"]]


def tracked_mailboxes(stack: Stack) -> list[Any]:
    """The tracked resources with a mailbox, after a sync_resources run has tracked Alice and Bob (the
    module's first test does; a test run alone does it here)."""
    def tracked() -> list[Any]:
        return [r for r in stack.services.registry.all() if r.status == Status.TRACKED and r.user_id]

    if len(tracked()) < 2:
        stack.run_function("sync_resources")
    return wait_until(lambda: len(found := tracked()) >= 2 and found, TIMEOUT, what="Alice and Bob tracked")


def settle(stack: Stack) -> None:
    """Wait until the exchange-changes queue is empty (queued, delayed and in-flight messages all count)."""
    queue = stack.services.work_queues
    wait_until(lambda: queue.depth("exchange-changes") == 0, TIMEOUT, what="exchange-changes to drain")


def reconcile(stack: Stack, mailbox_user_id: str | None = None) -> None:
    """Run the reconcile timer and wait until Alice's mailbox (or the one given) finished a round after it."""
    user_id = mailbox_user_id or stack.graph_api("GET", f"/users/{ALICE_MAIL}").json()["id"]

    def last_round() -> str:
        row = stack.services.repositories.cursors.get("mailbox", user_id)
        return str(row.data.get("LastRoundAt") or "") if row else ""

    before = last_round()
    stack.run_function("reconcile_exchange")
    wait_until(lambda: last_round() > before, TIMEOUT, what="a reconcile round of the mailbox")
    settle(stack)


@pytest.fixture(scope="module")
def stack(start_stack: Any) -> Iterator[Stack]:
    stack: Stack = start_stack(GraphEmulatorConfig(), WORK_MAX_ATTEMPTS="3")
    users = [{"displayName": n.title(), "userPrincipalName": m, "mail": m}
             for n, m in (("alice", ALICE_MAIL), ("bob", BOB_MAIL), ("dave", DAVE_MAIL))]
    monday = TODAY - timedelta(days=TODAY.weekday())
    graph_seed = {"users": users, "events": {ALICE_MAIL: [
        event("Customer kick-off", TODAY + timedelta(days=1, hours=9), 1.5, showAs="busy",
              location={"displayName": "Room 4"}),
        event("Dentist", TODAY + timedelta(days=2, hours=14), 1, sensitivity="private", showAs="oof",
              location={"displayName": "Dr. Smile"}),
        {"subject": "Safety training", "isAllDay": True, "showAs": "busy",
         "start": gtime(TODAY + timedelta(days=3)), "end": gtime(TODAY + timedelta(days=4))},
        event("Team stand-up", monday + timedelta(days=7, hours=8), 0.25, showAs="busy", recurrence={
            "pattern": {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]},
            "range": {"type": "numbered", "startDate": (monday + timedelta(days=7)).strftime("%Y-%m-%d"),
                      "numberOfOccurrences": 3}}),
        event("Lunch", TODAY + timedelta(days=1, hours=12), 1, showAs="free"),
    ], BOB_MAIL: [event("Bob's workshop", TODAY + timedelta(days=2, hours=9), 3, showAs="busy")]}}
    assert stack.graph_control("POST", "/seed", json=graph_seed).status_code == 200
    resources = [
        {"resourceNo": ALICE, "displayName": "Alice", "email": ALICE_MAIL, "exchangeIntegrationEnabled": True},
        {"resourceNo": BOB, "displayName": "Bob", "email": BOB_MAIL, "exchangeIntegrationEnabled": True},
        {"resourceNo": CAROL, "displayName": "Carol", "email": CAROL_MAIL, "exchangeIntegrationEnabled": True},
        {"resourceNo": DAVE, "displayName": "Dave", "email": DAVE_MAIL, "exchangeIntegrationEnabled": False},
    ]
    seed = {"resources": resources,
            "categories": [{"name": "Maintenance", "displayName": "Maintenance", "color": "#1F77B4"}]}
    assert stack.ds_control("POST", "/seed", json=seed).status_code == 200
    yield stack


@pytest.fixture(scope="module")
def alice(stack: Stack) -> Outlook:
    return Outlook(stack, ALICE_MAIL)


def test_a_new_tracked_resource_gets_a_subscription_and_its_outlook_items_appear_on_the_board(
        stack: Stack, alice: Outlook) -> None:
    stack.run_function("sync_resources")
    record = wait_until(lambda: (r := stack.services.registry.get(ALICE)) and r.subscription_id and r, TIMEOUT,
                        what="Alice tracked with a subscription")
    assert record.status == Status.TRACKED and record.user_id == alice.user_id
    live = subscriptions(stack, alice.user_id)
    assert [s["id"] for s in live] == [record.subscription_id]
    assert live[0]["changeType"] == "created,updated,deleted" and live[0]["lifecycleNotificationUrl"].endswith(
        "/api/graph/lifecycle") and live[0]["immutableIds"]

    def alice_board() -> list[dict[str, Any]] | None:
        items = board(stack, ALICE)
        return items if len(items) >= 6 else None  # kick-off, dentist, training, 3 stand-ups

    items = wait_until(alice_board, TIMEOUT, what="Alice's Outlook items on the board")
    subjects = sorted(a["Subject"] for a in items)
    assert subjects == sorted(["Customer kick-off", PRIVATE_SUBJECT, "Safety training"] + ["Team stand-up"] * 3)
    kickoff = next(a for a in items if a["Subject"] == "Customer kick-off")
    # mboc_upsertExchangeAppointment has no Location parameter: the board gets none.
    assert kickoff["Location"] is None and kickoff["CreatedByExchange"] and kickoff["ShowAs"] == 3
    private = next(a for a in items if a["Subject"] == PRIVATE_SUBJECT)
    assert not private["Body"] and private["Location"] is None and private["Sensitivity"] == 3
    training = next(a for a in items if a["Subject"] == "Safety training")
    # No all-day parameter exists: an all-day item is on the board as whole UTC days.
    assert training["StartDate"].endswith("T00:00:00Z") and training["EndDate"].endswith("T00:00:00Z")
    assert all(a["Subject"] != "Lunch" for a in items)  # show-as free is filtered out by default
    # The other resources: an unknown email is on the monitor, integration off is not tracked.
    carol = stack.services.registry.get(CAROL)
    assert carol is not None and carol.status == Status.UNKNOWN_EMAIL and CAROL_MAIL in carol.last_error
    dave = stack.services.registry.get(DAVE)
    assert dave is None or dave.status != Status.TRACKED


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def subject_on_board(stack: Stack, event_id: str, subject: str) -> dict[str, Any] | None:
    item = on_board(stack, event_id)
    return item if item is not None and item["Subject"] == subject else None


def set_faults(stack: Stack, **faults: Any) -> None:
    assert stack.graph_control("POST", "/notifications/faults", json=faults).status_code == 200


def clear_faults(stack: Stack) -> None:
    stack.graph_control("DELETE", "/notifications/faults")
    stack.graph_control("DELETE", "/faults")
    stack.ds_control("DELETE", "/faults")


def test_create_move_edit_and_delete_of_a_single_event_reach_the_board(stack: Stack, alice: Outlook) -> None:
    start = TODAY + timedelta(days=5, hours=10)
    created = alice.create(event("Site survey", start, 2, showAs="busy"))
    item = wait_until(lambda: on_board(stack, created["id"]), TIMEOUT, what="the new event on the board")
    assert item["Subject"] == "Site survey" and item["StartDate"] == iso(start) and item["EndDate"] == iso(
        start + timedelta(hours=2))
    assert item["ResourceNos"] == [ALICE]

    alice.patch(created["id"], {"start": gtime(start + timedelta(hours=1)), "end": gtime(start + timedelta(hours=3))})
    wait_until(lambda: (a := on_board(stack, created["id"])) and a["StartDate"] == iso(start + timedelta(hours=1)),
               TIMEOUT, what="the move on the board")
    alice.patch(created["id"], {"subject": "Site survey, building B", "importance": "high"})
    moved = wait_until(lambda: subject_on_board(stack, created["id"], "Site survey, building B"), TIMEOUT,
                       what="the edit on the board")
    assert moved["Importance"] == 1 and moved["AppointmentGuid"] == item["AppointmentGuid"]  # same board item

    alice.delete(created["id"])
    wait_until(lambda: on_board(stack, created["id"]) is None, TIMEOUT, what="the deletion on the board")


def test_all_day_events_stay_all_day(stack: Stack, alice: Outlook) -> None:
    created = alice.create({"subject": "Holiday", "isAllDay": True, "showAs": "oof",
                            "start": gtime(TODAY + timedelta(days=8)), "end": gtime(TODAY + timedelta(days=10))})
    item = wait_until(lambda: on_board(stack, created["id"]), TIMEOUT, what="the all-day event on the board")
    assert item["ShowAs"] == 4  # no all-day parameter exists: all-day is the midnight-to-midnight span
    assert item["StartDate"] == iso(TODAY + timedelta(days=8)) and item["EndDate"] == iso(TODAY + timedelta(days=10))


def test_recurring_occurrences_and_exceptions_are_items_of_their_own(stack: Stack, alice: Outlook) -> None:
    masters = stack.graph_api("GET", f"/users/{alice.user_id}/events", params={"$top": "50"}).json()["value"]
    master = next(e for e in masters if e["subject"] == "Team stand-up")
    occurrences = alice.instances(master["id"], TODAY, TODAY + timedelta(days=60))
    assert len(occurrences) == 3
    for occurrence in occurrences:
        assert on_board(stack, occurrence["id"]) is not None
    exception, cancelled = occurrences[1], occurrences[2]
    new_start = datetime.fromisoformat(exception["start"]["dateTime"][:19]).replace(tzinfo=UTC) + timedelta(hours=1)
    alice.patch(exception["id"], {"subject": "Team stand-up (late)", "start": gtime(new_start),
                                  "end": gtime(new_start + timedelta(minutes=15))})
    moved = wait_until(lambda: subject_on_board(stack, exception["id"], "Team stand-up (late)"), TIMEOUT,
                       what="the exception on the board")
    assert moved["StartDate"] == iso(new_start)
    alice.delete(cancelled["id"])
    wait_until(lambda: on_board(stack, cancelled["id"]) is None, TIMEOUT, what="the deleted occurrence gone")
    first = on_board(stack, occurrences[0]["id"])
    assert first is not None and first["Subject"] == "Team stand-up"  # the rest of the series is untouched


def _own_settings(stack: Stack, **changes: Any) -> None:
    from dataclasses import replace

    store = stack.services.resource_settings
    own = store.own(ALICE)
    store.save_own(ALICE, replace(own.settings, **changes), own.locks, own.etag)


def test_private_items_are_masked_by_default_and_follow_the_resources_setting(stack: Stack, alice: Outlook) -> None:
    from connector.sync.to_planning import PrivateItems

    dentist = next(a for a in board(stack, ALICE) if a["Sensitivity"] == 3)
    assert dentist["Subject"] == PRIVATE_SUBJECT and not dentist["Body"] and dentist["Location"] is None
    event_id = dentist["ExchangeId"]
    try:
        _own_settings(stack, private_items=PrivateItems.SHOWN)
        reconcile(stack)  # the next round sees the settings changed: a full round
        shown = wait_until(lambda: subject_on_board(stack, event_id, "Dentist"), TIMEOUT, what="the private item shown")
        assert shown["Body"] == "Dentist: details"  # shown: the content flows (there is no Location parameter)

        _own_settings(stack, private_items=PrivateItems.HIDDEN)
        reconcile(stack)
        wait_until(lambda: on_board(stack, event_id) is None, TIMEOUT, what="the private item hidden")
    finally:
        _own_settings(stack, private_items=PrivateItems.MASKED)
    reconcile(stack)
    wait_until(lambda: subject_on_board(stack, event_id, PRIVATE_SUBJECT), TIMEOUT, what="masked again")


def test_filtered_show_as_and_sensitivity_values_do_not_flow(stack: Stack, alice: Outlook) -> None:
    from connector.model import Sensitivity

    try:
        _own_settings(stack, sensitivity=frozenset({Sensitivity.NORMAL, Sensitivity.PRIVATE}))
        reconcile(stack)  # the full round for the new settings (logs no skips)
        free = alice.create(event("Gym", TODAY + timedelta(days=6, hours=7), 1, showAs="free"))
        personal = alice.create(event("Parents' evening", TODAY + timedelta(days=6, hours=18), 1,
                                      sensitivity="personal"))
        marker = alice.create(event("Marker: after the filtered ones", TODAY + timedelta(days=6, hours=20), 1))
        wait_until(lambda: on_board(stack, marker["id"]), TIMEOUT, what="the marker event on the board")
        settle(stack)
        assert on_board(stack, free["id"]) is None and on_board(stack, personal["id"]) is None
        skipped = [e for e in activity(stack) if e.outcome == "skipped" and e.event_id in (free["id"], personal["id"])]
        assert {e.event_id for e in skipped} == {free["id"], personal["id"]}
        # An item already on the board that becomes filtered leaves it.
        alice.patch(marker["id"], {"showAs": "free"})
        wait_until(lambda: on_board(stack, marker["id"]) is None, TIMEOUT, what="the now-free item off the board")
    finally:
        _own_settings(stack, sensitivity=frozenset(Sensitivity))
        reconcile(stack)


def test_faulty_notification_delivery_still_converges_with_one_write_per_real_change(
        stack: Stack, alice: Outlook) -> None:
    reconcile(stack)
    before = exchange_writes(stack)
    # Dropped notifications: nothing happens until the reconcile timer's delta round repairs it.
    dropped = _dropped_change(stack, alice, "Dropped notification")  # 1 write
    settle(stack)
    assert on_board(stack, dropped["id"]) is None
    reconcile(stack)
    assert on_board(stack, dropped["id"]), "reconcile repairs a dropped notification"

    # Duplicated, reordered and delayed notifications: every change lands once.
    set_faults(stack, duplicate=50, reorder=True, delayMs=150)
    try:
        first = alice.create(event("Quote review", TODAY + timedelta(days=9, hours=9)))  # 1 write
        wait_until(lambda: on_board(stack, first["id"]), TIMEOUT, what="the create")
        alice.patch(first["id"], {"subject": "Quote review (final)"})  # 1 write
        wait_until(lambda: subject_on_board(stack, first["id"], "Quote review (final)"), TIMEOUT, what="the edit")
        second = alice.create(event("Call back", TODAY + timedelta(days=9, hours=11)))  # 1 write
        wait_until(lambda: on_board(stack, second["id"]), TIMEOUT, what="the second create")
        alice.delete(second["id"])  # 1 write
        wait_until(lambda: on_board(stack, second["id"]) is None, TIMEOUT, what="the delete")
        # A no-op edit (same values; Exchange still moves the changeKey) writes nothing.
        alice.patch(first["id"], {"subject": "Quote review (final)"})
        # The connector's own event (dsx- transactionId) is never imported.
        own = alice.create({**event("Planned job (connector)", TODAY + timedelta(days=9, hours=14)),
                            "transactionId": f"dsx-{uuid.uuid4()}-{ALICE}-test"})
        settle(stack)
        reconcile(stack)  # one more round: nothing left to write
    finally:
        clear_faults(stack)
    assert on_board(stack, own["id"]) is None
    stats = stack.graph_control("GET", "/stats").json()["notifications"]
    assert stats["duplicated"] > 0 and stats["dropped"] > 0
    assert exchange_writes(stack) - before == 5


def _planner_event(stack: Stack, alice: Outlook, subject: str) -> tuple[str, dict[str, Any]]:
    """A planner's appointment for Alice and the connector's event for it, written by the planning →
    Outlook worker (the appointment webhook reaches it through the hooks sync_resources registered)."""
    start = TODAY + timedelta(days=11, hours=13)
    created = stack.ds_control("POST", "/planner/appointments", json={
        "Subject": subject, "Body": "Work order 17", "StartDate": iso(start),
        "EndDate": iso(start + timedelta(hours=2)), "Importance": 0,
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1"}},
        "Assignments": [{"Resource": {"ResourceNo": ALICE}}]})
    assert created.status_code == 201, created.text
    guid = str(created.json()["AppointmentGuid"]).lower()

    def written() -> str | None:
        copy = stack.services.mappings.outlook_copies(guid).get(ALICE)
        return copy.event_id if copy and copy.event_id and copy.change_key else None

    event_id = wait_until(written, TIMEOUT, what="the connector's event for the planner's appointment")
    current = stack.graph_api("GET", f"/users/{alice.user_id}/events/{event_id}",
                              headers={"Prefer": 'IdType="ImmutableId"'}).json()
    assert current["subject"] == subject and current["transactionId"].startswith("dsx-")
    assert current["id"] == event_id
    return guid, dict(current)


def test_the_connectors_own_events_are_not_imported_and_an_outlook_edit_is_restored_from_the_planning(
        stack: Stack, alice: Outlook) -> None:
    guid, written = _planner_event(stack, alice, "Boiler service")
    settle(stack)
    before = exchange_writes(stack)
    # A person retitles the planner's event in Outlook: the planning board wins (default policy).
    alice.patch(written["id"], {"subject": "Boiler service (moved to Friday?)"})

    def restored() -> dict[str, Any] | None:
        current = stack.graph_api("GET", f"/users/{alice.user_id}/events/{written['id']}").json()
        return current if current["subject"] == "Boiler service" else None

    wait_until(restored, TIMEOUT, what="the planner's version restored in Outlook")
    # The person deletes it: it comes back (a new event, same appointment).
    alice.delete(written["id"])

    def recreated() -> str | None:
        copy = stack.services.mappings.outlook_copies(guid).get(ALICE)
        return copy.event_id if copy and copy.event_id and copy.event_id != written["id"] else None

    new_id = wait_until(recreated, TIMEOUT, what="the deleted event re-created")
    again = stack.graph_api("GET", f"/users/{alice.user_id}/events/{new_id}",
                            headers={"Prefer": 'IdType="ImmutableId"'}).json()
    assert again["subject"] == "Boiler service" and again["transactionId"].startswith("dsx-")
    settle(stack)
    reconcile(stack)
    assert exchange_writes(stack) == before  # none of this is an Outlook item for the board
    assert on_board(stack, written["id"]) is None and on_board(stack, new_id) is None
    restores = [e for e in stack.services.activity.history(guid) if e.action == "restore"]
    assert len(restores) == 2 and all(e.outcome == "applied" for e in restores)


@pytest.mark.parametrize("pause", [0.0, 1.0, 2.5], ids=["at-once", "after-1s", "after-2.5s"])
def test_a_planners_event_deleted_right_after_it_appears_comes_back(stack: Stack, alice: Outlook,
                                                                      pause: float) -> None:
    """A technician deletes the planner's event as soon as it shows up in Outlook, while the
    connector's own echo of the create is still on its way: under the default policy it comes back."""
    start = TODAY + timedelta(days=13, hours=8)
    subject = f"Gas check {pause}"
    created = stack.ds_control("POST", "/planner/appointments", json={
        "Subject": subject, "StartDate": iso(start), "EndDate": iso(start + timedelta(hours=1)), "Importance": 0,
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-13"}},
        "Assignments": [{"Resource": {"ResourceNo": ALICE}}]})
    assert created.status_code == 201, created.text
    guid = str(created.json()["AppointmentGuid"]).lower()

    def in_outlook() -> list[str]:
        events = stack.graph_api("GET", f"/users/{alice.user_id}/events", params={"$top": "200"},
                                 headers={"Prefer": 'IdType="ImmutableId"'}).json()["value"]
        return [str(e["id"]) for e in events if e.get("subject") == subject]

    [first] = wait_until(in_outlook, TIMEOUT, what="the planner's event in Outlook")
    time.sleep(pause)
    alice.delete(first)
    back = wait_until(lambda: [i for i in in_outlook() if i != first], TIMEOUT, what="the deleted event back")
    settle(stack)
    assert in_outlook() == back and len(back) == 1  # back once, not twice
    copy = stack.services.mappings.outlook_copies(guid)[ALICE]
    assert copy.event_id == back[0]


def dropped_count(stack: Stack) -> int:
    return int(stack.graph_control("GET", "/stats").json()["notifications"]["dropped"])


def without_notifications(stack: Stack, change: Any, items: int) -> Any:
    """Make an Outlook change whose `items` notifications the emulator drops (only a resync finds it)."""
    settle(stack)
    before = dropped_count(stack)
    set_faults(stack, drop=1000)
    try:
        result = change()
        wait_until(lambda: dropped_count(stack) >= before + items, TIMEOUT, what="the notifications dropped")
    finally:
        clear_faults(stack)
    return result


def _dropped_change(stack: Stack, alice: Outlook, subject: str) -> dict[str, Any]:
    """A new Outlook event whose notifications never arrive ("created" and the extra "updated")."""
    created: dict[str, Any] = without_notifications(
        stack, lambda: alice.create(event(subject, TODAY + timedelta(days=12, hours=9))), 2)
    assert on_board(stack, created["id"]) is None
    return created


def _lifecycle(stack: Stack, subscription_id: str, name: str) -> None:
    response = stack.graph_control("POST", f"/subscriptions/{subscription_id}/lifecycle", json={"event": name})
    assert response.status_code == 200 and response.json()["delivering"]


def test_lifecycle_missed_resyncs(stack: Stack, alice: Outlook) -> None:
    created = _dropped_change(stack, alice, "Missed while Graph was busy")
    record = stack.services.registry.get(ALICE)
    assert record is not None
    _lifecycle(stack, record.subscription_id, "missed")
    wait_until(lambda: on_board(stack, created["id"]), TIMEOUT, what="the missed change after the resync")


def test_lifecycle_subscription_removed_recreates_and_resyncs(stack: Stack, alice: Outlook) -> None:
    created = _dropped_change(stack, alice, "Made while the subscription was gone")
    old = stack.services.registry.get(ALICE)
    assert old is not None
    _lifecycle(stack, old.subscription_id, "subscriptionRemoved")
    wait_until(lambda: on_board(stack, created["id"]), TIMEOUT, what="the gap repaired by the resync")
    new = stack.services.registry.get(ALICE)
    assert new is not None and new.subscription_id != old.subscription_id
    assert [s["id"] for s in subscriptions(stack, alice.user_id)] == [new.subscription_id]
    assert stack.services.registry.subscription(old.subscription_id) is None
    # Notifications flow on the new subscription.
    later = alice.create(event("After the new subscription", TODAY + timedelta(days=12, hours=15)))
    wait_until(lambda: on_board(stack, later["id"]), TIMEOUT, what="a change through the new subscription")


def test_lifecycle_reauthorization_required_renews_now(stack: Stack, alice: Outlook) -> None:
    record = stack.services.registry.get(ALICE)
    assert record is not None
    before = subscriptions(stack, alice.user_id)[0]["expirationDateTime"]
    _lifecycle(stack, record.subscription_id, "reauthorizationRequired")
    wait_until(lambda: subscriptions(stack, alice.user_id)[0]["expirationDateTime"] > before, TIMEOUT,
               what="the subscription renewed")
    renewed = stack.services.registry.get(ALICE)
    assert renewed is not None and renewed.subscription_id == record.subscription_id
    created = alice.create(event("After reauthorization", TODAY + timedelta(days=12, hours=17)))
    wait_until(lambda: on_board(stack, created["id"]), TIMEOUT, what="notifications still flowing")


def test_renew_subscriptions_renews_the_ones_expiring_soon_and_recreates_lost_ones(
        stack: Stack, alice: Outlook) -> None:
    record = stack.services.registry.get(ALICE)
    assert record is not None
    # Expiring within the margin (as the registry sees it): renewed in place.
    stack.services.registry.update(ALICE, subscription_expiry=datetime.now(UTC) + timedelta(minutes=10))
    stack.run_function("renew_subscriptions")
    renewed = wait_until(lambda: (r := stack.services.registry.get(ALICE)) and r.subscription_expiry
                         and r.subscription_expiry > datetime.now(UTC) + timedelta(days=1) and r, TIMEOUT,
                         what="the subscription renewed")
    assert renewed.subscription_id == record.subscription_id
    # Lost at Graph (deleted behind our back) while a change happened: recreated, and the gap resynced.
    settle(stack)
    assert stack.graph_api("DELETE", f"/subscriptions/{record.subscription_id}").status_code == 204
    gap = alice.create(event("Made during the gap", TODAY + timedelta(days=12, hours=11)))  # nobody is told
    settle(stack)
    assert on_board(stack, gap["id"]) is None
    stack.run_function("renew_subscriptions")
    recreated = wait_until(lambda: (r := stack.services.registry.get(ALICE)) and r.subscription_id
                           != record.subscription_id and r, TIMEOUT, what="the lost subscription recreated")
    assert [s["id"] for s in subscriptions(stack, alice.user_id)] == [recreated.subscription_id]
    wait_until(lambda: on_board(stack, gap["id"]), TIMEOUT, what="the gap resynced")


def test_the_renew_timer_fans_out_one_upkeep_per_tracked_mailbox_and_the_queue_workers_do_it(
        stack: Stack, alice: Outlook) -> None:
    import asyncio

    from connector.workers.subscriptions import renew_subscriptions

    tracked = tracked_mailboxes(stack)
    settle(stack)
    record = stack.services.registry.get(ALICE)
    assert record is not None
    stack.services.registry.update(ALICE, subscription_expiry=datetime.now(UTC) + timedelta(minutes=5))
    report = asyncio.run(renew_subscriptions(stack.services))  # the timer's core, in this process
    # It only enqueued: one message per tracked mailbox; the dev host's queue workers renew.
    assert report.enqueued == len(tracked)
    renewed = wait_until(lambda: (r := stack.services.registry.get(ALICE)) and r.subscription_expiry
                         and r.subscription_expiry > datetime.now(UTC) + timedelta(days=1) and r, TIMEOUT,
                         what="the subscription renewed by its upkeep message")
    assert renewed.subscription_id == record.subscription_id
    settle(stack)
    assert [s["id"] for s in subscriptions(stack, alice.user_id)] == [record.subscription_id]


def test_an_expired_delta_token_ends_in_a_full_resync_that_removes_items_gone_from_outlook(
        stack: Stack, alice: Outlook) -> None:
    doomed = alice.create(event("Deleted behind our back", TODAY + timedelta(days=13, hours=9)))
    wait_until(lambda: on_board(stack, doomed["id"]), TIMEOUT, what="the item on the board")
    without_notifications(stack, lambda: alice.delete(doomed["id"]), 1)
    assert stack.graph_control("POST", "/delta/expire", json={"user": alice.user_id}).status_code == 200
    reconcile(stack)
    assert on_board(stack, doomed["id"]) is None, "the full resync removes what is gone from Outlook"
    cursor = stack.services.repositories.cursors.get("mailbox", alice.user_id)
    assert cursor is not None and cursor.data["Link"] and not cursor.data["FullRequired"]


def test_forged_notifications_change_nothing(stack: Stack, alice: Outlook) -> None:
    import httpx

    url = f"{stack.app.url}/api/graph/notifications"
    handshake = httpx.post(url, params={"validationToken": "Validation: token a+b/c"}, content=b"", timeout=10)
    assert handshake.status_code == 200 and handshake.text == "Validation: token a+b/c"
    assert handshake.headers["content-type"].startswith("text/plain")
    assert httpx.post(url, content=b"{not json", timeout=10).status_code == 400
    assert httpx.post(url, json={"value": "x"}, timeout=10).status_code == 400
    assert httpx.post(url, content=b"{" + b" " * (1024 * 1024 + 1) + b"}", timeout=10).status_code == 413

    hidden = _dropped_change(stack, alice, "Not announced")
    record = stack.services.registry.get(ALICE)
    assert record is not None
    writes = exchange_writes(stack)
    forged = {"value": [
        {"subscriptionId": record.subscription_id, "clientState": "guessed-secret", "changeType": "created",
         "resource": f"Users/{alice.user_id}/Events/{hidden['id']}"},
        {"subscriptionId": str(uuid.uuid4()), "clientState": "guessed-secret", "changeType": "updated",
         "resource": f"Users/{alice.user_id}/Events/{hidden['id']}"},
    ]}
    response = httpx.post(url, json=forged, timeout=10)
    assert response.status_code == 202 and response.text == ""  # the same answer as for a real one
    assert stack.services.work_queues.depth("exchange-changes") == 0  # nothing was enqueued
    settle(stack)
    assert on_board(stack, hidden["id"]) is None and exchange_writes(stack) == writes
    rejected = [e for e in activity(stack) if e.outcome == "rejected"]
    assert rejected and "2 item(s)" in rejected[0].detail
    assert all("guessed-secret" not in str(e) and record.subscription_id not in str(e) for e in rejected)


def test_transient_failures_are_retried_and_the_last_one_is_visible_as_failed(stack: Stack, alice: Outlook) -> None:
    # Graph throttles the delta query once: the change is retried after Retry-After and arrives.
    settle(stack)
    stack.graph_control("POST", "/faults", json={"method": "GET", "route": "/v1.0/users/{id}/calendarView/delta",
                                                 "status": 429, "retryAfter": 1, "count": 1})
    throttled = alice.create(event("Throttled once", TODAY + timedelta(days=14, hours=9)))
    wait_until(lambda: on_board(stack, throttled["id"]), TIMEOUT, what="the throttled change after its retry")
    assert any(e.outcome == "retrying" and "429" in e.error for e in activity(stack))
    # Dime.Scheduler stays down: after WORK_MAX_ATTEMPTS the change is parked and shown as failed.
    settle(stack)
    stack.ds_control("POST", "/faults", json={"method": "POST", "route": "/import", "status": 503, "retryAfter": 1})
    try:
        down = alice.create(event("While Dime.Scheduler is down", TODAY + timedelta(days=14, hours=11)))
        failed = wait_until(lambda: [e for e in activity(stack) if e.outcome == "failed" and "503" in e.error],
                            TIMEOUT + 10, what="the change visible as failed")
        assert failed[0].resource_no == ALICE and "exchange-changes-poison" in failed[0].detail
    finally:
        clear_faults(stack)
    stack.run_function("reconcile_exchange")
    wait_until(lambda: on_board(stack, down["id"]), TIMEOUT, what="the change once Dime.Scheduler is back")


def test_private_content_never_reaches_the_activity_log_or_the_logs(
        stack: Stack, alice: Outlook, caplog: pytest.LogCaptureFixture) -> None:
    dentist = next(a for a in board(stack, ALICE) if a["Sensitivity"] == 3)
    with caplog.at_level("DEBUG"):
        start = datetime.fromisoformat(dentist["StartDate"].replace("Z", "+00:00")) + timedelta(minutes=30)
        alice.patch(dentist["ExchangeId"], {"start": gtime(start), "end": gtime(start + timedelta(hours=1))})
        wait_until(lambda: (a := on_board(stack, dentist["ExchangeId"])) and a["StartDate"] == iso(start), TIMEOUT,
                   what="the private item moved")
        settle(stack)
    for entry in stack.services.activity.recent(days=1):
        assert "Dentist" not in str(entry) and "Dr. Smile" not in str(entry)
    assert "Dentist" not in caplog.text and "Dr. Smile" not in caplog.text
    moved = [e for e in stack.services.activity.history(dentist["AppointmentGuid"].lower()) if e.outcome == "applied"]
    assert moved and moved[0].latency_ms is not None


def test_unknown_emails_are_reported_once_and_untracked_resources_leave_the_board(stack: Stack) -> None:
    bob = Outlook(stack, BOB_MAIL)
    wait_until(lambda: board(stack, BOB), TIMEOUT, what="Bob's item on the board")
    stack.run_function("sync_resources")  # again: Carol's unknown email is not reported twice
    wait_until(lambda: (r := stack.services.registry.get(CAROL)) and r.error_count >= 2, TIMEOUT,
               what="the second run")
    carol_reports = [e for e in activity(stack) if e.resource_no == CAROL and e.action == "track"]
    assert len(carol_reports) == 1 and carol_reports[0].outcome == "failed"

    resources = [{"resourceNo": BOB, "displayName": "Bob", "email": BOB_MAIL, "exchangeIntegrationEnabled": False}]
    assert stack.ds_control("POST", "/seed", json={"resources": resources}).status_code == 200
    stack.run_function("sync_resources")  # the first run only notes that Bob is missing (the two-run rule)
    noted = wait_until(lambda: (r := stack.services.registry.get(BOB)) and r.missing_since and r, TIMEOUT,
                       what="Bob noted as missing")
    assert noted.status == Status.TRACKED and board(stack, BOB) and subscriptions(stack, bob.user_id)
    stack.run_function("sync_resources")  # still switched off on the next run: untracked
    wait_until(lambda: (r := stack.services.registry.get(BOB)) and r.status == Status.UNTRACKED, TIMEOUT,
               what="Bob untracked")
    assert board(stack, BOB) == [] and subscriptions(stack, bob.user_id) == []
    assert stack.services.mappings.board_copies(bob.user_id) == []
    # Alice is untouched.
    assert board(stack, ALICE)


def test_an_unreadable_queue_message_is_parked_visibly_not_retried(stack: Stack) -> None:
    from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, poison_queue_name

    stack.services.work_queues.ensure()  # so the test can watch the poison queue from the start
    poison = stack.services.storage.queue(poison_queue_name(EXCHANGE_CHANGES_QUEUE))
    poison.clear_messages()
    stack.run_function("apply_exchange_changes", "this is not an exchange change")
    wait_until(lambda: poison.peek_messages(), TIMEOUT, what="the invalid message on the poison queue")
    [parked] = poison.peek_messages()
    assert parked.content == "this is not an exchange change" and parked.dequeue_count == 0
    # The activity entry follows the park (the monitor shows it a moment later).
    failed = wait_until(lambda: [e for e in stack.services.activity.recent() if e.direction == "to_planning"
                                 and e.outcome == "failed" and "invalid queue message" in e.detail],
                        TIMEOUT, what="the failed activity entry")
    assert "ExchangeChange" in failed[0].error
    poison.clear_messages()
