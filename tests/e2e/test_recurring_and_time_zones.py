"""End to end, real-world calendar semantics: recurring series whose occurrences arrive as delta stubs,
silently deleted occurrences, HTML bodies, and all-day items in mailboxes of different time zones.

Outlook (Graph emulator) ⇄ the connector under the dev host ⇄ the planning board (Dime.Scheduler
emulator), with Azurite. Each uncertain or configurable behaviour of Graph runs once per variant,
switched on the running emulator through `PATCH /_emulator/config`; each variant works on its own
resource (mailbox), so rounds of one never see another's items.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from connector.sync.to_planning import PRIVATE_SUBJECT
from devtools.planning_tenant import Tenant, appointment, email, setup_tenant
from tests.e2e.conftest import Stack, wait_until
from tests.e2e.test_outlook_to_planning import Outlook, board, gtime, iso, on_board, settle

TIMEOUT = 60  # generous bound for a noisy shared machine: a poll, not a timing assertion
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
ZONES = {"UTC": "UTC", "BRU": "Romance Standard Time", "PAC": "Pacific Standard Time"}
IANA = {"UTC": "UTC", "BRU": "Europe/Brussels", "PAC": "America/Los_Angeles"}
RESOURCES = ["SERSTUB", "SERFULL", "DELNONE", "DELREMOVED", "HTMLTEXT", "HTMLONLY", "ZUTC", "ZBRU", "ZPAC", "ZMOVE"]
DEFAULT_KNOBS = {"delta_occurrences": "stub", "occurrence_delete_signal": "none", "honour_body_content_type": True}


@pytest.fixture(scope="module")
def tenant(start_stack: Callable[..., Stack]) -> Iterator[Tenant]:
    stack = start_stack()
    tenant = setup_tenant(stack, RESOURCES, register=False)
    for name in ("ZUTC", "ZBRU", "ZPAC", "ZMOVE"):  # the mailboxes' own zones, as their users set them
        zone = ZONES[name[1:]] if name != "ZMOVE" else ZONES["PAC"]
        answer = stack.graph_api("PATCH", f"/users/{email(name)}/mailboxSettings", json={"timeZone": zone})
        assert answer.status_code == 200, answer.text
    # Series already in two calendars before tracking: they arrive in the first (full) round as stubs.
    tomorrow = TODAY + timedelta(days=1, hours=7)
    daily = {"type": "daily", "interval": 1}
    seeded = stack.graph_control("POST", "/seed", json={"events": {
        email("SERSTUB"): [series("Morning briefing", tomorrow, daily, 3)],
        email("DELNONE"): [series("Key handover", tomorrow, daily, 2, sensitivity="private")]}})
    assert seeded.status_code == 200, seeded.text
    stack.graph_control("POST", "/stats/reset")
    stack.run_function("sync_resources")
    for name in RESOURCES:
        wait_until(lambda n=name: (r := stack.services.registry.get(n)) and r.subscription_id, TIMEOUT,
                   what=f"{name} tracked with a subscription")
    settle(stack)
    FIRST_ROUNDS.update(stack.stats("graph"))
    yield tenant
    tenant.close()


FIRST_ROUNDS: dict[str, int] = {}  # Graph requests of the first full rounds of every mailbox


@pytest.fixture
def knobs(tenant: Tenant) -> Iterator[Callable[..., None]]:
    """Set emulator knobs for one test; the defaults (the strict behaviour) come back afterwards."""
    def set_knobs(**values: Any) -> None:
        answer = tenant.stack.graph_control("PATCH", "/config", json=values)
        assert answer.status_code == 200, answer.text

    yield set_knobs
    set_knobs(**DEFAULT_KNOBS)


def next_weekday(weekday: int) -> datetime:
    ahead = (weekday - TODAY.weekday() - 1) % 7 + 1
    return TODAY + timedelta(days=ahead)


def series(subject: str, start: datetime, pattern: dict[str, Any], count: int, **fields: Any) -> dict[str, Any]:
    return {"subject": subject, "start": gtime(start), "end": gtime(start + timedelta(minutes=30)),
            "body": {"contentType": "text", "content": f"{subject}: bring the checklist"}, "showAs": "busy",
            "recurrence": {"pattern": pattern, "range": {"type": "numbered", "startDate": start.strftime("%Y-%m-%d"),
                                                         "numberOfOccurrences": count}}, **fields}


def instances(outlook: Outlook, master_id: str) -> list[dict[str, Any]]:
    return outlook.instances(master_id, TODAY - timedelta(days=1), TODAY + timedelta(days=170))


def subjects(stack: Stack, ids: list[str]) -> list[str | None]:
    items = {a["ExchangeId"]: a for a in board(stack)}
    return [items[i]["Subject"] if i in items else None for i in ids]


# -- point 1: series ------------------------------------------------------------------------------
@pytest.mark.parametrize("rendering", ["stub", "full"])
def test_weekly_and_relative_monthly_series_with_exceptions_reach_the_board_and_follow_series_edits(
        tenant: Tenant, knobs: Callable[..., None], rendering: str) -> None:
    knobs(delta_occurrences=rendering)
    stack = tenant.stack
    outlook = Outlook(stack, email("SERSTUB" if rendering == "stub" else "SERFULL"))
    weekly = outlook.create(series("Pump inspection", next_weekday(0) + timedelta(hours=8),
                                   {"type": "weekly", "interval": 1, "daysOfWeek": ["monday"]}, 3))
    first_of_next_month = (TODAY.replace(day=1) + timedelta(days=32)).replace(day=1)
    monthly = outlook.create(series("Audit", first_of_next_month + timedelta(hours=13),
                                    {"type": "relativeMonthly", "interval": 1, "daysOfWeek": ["tuesday"],
                                     "index": "second"}, 3, sensitivity="private"))
    weekly_ids = [i["id"] for i in instances(outlook, weekly["id"])]
    monthly_items = instances(outlook, monthly["id"])
    assert len(weekly_ids) == 3 and len(monthly_items) == 3
    assert all(datetime.fromisoformat(i["start"]["dateTime"][:10]).weekday() == 1 for i in monthly_items)
    exception = weekly_ids[1]
    outlook.patch(exception, {"subject": "Pump inspection (with the supplier)"})

    wait_until(lambda: subjects(stack, weekly_ids) == ["Pump inspection", "Pump inspection (with the supplier)",
                                                       "Pump inspection"], TIMEOUT, what="the weekly series on the board")
    monthly_ids = [i["id"] for i in monthly_items]
    wait_until(lambda: subjects(stack, monthly_ids) == [PRIVATE_SUBJECT] * 3, TIMEOUT,
               what="the private monthly series on the board, masked")
    first = on_board(stack, weekly_ids[0])
    assert first is not None and first["Body"] == "Pump inspection: bring the checklist" and first["ShowAs"] == 3
    assert not on_board(stack, monthly_ids[0])["Body"]  # type: ignore[index]  # masked: no body (blank or never set)
    assert on_board(stack, weekly["id"]) is None  # the master itself is not a board item

    # A series edit in Outlook reaches every occurrence; the exception keeps its own subject.
    outlook.patch(weekly["id"], {"subject": "Pump inspection, hall B", "importance": "high"})
    wait_until(lambda: subjects(stack, weekly_ids) == ["Pump inspection, hall B", "Pump inspection (with the supplier)",
                                                       "Pump inspection, hall B"], TIMEOUT, what="the series edit")
    assert all(on_board(stack, i)["Importance"] == 1 for i in weekly_ids)  # type: ignore[index]
    # Show-as free (filtered out by default): the whole series leaves the board, and comes back.
    outlook.patch(weekly["id"], {"showAs": "free"})
    wait_until(lambda: subjects(stack, weekly_ids) == [None] * 3, TIMEOUT, what="the free series off the board")
    outlook.patch(weekly["id"], {"showAs": "oof"})
    wait_until(lambda: all(s is not None for s in subjects(stack, weekly_ids)), TIMEOUT,
               what="the series back on the board")
    assert all(on_board(stack, i)["ShowAs"] == 4 for i in weekly_ids)  # type: ignore[index]


def test_series_present_before_tracking_arrive_completed_from_their_master_read_once(tenant: Tenant) -> None:
    stack = tenant.stack
    for resource, subject, count in (("SERSTUB", "Morning briefing", 3), ("DELNONE", PRIVATE_SUBJECT, 2)):
        items = [a for a in board(stack, resource) if a["Subject"] == subject]
        assert len(items) == count, (resource, [a["Subject"] for a in board(stack, resource)])
        assert all(a["ShowAs"] == 3 for a in items)
    # Each series master was read once in its mailbox's round, not once per occurrence.
    assert FIRST_ROUNDS.get("GET /v1.0/users/{id}/events/{id}") == 2
    assert "GET /v1.0/users/{id}/events/{id}/instances" not in FIRST_ROUNDS  # full rounds need no re-application


@pytest.mark.parametrize("signal", ["none", "removed"])
def test_a_deleted_occurrence_leaves_the_board_whether_or_not_delta_signals_it(
        tenant: Tenant, knobs: Callable[..., None], signal: str) -> None:
    knobs(occurrence_delete_signal=signal)
    stack = tenant.stack
    outlook = Outlook(stack, email("DELNONE" if signal == "none" else "DELREMOVED"))
    master = outlook.create(series("Site round", next_weekday(2) + timedelta(hours=7),
                                   {"type": "weekly", "interval": 1, "daysOfWeek": ["wednesday"]}, 3))
    ids = [i["id"] for i in instances(outlook, master["id"])]
    wait_until(lambda: subjects(stack, ids) == ["Site round"] * 3, TIMEOUT, what="the series on the board")
    outlook.delete(ids[1])
    wait_until(lambda: subjects(stack, ids) == ["Site round", None, "Site round"], TIMEOUT,
               what="the deleted occurrence off the board")
    settle(stack)
    assert subjects(stack, ids) == ["Site round", None, "Site round"]
    mapped = stack.services.mappings.series_copies(outlook.user_id, master["id"])
    assert sorted(c.event_id for c in mapped) == sorted([ids[0], ids[2]])  # the index follows


# -- point 2: bodies ------------------------------------------------------------------------------
HTML = ('<html><head><meta http-equiv="Content-Type" content="text/html; charset=utf-8"><style>p {margin:0}</style>'
        '</head><body><p>Bring the&nbsp;ladder</p><div>R&amp;D &lt;team&gt;<br>Gate 2</div>'
        '<script>track()</script></body></html>')


@pytest.mark.parametrize("prefer_honoured", [True, False])
def test_bodies_reach_the_board_as_readable_text_and_own_events_stay_echoes(
        tenant: Tenant, knobs: Callable[..., None], prefer_honoured: bool) -> None:
    knobs(honour_body_content_type=prefer_honoured)
    stack = tenant.stack
    resource = "HTMLTEXT" if prefer_honoured else "HTMLONLY"
    outlook = Outlook(stack, email(resource))
    start = TODAY + timedelta(days=4, hours=9)
    html = outlook.create({"subject": "Ladder job", "start": gtime(start), "end": gtime(start + timedelta(hours=1)),
                           "body": {"contentType": "html", "content": HTML}})
    text = outlook.create({"subject": "Call ahead", "start": gtime(start + timedelta(hours=2)),
                           "end": gtime(start + timedelta(hours=3)),
                           "body": {"contentType": "text", "content": "Line one\nLine two & more"}})
    item = wait_until(lambda: on_board(stack, html["id"]), TIMEOUT, what="the HTML item on the board")
    assert item["Body"] == "Bring the ladder\nR&D <team>\nGate 2"
    item = wait_until(lambda: on_board(stack, text["id"]), TIMEOUT, what="the text item on the board")
    assert item["Body"] == "Line one\nLine two & more"

    # The connector's own event (text body written) reads back as HTML when the Prefer is ignored:
    # still recognised as unchanged, so nothing is restored or re-written.
    guid = tenant.create(appointment("Valve check", [resource], start=start + timedelta(days=1)))
    [event] = tenant.wait_events(resource, guid, 1, timeout=TIMEOUT)
    before = event["changeKey"]
    outlook.patch(html["id"], {"subject": "Ladder job (confirmed)"})  # a change, so a round runs
    wait_until(lambda: (a := on_board(stack, html["id"])) and a["Subject"] == "Ladder job (confirmed)", TIMEOUT,
               what="the edit on the board")
    stack.run_function("reconcile_exchange")
    settle(stack)
    [after] = tenant.events_of(resource, guid)
    assert after["changeKey"] == before
    restores = [e for e in stack.services.activity.recent(days=1) if e.resource_no == resource and e.action == "restore"]
    assert restores == []


# -- point 3: all-day items and mailbox time zones ---------------------------------------------
def local_midnight(day: date, zone_key: str) -> datetime:
    return datetime.combine(day, time(), ZoneInfo(IANA[zone_key])).astimezone(UTC)


def stored(stack: Stack, user: str, event_id: str) -> dict[str, Any]:
    """The instants the emulator stores (what a calendar in another zone would show)."""
    found = stack.graph_control("GET", "/events", params={"user": user}).json()["value"]
    return next(e for e in found if event_id in (e["id"], e["immutableId"]))


@pytest.mark.parametrize("zone_key", ["UTC", "BRU", "PAC"])
def test_all_day_items_are_right_in_both_directions_for_the_mailboxs_zone(tenant: Tenant, zone_key: str) -> None:
    stack = tenant.stack
    resource = f"Z{zone_key}"
    zone = ZONES[zone_key]
    record = stack.services.registry.get(resource)
    assert record is not None and record.time_zone == zone

    # Outlook → board: the technician's all-day item, written in their zone, covers their local day.
    outlook = Outlook(stack, email(resource))
    day = (TODAY + timedelta(days=10)).date()
    created = outlook.create({"subject": "Training day", "isAllDay": True, "showAs": "oof",
                              "start": {"dateTime": f"{day}T00:00:00", "timeZone": zone},
                              "end": {"dateTime": f"{day + timedelta(days=2)}T00:00:00", "timeZone": zone}})
    item = wait_until(lambda: on_board(stack, created["id"]), TIMEOUT, what="the all-day item on the board")
    # Dime.Scheduler's Exchange import has no all-day flag: the item covers the person's local days.
    assert (item["StartDate"], item["EndDate"]) == (iso(local_midnight(day, zone_key)),
                                                    iso(local_midnight(day + timedelta(days=2), zone_key)))

    # Board → Outlook: the planner's all-day appointment becomes an all-day event on those days, in the zone.
    planned_day = day + timedelta(days=5)
    start = datetime.combine(planned_day, time(), UTC)
    guid = tenant.create(appointment("Inventory", [resource], start=start, hours=24, IsAllDayEvent=True))
    [event] = tenant.wait_events(resource, guid, 1, timeout=TIMEOUT)
    assert event["isAllDay"] is True and event["originalStartTimeZone"] == zone
    assert event["start"] == {"dateTime": f"{planned_day}T00:00:00.0000000", "timeZone": "UTC"}
    assert event["end"] == {"dateTime": f"{planned_day + timedelta(days=1)}T00:00:00.0000000", "timeZone": "UTC"}
    instants = stored(stack, email(resource), event["id"])
    assert instants["start"].startswith(local_midnight(planned_day, zone_key).strftime("%Y-%m-%dT%H:%M:%S"))
    # Read back through delta, the event is the connector's own, unchanged: nothing restored or imported.
    stack.run_function("reconcile_exchange")
    settle(stack)
    assert tenant.events_of(resource, guid)[0]["changeKey"] == event["changeKey"]
    assert all(a["ExchangeId"] != event["id"] for a in board(stack, resource))


def test_a_changed_mailbox_zone_is_read_on_the_next_sync_resources_and_moves_all_day_items(tenant: Tenant) -> None:
    stack = tenant.stack
    outlook = Outlook(stack, email("ZMOVE"))
    day = (TODAY + timedelta(days=12)).date()
    created = outlook.create({"subject": "Leave", "isAllDay": True, "showAs": "oof",
                              "start": {"dateTime": f"{day}T00:00:00", "timeZone": ZONES["PAC"]},
                              "end": {"dateTime": f"{day + timedelta(days=1)}T00:00:00", "timeZone": ZONES["PAC"]}})
    wait_until(lambda: (a := on_board(stack, created["id"])) and a["StartDate"] == iso(local_midnight(day, "PAC")),
               TIMEOUT, what="the item at Pacific midnight")
    # The person moves to Brussels and changes the mailbox's zone: the connector picks it up.
    answer = stack.graph_api("PATCH", f"/users/{email('ZMOVE')}/mailboxSettings", json={"timeZone": ZONES["BRU"]})
    assert answer.status_code == 200
    stack.run_function("sync_resources")
    wait_until(lambda: (r := stack.services.registry.get("ZMOVE")) and r.time_zone == ZONES["BRU"], TIMEOUT,
               what="the new zone in the registry")
    stack.run_function("reconcile_exchange")
    wait_until(lambda: (a := on_board(stack, created["id"])) and a["StartDate"] == iso(local_midnight(day, "BRU")),
               TIMEOUT, what="the item at Brussels midnight")
