"""Settings and admin API on the real app under the dev host: the authorisation matrix, validation,
optimistic concurrency, cross-site protection, locks and the global mode."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from connector.stores.registry import ResourceRecord
from connector.web.identity import encode_principal
from tests.e2e.conftest import Stack

ROOT = Path(__file__).resolve().parents[2]
ADMIN_ROLE = "Connector.Admin"
XHR = {"X-Requested-With": "XMLHttpRequest"}


def as_user(email: str, *roles: str) -> dict[str, str]:
    return {"X-MS-CLIENT-PRINCIPAL": encode_principal(email.split("@")[0], email, roles)}


ALICE = as_user("Alice@Contoso.example")  # email claims match case-insensitively
BOB = as_user("bob@contoso.example")
ADMIN = as_user("admin@contoso.example", ADMIN_ROLE)
STRANGER = as_user("dave@contoso.example")


@pytest.fixture(scope="module")
def stack(start_stack: Callable[..., Stack]) -> Stack:
    stack = start_stack()
    table = stack.services.repositories.settings  # Azurite is shared by the session: start from the defaults
    for partition, row in (("global", "defaults"), ("global", "mode"), ("resource", "ALICE"), ("resource", "BOB")):
        table.delete(partition, row)
    for no, email in (("ALICE", "alice@contoso.example"), ("BOB", "bob@contoso.example")):
        stack.services.registry.save(ResourceRecord(no, email, no.title(), f"user-{no}"))
        stack.services.resource_settings.ensure_account(no)
    return stack


def call(stack: Stack, method: str, path: str, headers: dict[str, str], body: Any = None,
         etag: str | None = None) -> httpx.Response:
    extra = dict(headers)
    if etag:
        extra["If-Match"] = etag
    return httpx.request(method, f"{stack.app.url}{path}", headers=extra, json=body, timeout=30)


def signed_out(answer: httpx.Response, xhr: bool) -> bool:
    """Easy Auth's answer to a request without a session (the dev host's stand-in): the app never saw it."""
    if xhr:
        return answer.status_code == 401 and "json" not in answer.headers.get("Content-Type", "")
    return answer.status_code == 302 and answer.headers["Location"].startswith("/.auth/login/aad?")


def test_authorisation_matrix(stack: Stack) -> None:
    # Without a session the app is never reached: Easy Auth sends a browser to sign in, a script gets 401.
    for path in ("/api/settings/me", "/api/admin/resources"):
        assert signed_out(call(stack, "GET", path, {}), xhr=False), path
        assert signed_out(call(stack, "GET", path, XHR), xhr=True), path
    # A session whose principal the app cannot read (only a test can send one): the app's own 401.
    unreadable = call(stack, "GET", "/api/settings/me", {"X-MS-CLIENT-PRINCIPAL": "%%%"})
    assert unreadable.status_code == 401 and unreadable.json()["error"]
    mine = call(stack, "GET", "/api/settings/me", ALICE)
    assert mine.status_code == 200 and mine.json()["resource"]["resourceNo"] == "ALICE" and mine.headers["ETag"]
    assert mine.json()["settings"]["privateItems"] == "masked"  # the documented default
    stranger = call(stack, "GET", "/api/settings/me", STRANGER)
    assert stranger.status_code == 403 and "no resource" in stranger.json()["error"]["message"]
    # Resource A on B: resources have no route to another's settings, and admin routes refuse them.
    assert call(stack, "GET", "/api/admin/resources/BOB/settings", ALICE).status_code == 403
    assert call(stack, "GET", "/api/admin/resources", ALICE).status_code == 403
    resources = call(stack, "GET", "/api/admin/resources", ADMIN)
    assert resources.status_code == 200
    assert {r["resourceNo"] for r in resources.json()["resources"]} >= {"ALICE", "BOB"}
    assert call(stack, "GET", "/api/admin/resources/BOB/settings", ADMIN).status_code == 200
    assert call(stack, "GET", "/api/admin/resources/NOBODY/settings", ADMIN).status_code == 404


def test_resource_saves_own_settings_with_etag(stack: Stack) -> None:
    first = call(stack, "GET", "/api/settings/me", ALICE)
    saved = call(stack, "PUT", "/api/settings/me", {**ALICE, **XHR}, {"privateItems": "shown"}, first.headers["ETag"])
    assert saved.status_code == 200, saved.text
    assert saved.json()["settings"]["privateItems"] == "shown" and saved.headers["ETag"] != first.headers["ETag"]
    stale = call(stack, "PUT", "/api/settings/me", {**ALICE, **XHR}, {"privateItems": "hidden"}, first.headers["ETag"])
    assert stale.status_code == 412
    assert call(stack, "GET", "/api/settings/me", ALICE).json()["settings"]["privateItems"] == "shown"
    assert call(stack, "PUT", "/api/settings/me", {**ALICE, **XHR}, {"privateItems": "hidden"}).status_code == 428


@pytest.mark.parametrize(
    ("body", "field"),
    [({"colour": "red"}, "colour"), ({"showAs": ["busy", "asleep"]}, "showAs"), ({"privateItems": "visible"}, "privateItems"),
     ({"syncToPlanning": "yes"}, "syncToPlanning"), ([1, 2], "body")],
)
def test_invalid_settings_are_refused_naming_the_field_and_change_nothing(stack: Stack, body: Any, field: str) -> None:
    before = call(stack, "GET", "/api/settings/me", BOB)
    answer = call(stack, "PUT", "/api/settings/me", {**BOB, **XHR}, body, before.headers["ETag"])
    assert answer.status_code == 400 and answer.json()["error"]["field"] == field
    after = call(stack, "GET", "/api/settings/me", BOB)
    assert after.json()["settings"] == before.json()["settings"] and after.headers["ETag"] == before.headers["ETag"]


def test_malformed_json_is_a_400(stack: Stack) -> None:
    etag = call(stack, "GET", "/api/settings/me", BOB).headers["ETag"]
    answer = httpx.put(f"{stack.app.url}/api/settings/me", content=b"{nope", timeout=10,
                       headers={**BOB, **XHR, "If-Match": etag, "Content-Type": "application/json"})
    assert answer.status_code == 400 and answer.json()["error"]["field"] == "body"


def test_cross_site_writes_are_refused(stack: Stack) -> None:
    etag = call(stack, "GET", "/api/settings/me", BOB).headers["ETag"]
    assert call(stack, "PUT", "/api/settings/me", BOB, {"privateItems": "hidden"}, etag).status_code == 403
    evil = {**BOB, **XHR, "Origin": "https://evil.example"}
    assert call(stack, "PUT", "/api/settings/me", evil, {"privateItems": "hidden"}, etag).status_code == 403
    assert call(stack, "GET", "/api/settings/me", BOB).headers["ETag"] == etag


def test_admin_lock_stops_the_resource_but_not_the_admin(stack: Stack) -> None:
    view = call(stack, "GET", "/api/admin/resources/BOB/settings", ADMIN)
    locked = call(stack, "PUT", "/api/admin/resources/BOB/settings", {**ADMIN, **XHR},
                  {"settings": {"privateItems": "hidden"}, "locks": ["privateItems"]}, view.headers["ETag"])
    assert locked.status_code == 200, locked.text
    mine = call(stack, "GET", "/api/settings/me", BOB)
    assert mine.json()["editable"]["privateItems"] is False and mine.json()["editable"]["showAs"] is True
    refused = call(stack, "PUT", "/api/settings/me", {**BOB, **XHR}, {"privateItems": "shown"}, mine.headers["ETag"])
    assert refused.status_code == 403 and refused.json()["error"]["field"] == "privateItems"
    allowed = call(stack, "PUT", "/api/settings/me", {**BOB, **XHR}, {"showAs": ["busy", "oof"]}, mine.headers["ETag"])
    assert allowed.status_code == 200 and allowed.json()["settings"]["privateItems"] == "hidden"
    override = call(stack, "PUT", "/api/admin/resources/BOB/settings", {**ADMIN, **XHR},
                    {"settings": {"privateItems": "shown"}}, allowed.headers["ETag"])
    assert override.status_code == 200 and override.json()["settings"]["privateItems"] == "shown"


def test_global_mode_applies_the_defaults_to_everyone(stack: Stack) -> None:
    defaults = call(stack, "GET", "/api/admin/defaults", ADMIN)
    assert defaults.status_code == 200 and defaults.json()["mode"] == "per_resource"
    assert call(stack, "PUT", "/api/admin/defaults", {**ADMIN, **XHR}, {"mode": "anarchy"},
                defaults.headers["ETag"]).status_code == 400
    switched = call(stack, "PUT", "/api/admin/defaults", {**ADMIN, **XHR},
                    {"mode": "global", "settings": {"privateItems": "hidden"}}, defaults.headers["ETag"])
    assert switched.status_code == 200, switched.text
    try:
        mine = call(stack, "GET", "/api/settings/me", ALICE)
        assert mine.json()["mode"] == "global" and mine.json()["effective"]["privateItems"] == "hidden"
        assert not any(mine.json()["editable"].values())
        assert call(stack, "PUT", "/api/settings/me", {**ALICE, **XHR}, {"privateItems": "shown"},
                    mine.headers["ETag"]).status_code == 403
    finally:
        back = call(stack, "GET", "/api/admin/defaults", ADMIN)
        call(stack, "PUT", "/api/admin/defaults", {**ADMIN, **XHR}, {"mode": "per_resource"}, back.headers["ETag"])


def test_pages_are_served_with_a_strict_content_security_policy(stack: Stack) -> None:
    for path, marker in (("/api/ui/", "My calendar sync settings"), ("/api/ui/admin", "monitor"),
                         ("/api/ui/app.css", "--accent"), ("/api/ui/settings.js", "If-Match")):
        page = httpx.get(f"{stack.app.url}{path}", headers=ALICE, timeout=10)
        assert page.status_code == 200 and marker in page.text
        assert page.headers["Content-Security-Policy"].startswith("default-src 'self'")
        assert signed_out(httpx.get(f"{stack.app.url}{path}", timeout=10), xhr=False), path  # pages need sign-in
    for bad in ("/api/ui/../function_app.py", "/api/ui/%2e%2e/host.json", "/api/ui/missing.js"):
        assert httpx.get(f"{stack.app.url}{bad}", headers=ALICE, timeout=10).status_code == 404
        assert httpx.get(f"{stack.app.url}{bad}", timeout=10).status_code == 302  # nothing is revealed signed out


def test_easy_auth_lets_only_the_listed_paths_reach_the_app(stack: Stack) -> None:
    anonymous = set(json.loads((ROOT / "infra/app/anonymous-paths.json").read_text())["paths"])
    routes = [("/" + str(spec.trigger.route).replace("{*path}", "").replace("{resource_no}", "BOB").replace(
        "{key}", "k").replace("{queue}", "planning-changes").replace("{message_id}", "m"), str(getattr(m, "value", m)))
        for spec in stack.app.functions if spec.trigger_type == "httpTrigger" for m in spec.trigger.methods]
    assert anonymous <= {path for path, _ in routes}  # every listed path is a route of the app
    for path, method in routes:
        answer = httpx.request(method, f"{stack.app.url}{path}", params={"validationToken": "probe"}, timeout=30)
        if path in anonymous:  # the app's own answer: a handshake, health (200/503), or the webhook's refusal
            assert answer.status_code not in (302, 500), f"{method} {path}: {answer.status_code}"
        else:
            assert signed_out(answer, xhr=False), f"{method} {path} reached the app without a session"
    assert httpx.post(f"{stack.app.url}/api/graph/notifications?validationToken=probe", timeout=30).text == "probe"
