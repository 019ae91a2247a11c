"""Dev-only stand-in for App Service Authentication (Easy Auth) on the dev host.

In Azure, Easy Auth sits in front of the app (infra/app/auth.bicep): it signs users in with Entra ID,
strips any `X-MS-CLIENT-PRINCIPAL*` header a client sends and injects its own, and lets a request
without a session through only to the anonymous paths; the app only reads the header. Locally there
is no Entra ID, so the dev host offers:
- `GET /.auth/login/dev`: a form to pick a user (email) and, optionally, the admin app role;
- `POST /.auth/login/dev`: signs in: a cookie holding the principal, then a redirect (`post_login_redirect_uri`);
- `GET /.auth/me`: the current principal as JSON (like Easy Auth's), `GET /.auth/logout`: signs out,
  `/.auth/login/aad` (Easy Auth's Entra ID login) redirects to the dev form.
Paths under `/.auth/` are Easy Auth's own: they never reach the app (an unknown one is a 404 here).

**The rule** (Azure's `globalValidation` as auth.bicep sets it), when the script root holds
`infra/app/anonymous-paths.json`, the one list auth.bicep loads too: a request without a session to
a path outside that list never reaches the app. A browser gets 302 to
`/.auth/login/aad?post_login_redirect_uri=<path and query>` (Azure sends it to the provider's sign-in
page, carrying the same target; here that hop is the dev form); a script's request (header
`X-Requested-With: XMLHttpRequest`) gets 401, so a page can reload itself into sign-in; a request with
`Authorization: Bearer ...` gets 401 too (Easy Auth would validate the token; the dev host cannot).
Paths match exactly and case-sensitively (Azure's documentation does not say; this is the stricter
reading), and an entry `/x/*` would match everything under `/x/`. The Functions host's own admin API
(`/admin/...`, master key) is not behind Easy Auth in Azure and is not gated here either. A script
root without the file (the dev host's own test apps) has no Easy Auth in front, as under `func start`.

A **session** on the dev host is:
- the dev sign-in cookie: its principal becomes `X-MS-CLIENT-PRINCIPAL`, replacing any the client sent;
- dev host only, a test affordance: a client-sent `X-MS-CLIENT-PRINCIPAL` header, passed on as sent,
  so a test can stand in for Easy Auth's injected header (with any value, to test the app's own
  checks). In Azure this is never a session: Easy Auth strips the header. App setting
  `DEVHOST_TRUST_CLIENT_PRINCIPAL=false` drops the affordance and strips it as Azure does.
A request without a session that is let through (an anonymous path) carries no principal header.
None of this exists outside the dev host. Because the stand-in sets the header itself, the dev host
gives the app `EASY_AUTH_DEV_TRUST=true` (`DEV_HOST_SETTINGS`, below local.settings.json and the
environment, so either can turn it off): the app trusts the header nowhere else without Easy Auth.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

from connector.web.identity import DEV_TRUST_SETTING, encode_principal

from .errors import DevHostError

log = logging.getLogger("devhost")

COOKIE = "devhost_principal"
DEMO_USERS = ("alice@contoso.example", "bob@contoso.example", "carol@contoso.example", "admin@contoso.example")
ANONYMOUS_PATHS_FILE = Path("infra/app/anonymous-paths.json")  # relative to the script root, beside auth.bicep
TRUST_SETTING = "DEVHOST_TRUST_CLIENT_PRINCIPAL"
PRINCIPAL_HEADER = "X-MS-CLIENT-PRINCIPAL"
SIGN_IN = "/.auth/login/aad"
DEV_HOST_SETTINGS = {DEV_TRUST_SETTING: "true"}  # app settings the dev host adds: its stand-in sets the header

FORM = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Dev sign-in</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#1b1b1b}}
label{{display:block;margin:1rem 0 .3rem;font-weight:600}}input[type=email]{{width:100%;padding:.5rem;font-size:1rem}}
button{{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem;background:#0b5cad;color:#fff;border:0;border-radius:4px}}
.note{{color:#444;font-size:.9rem}}</style></head><body>
<h1>Dev sign-in</h1>
<p class="note">Local stand-in for Entra ID sign-in (App Service Authentication). It exists only on the dev host.</p>
<form method="post" action="/.auth/login/dev">
<input type="hidden" name="post_login_redirect_uri" value="{redirect}">
<label for="email">Email</label><input id="email" name="email" type="email" required list="users" value="alice@contoso.example">
<datalist id="users">{options}</datalist>
<label><input type="checkbox" name="admin" value="1"> Connector admin (app role {role})</label>
<button type="submit">Sign in</button></form></body></html>"""


