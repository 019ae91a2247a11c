"""Dev-only sign-in that stands in for App Service Authentication (Easy Auth) on the dev host.

In Azure, Easy Auth signs users in with Entra ID and injects `X-MS-CLIENT-PRINCIPAL`; the app only
reads that header. Locally there is no Entra ID, so the dev host offers:
- `GET /.auth/login/dev`: a form to pick a user (email) and, optionally, the admin app role;
- `POST /.auth/login/dev`: signs in: a cookie holding the principal, then a redirect (`post_login_redirect_uri`);
- `GET /.auth/me`: the current principal as JSON (like Easy Auth's), `GET /.auth/logout`: signs out,
  `/.auth/login/aad` (Easy Auth's Entra ID login) redirects to the dev form.
While signed in, every request gets the cookie's principal as `X-MS-CLIENT-PRINCIPAL` (replacing any
the client sent, as Easy Auth does). Without the cookie, requests pass through unchanged, so tests can
send the header themselves exactly as Easy Auth would. None of this exists outside the dev host.
"""

from __future__ import annotations

import base64
import html
import json
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from connector.web.identity import encode_principal

COOKIE = "devhost_principal"
DEMO_USERS = ("alice@contoso.example", "bob@contoso.example", "carol@contoso.example", "admin@contoso.example")

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


def _safe_redirect(target: str) -> str:
    """Only same-site paths: an open redirect would be a phishing aid even locally."""
    return target if target.startswith("/") and not target.startswith("//") else "/api/ui/"


def easy_auth_middleware() -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(request: web.Request,
                         handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
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
        if path == "/.auth/login/aad":  # where Easy Auth would send the browser: the dev page instead
            raise web.HTTPFound("/.auth/login/dev?" + request.query_string)
        if path == "/.auth/logout":
            response = web.HTTPFound("/.auth/login/dev")
            response.del_cookie(COOKIE, path="/")
            raise response
        principal = request.cookies.get(COOKIE)
        if path == "/.auth/me":
            if not principal:
                return web.json_response([])
            return web.json_response([json.loads(base64.b64decode(principal))])
        if principal:
            headers = {k: v for k, v in request.headers.items() if not k.lower().startswith("x-ms-client-principal")}
            headers["X-MS-CLIENT-PRINCIPAL"] = principal
            request = request.clone(headers=headers)
        return await handler(request)

    return middleware
