"""The Easy Auth stand-in in front of the dev host enforces what auth.bicep sets up in Azure: without a
session, only the paths of infra/app/anonymous-paths.json (the one list both read) reach the app; a
browser is sent to sign in (302), a script's request gets 401, and `/.auth/` is Easy Auth's own.

A probe app answers on every path and records what reached it, so each test sees whether the request
got through, and with which principal."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from connector.web.identity import encode_principal
from devtools.devhost import DevHost, DevHostError
from devtools.devhost.easyauth import ANONYMOUS_PATHS_FILE, COOKIE, EasyAuthRule, load_easy_auth

from .conftest import write_root

APP = "tests.devhost.apps.easyauth_app:app"
REPO = Path(__file__).resolve().parents[2]
ANONYMOUS = tuple(json.loads((REPO / ANONYMOUS_PATHS_FILE).read_text())["paths"])
XHR = {"X-Requested-With": "XMLHttpRequest"}
ALICE = encode_principal("alice", "alice@contoso.example")
# What the settings page and the monitor are made of, and the JSON routes they call: none is anonymous.
PROTECTED = ("/api/ui/", "/api/ui", "/api/ui/admin", "/api/ui/index.html", "/api/ui/common.js", "/api/ui/app.css",
             "/api/ui/missing.js", "/api/settings/me", "/api/admin/resources", "/api/admin/activity?limit=5", "/")
# One character off an anonymous path is not anonymous: Easy Auth matches whole paths.
NEAR_MISSES = ("/api/health/", "/API/HEALTH", "/api/healthz", "/api/health/x", "/api/graph",
               "/api/graph/notifications/x", "/api/scheduler", "/api/schedulernotifications")


def project_root(path: Path, anonymous: dict[str, Any] | None = None) -> Path:
    """A script root like the repo's: routePrefix "" and the repo's anonymous-paths.json (or ``anonymous``)."""
    root = write_root(path, {"extensions": {"http": {"routePrefix": ""}}})
    target = root / ANONYMOUS_PATHS_FILE
    target.parent.mkdir(parents=True)
    if anonymous is None:
        shutil.copy(REPO / ANONYMOUS_PATHS_FILE, target)
    else:
        target.write_text(json.dumps(anonymous))
    return root


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevHost]:
    with DevHost(APP, project_root(tmp_path_factory.mktemp("easyauth")), settings={}, timers=False) as running:
        yield running


@pytest.fixture
def client(host: DevHost) -> Iterator[httpx.Client]:
    host.module.REACHED.clear()
    with httpx.Client(base_url=host.url, timeout=10) as c:
        yield c


def reached(host: DevHost) -> list[dict[str, Any]]:
    return list(host.module.REACHED)


def redirect_target(response: httpx.Response) -> str:
    """Where a 302 to sign-in comes back to (its post_login_redirect_uri)."""
    location = urlsplit(response.headers["Location"])
    assert location.path == "/.auth/login/aad" and not location.netloc
    [target] = parse_qs(location.query)["post_login_redirect_uri"]
    return target


def test_the_list_is_the_one_auth_bicep_loads() -> None:
    bicep = (REPO / "infra/app/auth.bicep").read_text()
    assert "var anonymousPaths = loadJsonContent('anonymous-paths.json').paths" in bicep
    assert "excludedPaths: anonymousPaths" in bicep
    assert set(ANONYMOUS) == {"/api/graph/notifications", "/api/graph/lifecycle", "/api/scheduler/notifications",
                              "/api/health"}
    assert load_easy_auth(REPO, {}).anonymous_paths == ANONYMOUS  # the dev host reads the same file


def test_anonymous_browser_request_for_the_settings_page_goes_to_sign_in(host: DevHost, client: httpx.Client) -> None:
    page = client.get("/api/ui/")
    assert page.status_code == 302
    assert redirect_target(page) == "/api/ui/"
    monitor = client.get("/api/ui/admin?tab=failed")
    assert monitor.status_code == 302 and redirect_target(monitor) == "/api/ui/admin?tab=failed"
    assert reached(host) == []


def test_the_redirect_leads_to_the_sign_in_form_and_back(host: DevHost, client: httpx.Client) -> None:
    target = "/api/ui/admin?tab=failed&limit=5"
    aad = client.get(client.get(target).headers["Location"])
    assert aad.status_code == 302
    form = client.get(aad.headers["Location"])
    assert form.status_code == 200 and "Dev sign-in" in form.text
    assert f'name="post_login_redirect_uri" value="{target.replace("&", "&amp;")}"' in form.text
    signed_in = client.post("/.auth/login/dev", data={"email": "alice@contoso.example",
                                                     "post_login_redirect_uri": target})
    assert signed_in.status_code == 302 and signed_in.headers["Location"] == target
    assert client.get(target).status_code == 200  # the cookie is the session now
    assert reached(host)[-1]["path"] == "/api/ui/admin"


def test_anonymous_script_request_gets_401_not_a_redirect(host: DevHost, client: httpx.Client) -> None:
    for path in ("/api/settings/me", "/api/admin/resources", "/api/ui/"):
        answer = client.get(path, headers=XHR)
        assert answer.status_code == 401 and "Location" not in answer.headers, path
    assert client.put("/api/settings/me", headers=XHR, json={}).status_code == 401
    assert reached(host) == []


def test_bearer_token_gets_401(host: DevHost, client: httpx.Client) -> None:
    answer = client.get("/api/admin/resources", headers={"Authorization": "Bearer eyJ.not.checked"})
    assert answer.status_code == 401 and answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert reached(host) == []


@pytest.mark.parametrize("path", ANONYMOUS)
def test_every_anonymous_path_reaches_the_app_without_a_session(host: DevHost, client: httpx.Client, path: str) -> None:
    for method in ("GET", "POST"):
        answer = client.request(method, path, params={"validationToken": "x"}, content=b"{}")
        assert answer.status_code == 200, f"{method} {path}: {answer.status_code}"
        assert answer.json()["path"] == path and answer.json()["principal"] is None
    assert client.post(path, headers=XHR).status_code == 200
    assert [r["path"] for r in reached(host)] == [path, path, path]


@pytest.mark.parametrize("path", PROTECTED + NEAR_MISSES)
def test_every_other_path_is_protected(host: DevHost, client: httpx.Client, path: str) -> None:
    browser = client.get(path)
    assert browser.status_code == 302 and redirect_target(browser) == path
    assert client.get(path, headers=XHR).status_code == 401
    assert client.post(path, headers=XHR, content=b"{}").status_code == 401
    assert reached(host) == []


def test_a_route_missing_from_the_list_fails_locally_as_in_azure(host: DevHost, client: httpx.Client) -> None:
    # A developer adds a webhook for a new sender (anonymous in the code) but forgets anonymous-paths.json:
    # in Azure Easy Auth would answer the sender with a redirect to sign-in; so does the dev host.
    webhook = client.post("/api/partner/notifications", json={"value": []})
    assert webhook.status_code == 302 and redirect_target(webhook) == "/api/partner/notifications"
    assert reached(host) == []


def test_a_client_sent_principal_counts_as_a_session_on_the_dev_host_only(host: DevHost, client: httpx.Client) -> None:
    answer = client.get("/api/settings/me", headers={"X-MS-CLIENT-PRINCIPAL": ALICE, **XHR})
    assert answer.status_code == 200 and answer.json()["principal"] == ALICE  # passed on as sent
    garbage = client.get("/api/settings/me", headers={"X-MS-CLIENT-PRINCIPAL": "%%%"})
    assert garbage.status_code == 200 and garbage.json()["principal"] == "%%%"  # the app's own checks decide
    # Only the principal itself stands in for Easy Auth's header; its companions alone are no session.
    assert client.get("/api/settings/me", headers={"X-MS-CLIENT-PRINCIPAL-NAME": "alice", **XHR}).status_code == 401
    assert client.get("/api/settings/me", headers={"X-MS-CLIENT-PRINCIPAL": "", **XHR}).status_code == 401


def test_without_the_affordance_a_client_sent_principal_is_stripped_as_in_azure(tmp_path: Path) -> None:
    settings = {"DEVHOST_TRUST_CLIENT_PRINCIPAL": "false"}
    with DevHost(APP, project_root(tmp_path), settings=settings, timers=False) as strict, \
            httpx.Client(base_url=strict.url, timeout=10) as c:
        forged = {"X-MS-CLIENT-PRINCIPAL": ALICE, "X-MS-CLIENT-PRINCIPAL-NAME": "alice"}
        assert c.get("/api/settings/me", headers={**forged, **XHR}).status_code == 401
        assert c.get("/api/ui/", headers=forged).status_code == 302
        health = c.get("/api/health", headers=forged)
        assert health.status_code == 200 and health.json()["principal"] is None  # stripped
        assert health.json()["principal_name"] is None
        assert [r["path"] for r in strict.module.REACHED] == ["/api/health"]
        c.post("/.auth/login/dev", data={"email": "bob@contoso.example", "post_login_redirect_uri": "/api/ui/"})
        assert c.get("/api/ui/").status_code == 200  # the dev sign-in still works


def test_the_cookie_session_replaces_any_client_sent_principal(host: DevHost, client: httpx.Client) -> None:
    client.post("/.auth/login/dev", data={"email": "bob@contoso.example", "admin": "1"})
    answer = client.get("/api/admin/resources", headers={"X-MS-CLIENT-PRINCIPAL": ALICE,
                                                         "X-MS-CLIENT-PRINCIPAL-NAME": "alice"})
    assert answer.status_code == 200
    principal = json.loads(base64.b64decode(answer.json()["principal"]))
    assert {"typ": "preferred_username", "val": "bob@contoso.example"} in principal["claims"]
    assert {"typ": "roles", "val": "Connector.Admin"} in principal["claims"]
    assert answer.json()["principal_name"] is None
    assert client.get("/.auth/me").json()[0]["claims"] == principal["claims"]


def test_an_expired_or_edited_cookie_is_no_session(host: DevHost, client: httpx.Client) -> None:
    client.post("/.auth/login/dev", data={"email": "bob@contoso.example"})
    assert client.get("/api/settings/me", headers=XHR).status_code == 200
    client.cookies.set(COOKIE, "not-a-principal")
    assert client.get("/api/settings/me", headers=XHR).status_code == 401
    client.cookies.delete(COOKIE)
    assert client.get("/api/settings/me", headers=XHR).status_code == 401
    assert client.get("/.auth/me").json() == []
    client.post("/.auth/login/dev", data={"email": "bob@contoso.example"})
    assert client.get("/.auth/logout").status_code == 302
    assert client.get("/api/settings/me", headers=XHR).status_code == 401


def test_auth_paths_are_easy_auths_own_and_never_reach_the_app(host: DevHost, client: httpx.Client) -> None:
    assert client.get("/.auth/login/github").status_code == 404
    assert client.get("/.auth/refresh", headers={"X-MS-CLIENT-PRINCIPAL": ALICE}).status_code == 404
    assert client.post("/.auth", content=b"").status_code == 404
    aad = client.get("/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fui%2Fadmin%3Fa%3D1%26b%3D2")
    location = urlsplit(aad.headers["Location"])
    assert aad.status_code == 302 and location.path == "/.auth/login/dev"
    assert parse_qs(location.query) == {"post_login_redirect_uri": ["/api/ui/admin?a=1&b=2"]}
    assert reached(host) == []


@pytest.mark.parametrize("target", ["//evil.example/x", "/\\evil.example/x", "https://evil.example/"])
def test_sign_in_only_returns_to_this_site(client: httpx.Client, target: str) -> None:
    form = client.get("/.auth/login/dev", params={"post_login_redirect_uri": target})
    assert 'value="/api/ui/"' in form.text
    signed_in = client.post("/.auth/login/dev", data={"email": "bob@contoso.example", "post_login_redirect_uri": target})
    assert signed_in.headers["Location"] == "/api/ui/"


def test_the_hosts_admin_api_is_not_behind_easy_auth(host: DevHost, client: httpx.Client) -> None:
    # In Azure the Functions host's /admin endpoints are not blocked by Easy Auth (the host checks the key).
    assert client.get("/admin/host/status").json()["state"] == "Running"
    assert client.get("/admin/functions").status_code == 200


def test_a_root_without_the_list_has_no_easy_auth_in_front(tmp_path: Path) -> None:
    root = write_root(tmp_path, {"extensions": {"http": {"routePrefix": ""}}})
    with DevHost(APP, root, settings={}, timers=False) as bare, httpx.Client(base_url=bare.url, timeout=10) as c:
        assert c.get("/api/ui/").status_code == 200  # as under func start: nothing in front
        assert load_easy_auth(root, {}) == EasyAuthRule(None)


@pytest.mark.parametrize(("content", "problem"), [
    ("not json", "expected a JSON object"), ('{"paths": "/api/health"}', "array of strings"),
    ('{"paths": ["api/health"]}', "not a path"), ('{"paths": ["/api/*/x"]}', "not a path"),
    ('{"paths": ["/api/health", "/api/health"]}', "listed twice"),
])
def test_a_broken_list_stops_the_start(tmp_path: Path, content: str, problem: str) -> None:
    root = project_root(tmp_path, {})
    (root / ANONYMOUS_PATHS_FILE).write_text(content)
    with pytest.raises(DevHostError, match=problem):
        DevHost(APP, root, settings={}, timers=False).start()


def test_the_affordance_setting_is_checked(tmp_path: Path) -> None:
    with pytest.raises(DevHostError, match="DEVHOST_TRUST_CLIENT_PRINCIPAL"):
        DevHost(APP, project_root(tmp_path), settings={"DEVHOST_TRUST_CLIENT_PRINCIPAL": "maybe"}, timers=False).start()


def test_wildcard_entries_cover_what_is_below_them() -> None:
    rule = EasyAuthRule(("/api/public/*", "/api/health"))
    assert rule.is_anonymous("/api/public/a") and rule.is_anonymous("/api/public/a/b")
    assert not rule.is_anonymous("/api/public") and not rule.is_anonymous("/api/publicity")
    assert rule.is_anonymous("/api/health") and not rule.is_anonymous("/api/health/")