@dataclass(frozen=True)
class EasyAuthRule:
    """What stands in front of the app: which paths need a session, and what counts as one."""

    anonymous_paths: tuple[str, ...] | None  # None: no Easy Auth in front (no sign-in required anywhere)
    trust_client_principal: bool = True

    @property
    def require_authentication(self) -> bool:
        return self.anonymous_paths is not None

    def is_anonymous(self, path: str) -> bool:
        """A path Easy Auth lets through without a session (`excludedPaths`), or one it never guards."""
        if self.anonymous_paths is None or path == "/admin" or path.startswith("/admin/"):
            return True
        return any(path.startswith(entry[:-1]) if entry.endswith("/*") else path == entry
                   for entry in self.anonymous_paths)


EASY_AUTH = web.AppKey("devhost_easy_auth", EasyAuthRule)
NO_EASY_AUTH = EasyAuthRule(None)


def read_anonymous_paths(file: Path) -> tuple[str, ...]:
    """The `paths` of anonymous-paths.json, checked; a bad file is a start-up error naming it."""
    try:
        paths = json.loads(file.read_text(encoding="utf-8"))["paths"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise DevHostError(f"{file}: expected a JSON object with a 'paths' array ({exc})") from None
    if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
        raise DevHostError(f"{file}: 'paths' must be an array of strings")
    for path in paths:
        if not path.startswith("/") or "*" in path.removesuffix("/*") or "?" in path:
            raise DevHostError(f"{file}: {path!r} is not a path Easy Auth can exclude (exact '/a/b', or '/a/*')")
    if len(set(paths)) != len(paths):
        raise DevHostError(f"{file}: a path is listed twice")
    return tuple(paths)


def load_easy_auth(root: Path, env: Mapping[str, str] | None = None) -> EasyAuthRule:
    """The rule for a script root: its anonymous-paths.json, and the `DEVHOST_TRUST_CLIENT_PRINCIPAL` setting."""
    source = os.environ if env is None else env
    trust = source.get(TRUST_SETTING, "true").strip().lower()
    if trust not in ("true", "false"):
        raise DevHostError(f"app setting {TRUST_SETTING} must be true or false, got {trust!r}")
    file = root / ANONYMOUS_PATHS_FILE
    if not file.exists():
        log.info("Easy Auth stand-in: none in front of the app (no %s under %s)", ANONYMOUS_PATHS_FILE, root)
        return EasyAuthRule(None, trust == "true")
    paths = read_anonymous_paths(file)
    log.info("Easy Auth stand-in: sign-in required except %s (%s)%s", ", ".join(paths) or "nothing",
             ANONYMOUS_PATHS_FILE, "" if trust == "true" else "; client-sent principal headers are stripped")
    return EasyAuthRule(paths, trust == "true")


def _safe_redirect(target: str) -> str:
    """Only same-site paths: an open redirect would be a phishing aid even locally."""
    same_site = target.startswith("/") and not target.startswith(("//", "/\\"))
    return target if same_site else "/api/ui/"


def _cookie_principal(request: web.Request) -> str | None:
    """The dev sign-in cookie's principal when it is one (an edited or stale cookie is no session)."""
    value = request.cookies.get(COOKIE)
    if not value:
        return None
    try:
        data = json.loads(base64.b64decode(value, validate=True))
    except (binascii.Error, ValueError, RecursionError):
        return None
    return value if isinstance(data, dict) and isinstance(data.get("claims"), list) else None


def _without_principal(request: web.Request) -> web.Request:
    """The request as Easy Auth passes it on: no client-sent `X-MS-CLIENT-PRINCIPAL*` header."""
    if not any(k.lower().startswith("x-ms-client-principal") for k in request.headers):
        return request
    headers = {k: v for k, v in request.headers.items() if not k.lower().startswith("x-ms-client-principal")}
    return request.clone(headers=headers)


def challenge(request: web.Request) -> web.Response:
    """Easy Auth's answer to a request without a session for a protected path (RedirectToLoginPage)."""
    if request.headers.get("Authorization", "").lower().startswith("bearer "):
        return web.Response(status=401, headers={"WWW-Authenticate": f'Bearer realm="{request.host}"'},
                            text="The dev host cannot validate bearer tokens: sign in at /.auth/login/dev, "
                                 "or send X-MS-CLIENT-PRINCIPAL as Easy Auth would.\n")
    if request.headers.get("X-Requested-With") == "XMLHttpRequest":
        return web.Response(status=401, text="Sign-in required: no session, or it has expired.\n")
    location = f"{SIGN_IN}?{urlencode({'post_login_redirect_uri': request.raw_path})}"
    return web.Response(status=302, headers={"Location": location})


async def _auth_endpoint(request: web.Request) -> web.StreamResponse:
    """`/.auth/...`: Easy Auth's own endpoints, as the dev host offers them."""
    path = request.path
    admin_role = os.environ.get("ADMIN_APP_ROLE") or "Connector.Admin"  # the app's setting, as Easy Auth has no say
    if path == "/.auth/login/dev" and request.method == "GET":
        options = "".join(f'<option value="{html.escape(u)}">' for u in DEMO_USERS)
        redirect = html.escape(_safe_redirect(request.query.get("post_login_redirect_uri", "/api/ui/")))
        return web.Response(text=FORM.format(options=options, redirect=redirect, role=html.escape(admin_role)),
                            content_type="text/html")
    if path == "/.auth/login/dev" and request.method == "POST":
        form = await request.post()
        email = str(form.get("email", "")).strip()
        if "@" not in email:
            return web.Response(status=400, text="an email address is required")
        roles = (admin_role,) if form.get("admin") else ()
        response = web.HTTPFound(_safe_redirect(str(form.get("post_login_redirect_uri", "/api/ui/"))))
        response.set_cookie(COOKIE, encode_principal(email.split("@")[0], email, roles), httponly=True,
                            samesite="Strict", path="/")
        raise response
    if path == SIGN_IN:  # where Easy Auth would send the browser: the dev page instead
        raise web.HTTPFound("/.auth/login/dev?" + request.rel_url.raw_query_string)  # as sent: a target keeps its &
    if path == "/.auth/logout":
        response = web.HTTPFound("/.auth/login/dev")
        response.del_cookie(COOKIE, path="/")
        raise response
    if path == "/.auth/me":
        principal = _cookie_principal(request)
        return web.json_response([json.loads(base64.b64decode(principal))] if principal else [])
    return web.Response(status=404, text="Not an Easy Auth endpoint of the dev host.\n")


def easy_auth_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    """The stand-in as an aiohttp middleware; the rule comes from the app (``app[EASY_AUTH]``, set by the
    dev host from its script root), and without one nothing is required."""

    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        if request.path == "/.auth" or request.path.startswith("/.auth/"):
            return await _auth_endpoint(request)
        rule = request.app.get(EASY_AUTH, NO_EASY_AUTH)
        principal = _cookie_principal(request)
        if principal:
            headers = {k: v for k, v in request.headers.items() if not k.lower().startswith("x-ms-client-principal")}
            headers[PRINCIPAL_HEADER] = principal
            return await handler(request.clone(headers=headers))
        if not rule.require_authentication or (rule.trust_client_principal and request.headers.get(PRINCIPAL_HEADER)):
            return await handler(request)  # no Easy Auth in front, or the test affordance: passed on as sent
        if rule.is_anonymous(request.path):
            return await handler(_without_principal(request))
        return challenge(request)

    return middleware
