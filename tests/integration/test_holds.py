"""The mass-change guard against the real stack (Azurite, both emulators, the app under the dev host).

Five tracked resources (HA..HE); HE has more Outlook items and planner appointments than
`MASS_CHANGE_MAX_ITEMS` (3 here), the others fewer. Dime.Scheduler is reached through a small proxy
that can leave resources out of `GET /resource`, as a partial answer would. Each test starts from an
empty world (tables, queues, both emulators) and acts as the services and an admin would: timers run
through the host's admin call, the admin uses the HTTP API with an Easy Auth principal.
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiohttp import ClientSession, web

from connector.stores.holds import HoldKind
from connector.stores.registry import Status
from connector.stores.repositories import ACTIVITY_TABLE, SETTINGS_TABLE
from connector.stores.storage import EXCHANGE_CHANGES_QUEUE, PLANNING_CHANGES_QUEUE
from connector.web.identity import encode_principal
from connector.workers.to_outlook import TRACKED_TTL_SECONDS
from devtools.local_stack import Stack, wait_until
from devtools.planning_tenant import Tenant, appointment, clean_storage, email, tag_of
from devtools.serve import ServerThread
from tests.e2e.conftest import start_stack  # noqa: F401  (the local stack fixture)

PEOPLE = ("HA", "HB", "HC", "HD", "HE")
BIG = "HE"  # more than MASS_CHANGE_MAX_ITEMS items on the board and in its calendar
MAX_ITEMS = 3
TIMEOUT = 60
ADMIN = encode_principal("Ada Admin", "ada@contoso.example", ("Connector.Admin",))
TOMORROW = (datetime.now(UTC) + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)


# -- a Dime.Scheduler whose resource list can be partial ----------------------------------------------
@dataclass
class PartialResources:
    """A proxy in front of the Dime.Scheduler emulator: `GET /resource` leaves out `hidden`."""

    target: str = ""
    hidden: set[str] = field(default_factory=set)

    def app(self) -> web.Application:
        async def forward(request: web.Request) -> web.Response:
            headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
            async with ClientSession() as session, session.request(
                    request.method, self.target + request.path_qs, headers=headers, data=await request.read()) as answer:
                body = await answer.read()
                if request.method == "GET" and request.path.lower() == "/resource" and answer.status == 200:
                    body = json.dumps([r for r in json.loads(body) if str(r.get("resourceNo")) not in self.hidden]).encode()
                kept = {k: v for k, v in answer.headers.items()
                        if k.lower() not in ("content-length", "transfer-encoding", "content-encoding", "connection",
                                             "date", "server")}
                return web.Response(body=body, status=answer.status, headers=kept)

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", forward)
        return app


class Runs(logging.Handler):
    """Counts the host's "Executed 'Functions.<name>'" lines, to wait for a timer run to finish."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.done: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if message.startswith("Executed 'Functions."):
            self.done.append(message.split("'")[1].removeprefix("Functions.") + (" failed" if "(Failed" in message else ""))


