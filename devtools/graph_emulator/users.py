"""User endpoints: ``/users``, ``/users/{id | userPrincipalName}`` and its ``mailboxSettings``.

``mailboxSettings.timeZone`` is the mailbox's zone (a Windows name such as "W. Europe Standard
Time"); reading it needs ``MailboxSettings.Read`` on the real service. PATCH changes it (only
``timeZone`` is writable here; an unknown zone is a 400 and changes nothing)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import GraphError, body_read_error
from .ids import new_guid
from .messages import GraphRequest, GraphResponse, applied
from .odata import evaluate, parse_options, sort_key
from .paging import link, page_size
from .store import User
from .timeutil import require_zone

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


MAILBOX_SETTINGS = {"timeZone", "language", "dateFormat", "timeFormat", "workingHours", "userPurpose",
                    "automaticRepliesSetting", "archiveFolder", "delegateMeetingMessageDeliveryOptions"}


def mailbox_settings_json(user: User) -> dict[str, Any]:
    return {
        "archiveFolder": "",
        "timeZone": user.time_zone,
        "delegateMeetingMessageDeliveryOptions": "sendToDelegateOutlookAndInformPrincipal",
        "dateFormat": "dd/MM/yyyy",
        "timeFormat": "HH:mm",
        "userPurpose": "user",
        "automaticRepliesSetting": {"status": "disabled", "externalAudience": "all",
                                    "internalReplyMessage": "", "externalReplyMessage": ""},
        "language": {"locale": "en-US", "displayName": "English (United States)"},
        "workingHours": {"daysOfWeek": ["monday", "tuesday", "wednesday", "thursday", "friday"],
                         "startTime": "08:00:00.0000000", "endTime": "17:00:00.0000000",
                         "timeZone": {"name": user.time_zone}},
    }


def _settings_context(req: GraphRequest, user: User) -> str:
    return f"{req.base_url}/v1.0/$metadata#users('{user.id}')/mailboxSettings"


async def get_mailbox_settings(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    return GraphResponse(200, {"@odata.context": _settings_context(req, user), **mailbox_settings_json(user)})


async def update_mailbox_settings(emu: Emulator, req: GraphRequest) -> GraphResponse:
    user = emu.mailbox(req.params[0])
    data = req.json_object()
    for name in data:
        if name.startswith("@odata."):
            continue
        if name not in MAILBOX_SETTINGS:
            raise body_read_error(f"The property '{name}' does not exist on type 'microsoft.graph.mailboxSettings'.")
        if name != "timeZone":
            raise GraphError(400, "ErrorInvalidRequest", f"The Graph emulator does not support writing '{name}'.")
    zone = data.get("timeZone")
    if zone is not None:
        if not isinstance(zone, str):
            raise body_read_error("Cannot convert the value of property 'timeZone' to Edm.String.")
        require_zone(zone)
        user.time_zone = zone
    changed = {k: v for k, v in mailbox_settings_json(user).items() if k in data}
    return GraphResponse(200, {"@odata.context": _settings_context(req, user), **changed})
