"""User endpoints: ``/users`` and ``/users/{id | userPrincipalName}``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GraphError, body_read_error
from .ids import new_guid
from .messages import GraphRequest, GraphResponse, applied
from .odata import evaluate, parse_options, sort_key
from .paging import link, page_size
from .store import User

if TYPE_CHECKING:
    from .core import Emulator

USER_PROPERTIES = {
    "id", "displayName", "userPrincipalName", "mail", "givenName", "surname", "jobTitle", "mobilePhone",
    "officeLocation", "preferredLanguage", "businessPhones",
}
_WRITABLE = USER_PROPERTIES | {"accountEnabled", "mailNickname", "passwordProfile", "usageLocation"}


def user_json(user: User) -> dict[str, Any]:
    return {
        "businessPhones": user.extra.get("businessPhones", []),
        "displayName": user.display_name,
        "givenName": user.extra.get("givenName"),
        "jobTitle": user.extra.get("jobTitle"),
        "mail": user.mail,
        "mobilePhone": user.extra.get("mobilePhone"),
        "officeLocation": user.extra.get("officeLocation"),
        "preferredLanguage": user.extra.get("preferredLanguage"),
        "surname": user.extra.get("surname"),
        "userPrincipalName": user.user_principal_name,
        "id": user.id,
    }


def build_user(emu: Emulator, data: dict[str, Any]) -> User:
    """Validate a user body (POST /users and seeding) and add the user."""
    for name in data:
        if name not in _WRITABLE and not name.startswith("@odata."):
            raise body_read_error(f"Property '{name}' does not exist as a declared property or extension property.")
    upn, display = data.get("userPrincipalName"), data.get("displayName")
    for name, value in (("userPrincipalName", upn), ("displayName", display)):
        if not isinstance(value, str) or not value.strip():
            raise GraphError(400, "Request_BadRequest", f"Invalid value specified for property '{name}' of resource 'User'.")
    mail = data.get("mail")
    if mail is not None and not isinstance(mail, str):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'mail' of resource 'User'.")
    user_id = data.get("id") or new_guid()
    if not isinstance(user_id, str):
        raise GraphError(400, "Request_BadRequest", "Invalid value specified for property 'id' of resource 'User'.")
    assert isinstance(upn, str) and isinstance(display, str)
    if emu.store.find_user(upn) or emu.store.find_user(user_id):
        raise GraphError(400, "Request_BadRequest",
                         "Another object with the same value for property userPrincipalName already exists.")
    extra = {k: v for k, v in data.items() if k in USER_PROPERTIES - {"id", "displayName", "userPrincipalName", "mail"}}
    user = User(user_id, display, upn, mail, extra)
    emu.store.add_user(user)
    return user


def find_user(emu: Emulator, ref: str) -> User:
    user = emu.store.find_user(ref)
    if user is None:
        raise GraphError(404, "Request_ResourceNotFound",
                         f"Resource '{ref}' does not exist or one of its queried reference-property objects are not present.")
    return user


async def create_user(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = build_user(emu, req.json_object())
    return GraphResponse(201, {"@odata.context": f"{req.base_url}/v1.0/$metadata#users/$entity", **user_json(user)})


async def get_user(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = find_user(emu, req.params[0])
    options = parse_options(req.query, USER_PROPERTIES, set(), allow_expand=False)
    doc = user_json(user)
    if options.select:
        doc = {k: v for k, v in doc.items() if k in options.select}
    return GraphResponse(200, {"@odata.context": f"{req.base_url}/v1.0/$metadata#users/$entity", **doc})


async def list_users(emu: Emulator, req: GraphRequest) -> GraphResponse:
    if "$skip" in req.query:
        raise GraphError(400, "Request_BadRequest", "'$skip' is not supported by the service.")
    options = parse_options(req.query, USER_PROPERTIES, {"displayName", "userPrincipalName"}, allow_expand=False)
    docs = [user_json(u) for u in emu.store.users.values()]
    if options.filter is not None:
        docs = [d for d in docs if evaluate(options.filter, d, lambda literal: literal)]
    docs.sort(key=sort_key(options.orderby[0] if options.orderby else ["userPrincipalName"]),
              reverse=bool(options.orderby and options.orderby[1]))
    token = req.query.get("$skiptoken", "0")
    offset = int(token) if token.isascii() and token.isdigit() else 0
    size, prefs = page_size(req, options.top, emu.config.users_default_page_size, 999)
    chunk = docs[offset: offset + size]
    if options.select:
        chunk = [{k: v for k, v in d.items() if k in options.select} for d in chunk]
    body: dict[str, Any] = {"@odata.context": f"{req.base_url}/v1.0/$metadata#users", "value": chunk}
    if offset + size < len(docs):
        body["@odata.nextLink"] = link(req, {"$skiptoken": str(offset + size)})
    return GraphResponse(200, body, applied(prefs))