@dataclass
class World:
    stack: Stack
    proxy: PartialResources
    runs: Runs
    tenant: Tenant
    planned: dict[str, list[str]] = field(default_factory=dict)  # resource → its planner appointments

    @property
    def services(self) -> Any:
        return self.stack.services

    def run(self, name: str) -> None:
        """Run a timer now and wait until it finished (it must not fail)."""
        before = self.runs.done.count(name)
        self.stack.run_function(name)
        wait_until(lambda: self.runs.done.count(name) > before or f"{name} failed" in self.runs.done, TIMEOUT,
                   what=f"{name} to finish")
        assert f"{name} failed" not in self.runs.done, f"{name} failed (see the log)"

    def poll_until(self, check: Callable[[], Any], what: str) -> None:
        """Run poll_planning until `check` holds (a worker's view of who is tracked lags a few seconds)."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            self.run("poll_planning")
            self.settle()
            with contextlib.suppress(AssertionError):
                wait_until(check, TRACKED_TTL_SECONDS + 2, what=what)
                return
            assert time.monotonic() < deadline, f"timed out waiting for {what}"

    def settle(self) -> None:
        queues = self.services.work_queues
        wait_until(lambda: queues.depth(PLANNING_CHANGES_QUEUE) == 0 and queues.depth(EXCHANGE_CHANGES_QUEUE) == 0,
                   TIMEOUT, what="the work queues to drain")

    def board(self, resource_no: str) -> list[dict[str, Any]]:
        items = self.stack.ds_control("GET", "/appointments").json()
        return [a for a in items if a["Origin"] == "exchange" and resource_no in a["ResourceNos"]]

    def planner_events(self, resource_no: str) -> list[dict[str, Any]]:
        return [e for e in self.tenant.events(resource_no) if tag_of(e)]

    def status(self, resource_no: str) -> str:
        record = self.services.registry.get(resource_no)
        return record.status if record else ""

    def api(self, method: str, path: str, principal: str | None = ADMIN, **headers: str) -> httpx.Response:
        sent = {"X-Requested-With": "XMLHttpRequest", **headers}
        if principal is not None:
            sent["X-MS-CLIENT-PRINCIPAL"] = principal
        return httpx.request(method, f"{self.stack.app.url}{path}", headers=sent, timeout=60)

    def release(self, hold: dict[str, Any], version: str | None = None) -> httpx.Response:
        """An admin's Release of a hold as listed (`If-Match`: its etag, or `version`)."""
        return self.api("POST", f"/api/admin/holds/{hold['id']}/release", **{"If-Match": version or hold["etag"]})

    def discard(self, hold: dict[str, Any], version: str | None = None) -> httpx.Response:
        return self.api("DELETE", f"/api/admin/holds/{hold['id']}", **{"If-Match": version or hold["etag"]})

    def holds(self) -> list[dict[str, Any]]:
        response = self.api("GET", "/api/admin/holds")
        assert response.status_code == 200, response.text
        return list(response.json()["holds"])

    def activity(self, action: str) -> list[Any]:
        return [e for e in self.services.activity.recent(days=1) if e.action == action]


@pytest.fixture(scope="module")
def stack_and_proxy(start_stack: Callable[..., Stack]) -> Iterator[tuple[Stack, PartialResources, Runs]]:  # noqa: F811
    proxy = PartialResources()
    server = ServerThread(proxy.app()).start()
    runs = Runs()
    logger = logging.getLogger("devhost")
    level, disabled = logger.level, logging.root.manager.disable
    logging.disable(logging.NOTSET)  # an earlier module may have switched logging off (the simulation does)
    logger.setLevel(logging.INFO)
    logger.addHandler(runs)
    try:
        stack = start_stack(DS_BASE_URL=server.url, MASS_CHANGE_MAX_ITEMS=str(MAX_ITEMS))
        proxy.target = stack.scheduler.url
        yield stack, proxy, runs
    finally:
        logger.removeHandler(runs)
        logger.setLevel(level)
        logging.disable(disabled)
        server.stop()


def _empty(stack: Stack) -> None:
    clean_storage(stack)
    for name in (ACTIVITY_TABLE, SETTINGS_TABLE):
        table = stack.services.storage.table(name)
        for entity in list(table.list_entities(select=["PartitionKey", "RowKey"])):
            with contextlib.suppress(Exception):
                table.delete_entity(entity["PartitionKey"], entity["RowKey"])
    stack.services.storage.queue(EXCHANGE_CHANGES_QUEUE).clear_messages()
    assert stack.graph_control("POST", "/reset").status_code in (200, 204)
    assert stack.ds_control("POST", "/reset").status_code in (200, 204)


