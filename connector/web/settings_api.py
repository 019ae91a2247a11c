"""The settings and admin API: authorisation, validation and optimistic concurrency, free of HTTP types.

Functions turn requests into calls here and `ApiError`s into responses. Rules:
- no principal → 401; a principal that is neither the resource concerned nor an admin → 403;
- state-changing requests must carry `X-Requested-With: XMLHttpRequest` (a header a cross-site form
  or image cannot send) and, when they carry `Origin`, it must be this app's own; otherwise 403;
- writes need `If-Match` with the ETag read before (428 without it, 412 when stale);
- unknown fields and invalid values → 400 naming the field; a field an admin locked → 403 naming it
  (admins always override); in global mode resources cannot change their settings (403).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from connector.stores.registry import ResourceRecord, ResourceRegistry
from connector.stores.repositories import AlreadyExists, ConcurrencyConflict
from connector.stores.settings import FIELDS, MODES, SettingsError, SettingsStore, parse_settings, settings_to_json
from connector.web.identity import NoEasyAuth, Principal, Unauthenticated, dev_trusted, parse_principal, require_easy_auth
from connector.web.jsonbody import BadJson, parse_json


@dataclass
class ApiError(Exception):
    status: int
    message: str
    field: str | None = None

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"message": self.message}
        if self.field:
            error["field"] = self.field
        return {"error": error}


@dataclass(frozen=True)
class Answer:
    body: Any
    etag: str | None = None
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


MAX_ID_LENGTH = 256  # resource numbers and appointment GUIDs are far shorter; longer ones cannot be table keys


def authenticate(headers: Mapping[str, str], env: Mapping[str, str] = os.environ) -> Principal:
    """The caller's principal; 403 when this host cannot trust the header at all (naming the missing
    setting), 401 without a readable one."""
    try:
        require_easy_auth(env)
    except NoEasyAuth as exc:
        raise ApiError(403, str(exc)) from None
    try:
        principal = parse_principal(headers)
    except Unauthenticated as exc:
        raise ApiError(401, str(exc)) from None
    if not dev_trusted(env) and not principal.object_id:
        raise ApiError(401, "the sign-in carries no object id (oid claim): sign in with Entra ID")
    return principal


def check_same_origin(headers: Mapping[str, str], host_url: str) -> None:
    """Cross-site request protection for state-changing calls."""
    lowered = {k.lower(): v for k, v in headers.items()}
    if lowered.get("x-requested-with", "").lower() != "xmlhttprequest":
        raise ApiError(403, "missing X-Requested-With: XMLHttpRequest (cross-site requests are refused)")
    origin = lowered.get("origin")
    if origin and urlparse(origin).netloc.lower() != urlparse(host_url).netloc.lower():
        raise ApiError(403, f"origin {origin} is not this app")


def _json_body(body: bytes) -> Any:
    try:
        return parse_json(body or b"null")
    except BadJson as exc:
        raise ApiError(400, str(exc), "body") from None


def _json_object(body: bytes, known: tuple[str, ...]) -> dict[str, Any]:
    """The body as a JSON object with only `known` fields; 400 naming the first offender."""
    data = _json_body(body)
    if not isinstance(data, dict):
        raise ApiError(400, "expected a JSON object", "body")
    unknown = [k for k in data if k not in known]
    if unknown:
        raise ApiError(400, f"unknown field (known: {', '.join(known)})", unknown[0])
    return data


def _etag(headers: Mapping[str, str]) -> str:
    lowered = {k.lower(): v for k, v in headers.items()}
    value = lowered.get("if-match")
    if not value:
        raise ApiError(428, "If-Match is required: send the ETag you read, so a concurrent change is not overwritten")
    return value


SettingsChanged = Callable[[list[ResourceRecord]], None]


class SettingsApi:
    def __init__(self, registry: ResourceRegistry, store: SettingsStore, admin_role: str,
                 on_change: SettingsChanged | None = None) -> None:
        """`on_change` gets the resources whose effective settings may have changed (their mailboxes
        are re-synced right away, so the board follows within seconds instead of at the next timer)."""
        self._registry = registry
        self._store = store
        self._admin_role = admin_role
        self._on_change = on_change or (lambda records: None)

    # -- who ------------------------------------------------------------------------------------
    def resource_of(self, principal: Principal) -> ResourceRecord:
        """The tracked resource whose mailbox the caller is: by object id (Graph user id); by email
        only for a principal without one, which `authenticate` lets through only under EASY_AUTH_DEV_TRUST."""
        for record in self._registry.all():
            if record.status != "tracked":
                continue
            if (record.user_id.lower() == principal.object_id) if principal.object_id \
                    else (record.email.lower() in principal.emails):
                return record
        who = principal.name or "this account"
        raise ApiError(403, f"{who} is signed in, but no resource synced with Exchange is this account's mailbox")

    def require_admin(self, principal: Principal) -> None:
        if not principal.is_admin(self._admin_role):
            raise ApiError(403, f"the {self._admin_role} app role is required")

    # -- a resource's own settings --------------------------------------------------------------
    def _view(self, record: ResourceRecord, for_admin: bool) -> Answer:
        own = self._store.own(record.resource_no)
        mode = self._store.mode()
        effective = self._store.effective(record.resource_no)
        locked = set(FIELDS) if mode == "global" and not for_admin else set(own.locks)
        body = {
            "resource": {"resourceNo": record.resource_no, "displayName": record.display_name, "email": record.email},
            "settings": settings_to_json(own.settings),
            "effective": settings_to_json(effective),
            "mode": mode,
            "locks": sorted(own.locks),
            "editable": {f: for_admin or f not in locked for f in FIELDS},
        }
        return Answer(body, own.etag or "new")

    def get_mine(self, principal: Principal) -> Answer:
        return self._view(self.resource_of(principal), for_admin=False)

    def put_mine(self, principal: Principal, headers: Mapping[str, str], body: bytes) -> Answer:
        record = self.resource_of(principal)
        if self._store.mode() == "global":
            raise ApiError(403, "an administrator manages these settings for everyone (global mode)")
        return self._write(record, headers, _json_body(body), None, admin=False)

    def _write(self, record: ResourceRecord, headers: Mapping[str, str], changes: Any,
               locks: frozenset[str] | None, admin: bool) -> Answer:
        """Apply `changes` (a settings object) and, for admins, new `locks`, guarded by If-Match."""
        etag = _etag(headers)
        own = self._store.own(record.resource_no)
        try:
            updated = parse_settings(changes, own.settings)
        except SettingsError as exc:
            raise ApiError(400, str(exc), exc.field) from None
        if not admin:
            current = settings_to_json(own.settings)
            for name, value in settings_to_json(updated).items():
                if value != current[name] and name in own.locks:
                    raise ApiError(403, f"{name} is locked by an administrator", name)
        if (None if etag == "new" else etag) != own.etag:
            raise ApiError(412, "these settings changed since you read them: reload and try again")
        try:
            new_etag = self._store.save_own(record.resource_no, updated, own.locks if locks is None else locks,
                                            own.etag)
        except (ConcurrencyConflict, AlreadyExists):
            raise ApiError(412, "these settings changed since you read them: reload and try again") from None
        self._on_change([record])
        return Answer(self._view(record, for_admin=admin).body, new_etag)

    # -- admin ------------------------------------------------------------------------------------
    def _record(self, resource_no: str) -> ResourceRecord:
        if not 0 < len(resource_no) <= MAX_ID_LENGTH:
            raise ApiError(404, f"no resource numbered like that ({len(resource_no)} characters) is known to the connector")
        record = self._registry.get(resource_no)
        if record is None:
            raise ApiError(404, f"no resource {resource_no!r} is known to the connector")
        return record

    def get_resource_settings(self, principal: Principal, resource_no: str) -> Answer:
        self.require_admin(principal)
        return self._view(self._record(resource_no), for_admin=True)

    def put_resource_settings(self, principal: Principal, resource_no: str, headers: Mapping[str, str],
                              body: bytes) -> Answer:
        self.require_admin(principal)
        data = _json_object(body, ("settings", "locks"))
        locks = data.get("locks")
        if locks is not None and (not isinstance(locks, list) or any(x not in FIELDS for x in locks)):
            raise ApiError(400, f"locks must be a list of: {', '.join(FIELDS)}", "locks")
        return self._write(self._record(resource_no), headers, data.get("settings", {}),
                           None if locks is None else frozenset(locks), admin=True)

    def get_defaults(self, principal: Principal) -> Answer:
        self.require_admin(principal)
        defaults = self._store.defaults()
        return Answer({"settings": settings_to_json(defaults.settings), "mode": self._store.mode()},
                      defaults.etag or "new")

    def put_defaults(self, principal: Principal, headers: Mapping[str, str], body: bytes) -> Answer:
        self.require_admin(principal)
        etag = _etag(headers)
        data = _json_object(body, ("settings", "mode"))
        defaults = self._store.defaults()
        if (None if etag == "new" else etag) != defaults.etag:
            raise ApiError(412, "the defaults changed since you read them: reload and try again")
        if "mode" in data and data["mode"] not in MODES:
            raise ApiError(400, f"expected one of {', '.join(MODES)}", "mode")
        try:
            updated = parse_settings(data.get("settings", {}), defaults.settings)
        except SettingsError as exc:
            raise ApiError(400, str(exc), exc.field) from None
        try:
            new_etag = self._store.save_defaults(updated, defaults.etag)
        except (ConcurrencyConflict, AlreadyExists):
            raise ApiError(412, "the defaults changed since you read them: reload and try again") from None
        if "mode" in data:
            self._store.save_mode(data["mode"])
        self._on_change([r for r in self._registry.all() if r.status == "tracked"])
        return Answer({"settings": settings_to_json(updated), "mode": self._store.mode()}, new_etag)
