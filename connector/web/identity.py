"""Who is calling: the Easy Auth principal (`X-MS-CLIENT-PRINCIPAL`) turned into a connector role.

In Azure, App Service Authentication sits in front of the app: it signs the user in with Entra ID,
strips any `X-MS-CLIENT-PRINCIPAL*` header a client sends, and injects its own. The code trusts the
header only where that is guaranteed (`WEBSITE_AUTH_ENABLED=True`, see README, Security, and
infra/app/auth.bicep) or where `EASY_AUTH_DEV_TRUST=true` says a development stand-in sets it: the dev
host sets that, and its dev-only sign-in page sets the header. Anywhere else the header is refused.

A caller is an **admin** when the principal carries the app role named by `ADMIN_APP_ROLE`, and a
**resource** when its object id (`oid` claim) is the Graph user id of a tracked resource's mailbox:
emails change and are reused, the object id does not. Entra ID always sends `oid`, so behind Easy Auth a
principal without one is refused; only under the development setting (dev sign-in, tests) does the
email / preferred_username / upn claim stand in for it. Anything else is signed in but has no access (403).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass

from connector.web.jsonbody import BadJson, parse_json

PRINCIPAL_HEADER = "x-ms-client-principal"
EMAIL_CLAIMS = ("preferred_username", "email", "emails", "upn",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")
ROLE_CLAIMS = ("roles", "http://schemas.microsoft.com/ws/2008/06/identity/claims/role")
OBJECT_ID_CLAIMS = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")


class Unauthenticated(Exception):
    """No principal (or an unreadable one): 401."""


class NoEasyAuth(Exception):
    """Nothing this host guarantees stands in front of the app: the principal header is anyone's to forge."""


DEV_TRUST_SETTING = "EASY_AUTH_DEV_TRUST"  # dev hosts only: their sign-in stand-in sets the header itself


def in_azure(env: Mapping[str, str]) -> bool:
    return bool(env.get("WEBSITE_SITE_NAME"))


def easy_auth_enabled(env: Mapping[str, str]) -> bool:
    """App Service sets `WEBSITE_AUTH_ENABLED=True` when App Service Authentication is on."""
    return env.get("WEBSITE_AUTH_ENABLED", "").strip().lower() == "true"


def dev_trusted(env: Mapping[str, str]) -> bool:
    """The development setting, honoured only off App Service (where the platform says what is in front)."""
    return not in_azure(env) and env.get(DEV_TRUST_SETTING, "").strip().lower() == "true"


def require_easy_auth(env: Mapping[str, str]) -> None:
    """Fail closed: the header is trusted only where the platform guarantees Easy Auth in front
    (`WEBSITE_AUTH_ENABLED=True`) or where the development setting says a sign-in stand-in sets it
    (the dev host does). Any other host (App Service without it, a container, `func start`) refuses,
    naming the setting that is missing."""
    if easy_auth_enabled(env) or dev_trusted(env):
        return
    if in_azure(env):
        raise NoEasyAuth("App Service Authentication is not enabled on this app (WEBSITE_AUTH_ENABLED is not True), "
                         "so no sign-in can be trusted: enable it (infra/app/auth.bicep) before using the settings "
                         "page or the monitor")
    raise NoEasyAuth(f"no sign-in can be trusted on this host: WEBSITE_AUTH_ENABLED is not True (no App Service "
                     f"Authentication in front) and {DEV_TRUST_SETTING} is not true (set it only on a development "
                     "host whose sign-in stand-in sets X-MS-CLIENT-PRINCIPAL, as the dev host does)")


@dataclass(frozen=True)
class Principal:
    name: str
    emails: frozenset[str]
    roles: frozenset[str]
    object_id: str = ""  # Entra ID's `oid`: the signed-in user's Graph user id

    def is_admin(self, admin_role: str) -> bool:
        return admin_role in self.roles


def parse_principal(headers: Mapping[str, str]) -> Principal:
    """Decode the Easy Auth header; raise `Unauthenticated` when it is missing or malformed."""
    raw = next((v for k, v in headers.items() if k.lower() == PRINCIPAL_HEADER), None)
    if not raw:
        raise Unauthenticated("sign-in required")
    try:
        data = parse_json(base64.b64decode(raw + "=" * (-len(raw) % 4), validate=False))
    except (binascii.Error, BadJson):
        raise Unauthenticated("the sign-in header is not readable") from None
    if not isinstance(data, dict) or not isinstance(data.get("claims"), list):
        raise Unauthenticated("the sign-in header has no claims")
    role_type = str(data.get("role_typ") or "roles")
    name_type = str(data.get("name_typ") or "name")
    emails: set[str] = set()
    roles: set[str] = set()
    name = object_id = ""
    for claim in data["claims"]:
        if not isinstance(claim, dict):
            continue
        kind, value = str(claim.get("typ", "")), str(claim.get("val", ""))
        if kind in EMAIL_CLAIMS and "@" in value:
            emails.add(value.strip().lower())
        if kind in ROLE_CLAIMS or kind == role_type:
            roles.add(value)
        if kind == name_type and not name:
            name = value
        if kind in OBJECT_ID_CLAIMS and value and not object_id:
            object_id = value.strip().lower()
    return Principal(name or next(iter(sorted(emails)), ""), frozenset(emails), frozenset(roles), object_id)


def encode_principal(name: str, email: str, roles: tuple[str, ...] = (), object_id: str = "") -> str:
    """The header value Easy Auth would send (used by the dev sign-in and the tests)."""
    claims = [{"typ": "name", "val": name}, {"typ": "preferred_username", "val": email}]
    if object_id:
        claims.append({"typ": OBJECT_ID_CLAIMS[0], "val": object_id})
    claims += [{"typ": "roles", "val": role} for role in roles]
    body = {"auth_typ": "aad", "claims": claims, "name_typ": "name", "role_typ": "roles"}
    return base64.b64encode(json.dumps(body).encode()).decode()