@pytest.fixture
def world(stack_and_proxy: tuple[Stack, PartialResources, Runs]) -> Iterator[World]:
    """Five tracked resources, each with Outlook items on the board and planner events in Outlook."""
    stack, proxy, runs = stack_and_proxy
    proxy.hidden.clear()
    _empty(stack)
    items = {no: 5 if no == BIG else 2 for no in PEOPLE}
    # Fixed user ids: the same mailboxes in every test (the app caches who is tracked for a few seconds).
    graph_seed = {"users": [{"id": str(uuid.uuid5(uuid.NAMESPACE_DNS, email(no))), "displayName": no.title(),
                             "userPrincipalName": email(no), "mail": email(no)} for no in PEOPLE],
                  "events": {email(no): [
                      {"subject": f"{no} own {i}", "showAs": "busy",
                       "start": {"dateTime": (TOMORROW + timedelta(hours=8 + i)).isoformat()[:19], "timeZone": "UTC"},
                       "end": {"dateTime": (TOMORROW + timedelta(hours=8 + i, minutes=30)).isoformat()[:19],
                               "timeZone": "UTC"}} for i in range(items[no])] for no in PEOPLE}}
    seeded = stack.graph_control("POST", "/seed", json=graph_seed)
    assert seeded.status_code == 200, seeded.text
    user_ids = {u["userPrincipalName"].split("@")[0].upper(): u["id"] for u in seeded.json()["users"]}
    resources = [{"resourceNo": no, "displayName": no.title(), "email": email(no), "exchangeIntegrationEnabled": True}
                 for no in PEOPLE]
    assert stack.ds_control("POST", "/seed", json={"resources": resources}).status_code == 200
    w = World(stack, proxy, runs, Tenant(stack, user_ids))
    w.run("sync_resources")
    for no in PEOPLE:
        wait_until(lambda no=no: len(w.board(no)) == items[no], TIMEOUT, what=f"{no}'s Outlook items on the board")
        w.planned[no] = [w.tenant.create(appointment(f"Job {no} {i}", [no], TOMORROW + timedelta(days=1, hours=8 + i), 1))
                         for i in range(items[no] if no == BIG else 1)]
    w.run("poll_planning")  # the safety net brings every appointment at once (webhooks may still be on the way)
    w.settle()
    for no in PEOPLE:
        wait_until(lambda no=no: len(w.planner_events(no)) == len(w.planned[no]), TIMEOUT,
                   what=f"the planner's events in {no}'s calendar")
    try:
        yield w
    finally:
        with contextlib.suppress(AssertionError):
            w.settle()
        w.tenant.http.close()
        proxy.hidden.clear()
        stack.graph_control("DELETE", "/notifications/faults")
        stack.graph_control("DELETE", "/faults")
        stack.ds_control("DELETE", "/webhooks/faults")


def _everything_kept(w: World, people: tuple[str, ...]) -> None:
    for no in people:
        assert w.status(no) == Status.TRACKED, no
        assert len(w.board(no)) == (5 if no == BIG else 2), f"{no}'s Outlook items left the board"
        assert len(w.planner_events(no)) == len(w.planned[no]), f"the planner's events left {no}'s calendar"
        record = w.services.registry.get(no)
        assert record is not None and record.subscription_id, f"{no} lost its subscription"


# -- the two-run rule ---------------------------------------------------------------------------------
def test_a_resource_missing_once_is_kept_and_missing_twice_in_a_row_is_untracked(world: World) -> None:
    world.proxy.hidden = {"HA"}
    world.run("sync_resources")
    record = world.services.registry.get("HA")
    assert record is not None and record.status == Status.TRACKED and record.missing_since is not None
    shown = {r["resourceNo"]: r for r in world.api("GET", "/api/admin/resources").json()["resources"]}
    assert shown["HA"]["missingSince"] and shown["HB"]["missingSince"] is None  # on the monitor
    _everything_kept(world, ("HA",))

    world.proxy.hidden = set()  # back in between: simply kept
    world.run("sync_resources")
    record = world.services.registry.get("HA")
    assert record is not None and record.status == Status.TRACKED and record.missing_since is None

    world.proxy.hidden = {"HA"}
    world.run("sync_resources")
    assert world.status("HA") == Status.TRACKED
    world.run("sync_resources")  # missing twice in a row, one resource of five: untracked, nothing held
    assert world.status("HA") == Status.UNTRACKED
    assert world.board("HA") == [] and world.holds() == []
    # The planner's events in an untracked calendar go (one: under the limit).
    world.poll_until(lambda: world.planner_events("HA") == [], what="HA's planner events deleted")
    _everything_kept(world, ("HB", "HC", "HD", BIG))


def test_one_unknown_user_answer_from_graph_keeps_the_resource(world: World) -> None:
    fault = world.stack.graph_control("POST", "/faults", json={"method": "GET", "route": "/v1.0/users/{id}",
                                                               "status": 404, "count": 1})
    assert fault.status_code == 201, fault.text
    world.run("sync_resources")
    world.settle()  # the run fans each tracked resource's check out to the queue
    missing = [no for no in PEOPLE if (r := world.services.registry.get(no)) and r.missing_since is not None]
    assert len(missing) == 1  # one get_user answered 404: noted, not untracked
    _everything_kept(world, PEOPLE)
    world.run("sync_resources")  # Graph knows the user again
    world.settle()
    assert all(world.services.registry.get(no).missing_since is None for no in PEOPLE)  # type: ignore[union-attr]
    _everything_kept(world, PEOPLE)
    assert world.holds() == []


# -- the share rule -------------------------------------------------------------------------------------
def test_a_partial_resource_list_is_held_and_nothing_is_removed(world: World) -> None:
    world.proxy.hidden = {"HA", "HB"}  # two of five (40 % > 20 %, and at least 2)
    world.run("sync_resources")
    assert world.holds() == []  # missing once: only noted
    world.run("sync_resources")
    [hold] = world.holds()
    assert hold["kind"] == HoldKind.UNTRACK and sorted(hold["resources"]) == ["HA", "HB"]
    assert hold["items"] == 2 * 2 + 2 * 1 and "HA" in hold["what"] and "2 of 5" in hold["what"]
    assert datetime.fromisoformat(hold["since"]) <= datetime.now(UTC)
    _everything_kept(world, PEOPLE)
    world.run("poll_planning")
    world.settle()
    _everything_kept(world, PEOPLE)  # the planner's events in HA's and HB's calendars are untouched
    assert [e.outcome for e in world.activity("hold")] == ["held"]
    world.run("sync_resources")  # still missing: the same hold, not a second one
    assert [h["id"] for h in world.holds()] == [hold["id"]]

    world.proxy.hidden = set()  # the list is whole again: the hold resolves itself
    world.run("sync_resources")
    assert world.holds() == []
    _everything_kept(world, PEOPLE)


def test_releasing_a_held_untrack_applies_it_and_the_calendars_follow(world: World) -> None:
    world.proxy.hidden = {"HA", "HB", "HC"}
    world.run("sync_resources")
    world.run("sync_resources")
    [hold] = world.holds()
    released = world.release(hold)
    assert released.status_code == 200, released.text
    assert released.json()["released"] is True and "3 resource(s) untracked" in released.json()["outcome"]
    for no in ("HA", "HB", "HC"):
        assert world.status(no) == Status.UNTRACKED and world.board(no) == []
    untracks = [e for e in world.activity("untrack") if e.outcome == "applied"]
    assert sorted(e.resource_no for e in untracks) == ["HA", "HB", "HC"]
    assert all("released by Ada Admin" in e.detail for e in untracks)
    assert any("released by Ada Admin" in e.detail for e in world.activity("delete") if e.resource_no == "HA")
    world.settle()  # the release enqueued the planner's events of those calendars: deleted, not held again
    for no in ("HA", "HB", "HC"):
        wait_until(lambda no=no: world.planner_events(no) == [], TIMEOUT, what=f"{no}'s planner events deleted")
    assert world.holds() == []
    again = world.release(hold)  # idempotent
    assert again.status_code in (200, 404), again.text
    world.run("poll_planning")
    world.settle()
    assert world.holds() == [] and world.release(hold).status_code == 404
    _everything_kept(world, ("HD", BIG))
    assert [e.action for e in world.activity("release")] == ["release"]


def test_discarding_a_held_untrack_keeps_the_resources_until_they_are_missing_twice_more(world: World) -> None:
    world.proxy.hidden = {"HA", "HB"}
    world.run("sync_resources")
    world.run("sync_resources")
    [hold] = world.holds()
    discarded = world.discard(hold)
    assert discarded.status_code == 200 and discarded.json()["discarded"] is True, discarded.text
    assert world.holds() == []
    _everything_kept(world, PEOPLE)
    assert all(world.services.registry.get(no).missing_since is None for no in ("HA", "HB"))  # type: ignore[union-attr]
    assert any("discarded by Ada Admin" in e.detail for e in world.activity("discard"))
    world.run("sync_resources")  # still missing: counted again from one
    assert world.holds() == []
    world.run("sync_resources")
    [again] = world.holds()
    assert again["etag"] != hold["etag"] and again["since"] > hold["since"]  # held anew (same calendar, same id)
    _everything_kept(world, PEOPLE)


# -- one calendar, one board -------------------------------------------------------------------------------
def test_a_resource_whose_untrack_would_remove_many_items_is_held_alone(world: World) -> None:
    world.stack.ds_control("POST", "/seed", json={"resources": [
        {"resourceNo": BIG, "displayName": "He", "email": email(BIG), "exchangeIntegrationEnabled": False}]})
    world.run("sync_resources")
    world.run("sync_resources")  # one resource (under the share rule), but 5 board items and 5 events > 3
    [hold] = world.holds()
    assert hold["resourceNo"] == BIG and hold["items"] == 10 and "Exchange integration is off" in hold["what"]
    _everything_kept(world, PEOPLE)


def test_many_deletions_in_one_calendar_are_held_whichever_message_asks(world: World) -> None:
    world.stack.ds_control("POST", "/webhooks/faults", json={"drop": 100})  # the poll finds them all at once
    for guid in world.planned[BIG][:4]:
        world.tenant.delete(guid)
    world.run("poll_planning")
    world.settle()
    [hold] = world.holds()
    assert hold["kind"] == HoldKind.CALENDAR and hold["resourceNo"] == BIG and hold["items"] == 4
    assert len(world.planner_events(BIG)) == 5  # nothing deleted
    # A change about a held deletion (a late webhook, a retry) is skipped by the worker too.
    from connector.messages import PlanningChange

    world.services.work_queues.send_planning_change(PlanningChange(world.planned[BIG][0], "deleted"))
    world.settle()
    wait_until(lambda: [e for e in world.activity("delete") if e.outcome == "held"], TIMEOUT, what="the held skip")
    assert len(world.planner_events(BIG)) == 5

    # Discarded: nothing removed; the next poll holds it again (the planning still wants it).
    assert world.discard(hold).status_code == 200
    world.run("poll_planning")
    world.settle()
    [again] = world.holds()
    assert again["etag"] != hold["etag"] and again["since"] > hold["since"] and len(world.planner_events(BIG)) == 5

    released = world.release(again)
    assert released.status_code == 200, released.text
    world.settle()
    wait_until(lambda: len(world.planner_events(BIG)) == 1, TIMEOUT, what="the released deletions")
    deletes = [e for e in world.activity("delete") if e.outcome == "applied" and e.direction == "to_outlook"]
    assert len(deletes) == 4 and all("released by Ada Admin" in e.detail for e in deletes)
    world.run("poll_planning")
    assert world.holds() == [] and len(world.planner_events(BIG)) == 1


def test_many_removals_from_one_board_in_one_round_are_held_until_released(world: World) -> None:
    outlook = world.tenant.events(BIG)
    own = [e for e in outlook if not tag_of(e)]
    world.stack.graph_control("POST", "/notifications/faults", json={"drop": 100})  # one round sees them all
    for event in own[:4]:
        response = world.stack.graph_api("DELETE", f"/users/{email(BIG)}/events/{event['id']}",
                                         headers={"Prefer": 'IdType="ImmutableId"'})
        assert response.status_code == 204, response.text
    world.run("reconcile_exchange")
    world.settle()
    [hold] = wait_until(lambda: world.holds(), TIMEOUT, what="the board hold")
    assert hold["kind"] == HoldKind.BOARD and hold["resourceNo"] == BIG and hold["items"] == 4
    assert len(world.board(BIG)) == 5  # nothing left the board
    released = world.release(hold)
    assert released.status_code == 200, released.text
    world.settle()
    wait_until(lambda: len(world.board(BIG)) == 1, TIMEOUT, what="the released removals")
    removed = [e for e in world.activity("delete") if e.direction == "to_planning" and e.resource_no == BIG]
    assert len(removed) == 4 and all("released by Ada Admin" in e.detail for e in removed)
    assert world.holds() == []


# -- the API's refusals --------------------------------------------------------------------------------------
def test_the_holds_api_refuses_what_it_must(world: World) -> None:
    world.proxy.hidden = {"HA", "HB"}
    world.run("sync_resources")
    world.run("sync_resources")
    [hold] = world.holds()
    resource = encode_principal("Hb", email("HB"))
    assert world.api("GET", "/api/admin/holds", principal=None).status_code == 401
    assert world.api("GET", "/api/admin/holds", principal=resource).status_code == 403
    assert world.api("POST", f"/api/admin/holds/{hold['id']}/release", principal=resource).status_code == 403
    assert world.api("DELETE", f"/api/admin/holds/{hold['id']}", principal=resource).status_code == 403
    # Cross-site: a write without X-Requested-With, or from another origin, is refused.
    bare = httpx.post(f"{world.stack.app.url}/api/admin/holds/{hold['id']}/release",
                      headers={"X-MS-CLIENT-PRINCIPAL": ADMIN}, timeout=30)
    assert bare.status_code == 403 and "X-Requested-With" in bare.text
    assert world.api("DELETE", f"/api/admin/holds/{hold['id']}", Origin="https://evil.example").status_code == 403
    unknown = world.api("POST", "/api/admin/holds/0123456789abcdef/release")
    assert unknown.status_code == 404 and "no held change" in unknown.json()["error"]["message"]
    assert world.api("DELETE", "/api/admin/holds/0123456789abcdef").status_code == 404
    bad = world.api("POST", "/api/admin/holds/not-a-hold/release")
    assert bad.status_code == 400 and bad.json()["error"]["field"] == "id"
    assert world.api("DELETE", "/api/admin/holds/" + "A" * 300).status_code == 400
    # Nothing of it changed anything.
    assert [h["id"] for h in world.holds()] == [hold["id"]]
    _everything_kept(world, PEOPLE)


def test_a_release_or_discard_acts_only_on_the_version_the_admin_saw(world: World) -> None:
    world.proxy.hidden = {"HA", "HB"}
    world.run("sync_resources")
    world.run("sync_resources")
    [seen] = world.holds()
    assert seen["etag"]
    for unversioned in (world.api("POST", f"/api/admin/holds/{seen['id']}/release"),
                        world.api("DELETE", f"/api/admin/holds/{seen['id']}")):
        assert unversioned.status_code == 428 and "If-Match" in unversioned.json()["error"]["message"]
    world.proxy.hidden = {"HA", "HB", "HC"}  # the hold grows while the admin looks at it
    world.run("sync_resources")
    world.run("sync_resources")
    [grown] = world.holds()
    assert grown["id"] == seen["id"] and sorted(grown["resources"]) == ["HA", "HB", "HC"]
    assert grown["etag"] != seen["etag"]
    for stale in (world.release(seen), world.discard(seen)):
        assert stale.status_code == 412, stale.text
        message = stale.json()["error"]["message"]
        assert "changed since you read it" in message and "nothing was released or discarded" in message
    assert world.holds() == [grown]  # nothing changed: neither released nor discarded
    _everything_kept(world, PEOPLE)
    assert world.activity("release") == [] and world.activity("discard") == []
    released = world.release(grown)
    assert released.status_code == 200 and "3 resource(s) untracked" in released.json()["outcome"], released.text
