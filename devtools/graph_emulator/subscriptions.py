"""Change-notification subscriptions: ``/v1.0/subscriptions`` and the validation handshake."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import aiohttp
import yarl

from .errors import GraphError, bad_request, body_read_error
from .messages import GraphRequest, GraphResponse
from .paging import link
from .timeutil import format_utc, parse_datetime

if TYPE_CHECKING:
    from .core import Emulator

CHANGE_TYPES = ("created", "updated", "deleted")
TLS_VERSIONS = ("v1_0", "v1_1", "v1_2", "v1_3")
_FIELDS = {
    "changeType", "notificationUrl", "lifecycleNotificationUrl", "resource", "expirationDateTime", "clientState",
    "latestSupportedTlsVersion", "includeResourceData", "encryptionCertificate", "encryptionCertificateId",
    "notificationQueryOptions", "notificationUrlAppId",
}
_RESOURCE = re.compile(r"^/?(?:users/([^/]+)|(me))(?:/calendar)?/events$", re.I)


@dataclass
class Subscription:
    id: str
    resource: str
    mailbox: str  # user id
    change_types: list[str]
    notification_url: str
    lifecycle_url: str | None
    expiration: datetime
    client_state: str | None
    tls_version: str
    immutable_ids: bool  # the creating request asked for Prefer: IdType="ImmutableId"
    removed: bool = False
    next_reauthorization: float = 0.0  # emulator timestamp of the next automatic reauthorizationRequired

    def live(self, now: datetime) -> bool:
        return not self.removed and self.expiration > now

    def to_json(self, base_url: str, application_id: str, creator_id: str, client_state: bool = True) -> dict[str, Any]:
        return {
            "@odata.context": f"{base_url}/v1.0/$metadata#subscriptions/$entity",
            "id": self.id,
            "resource": self.resource,
            "applicationId": application_id,
            "changeType": ",".join(self.change_types),
            "clientState": self.client_state if client_state else None,
            "notificationUrl": self.notification_url,
            "notificationQueryOptions": None,
            "lifecycleNotificationUrl": self.lifecycle_url,
            "expirationDateTime": format_utc(self.expiration),
            "creatorId": creator_id,
            "includeResourceData": False,
            "latestSupportedTlsVersion": self.tls_version,
            "encryptionCertificate": None,
            "encryptionCertificateId": None,
            "notificationUrlAppId": None,
            "notificationContentType": "application/json",
        }


class SubscriptionBook:
    def __init__(self) -> None:
        self.items: dict[str, Subscription] = {}

    def live_for(self, mailbox: str, now: datetime) -> list[Subscription]:
        return [s for s in self.items.values() if s.mailbox == mailbox and s.live(now)]

    def is_live(self, subscription_id: str, now: datetime) -> bool:
        sub = self.items.get(subscription_id)
        return sub is not None and sub.live(now)


def _sub_error(status: int, code: str, message: str) -> GraphError:
    return GraphError(status, code, message)


def _check_url(value: Any, name: str, require_https: bool) -> str:
    if not isinstance(value, str) or not value:
        raise _sub_error(400, "InvalidRequest", f"'{name}' is required.")
    parts = urlsplit(value)
    allowed = ("https",) if require_https else ("http", "https")
    if parts.scheme.lower() not in allowed or not parts.netloc:
        raise _sub_error(400, "InvalidRequest", f"The {name} '{value}' must be an absolute {'/'.join(allowed)} URL.")
    return value


def _expiration(emu: Emulator, value: Any) -> datetime:
    if not isinstance(value, str):
        raise _sub_error(400, "InvalidRequest", "'expirationDateTime' is required.")
    requested = parse_datetime(value)
    now = emu.now()
    minimum = now + timedelta(minutes=emu.config.min_subscription_minutes)
    maximum = now + timedelta(minutes=emu.config.max_subscription_minutes)
    if requested > maximum:
        if not emu.config.clamp_expiration:
            raise _sub_error(
                400, "ExtensionError",
                f"Subscription expiration can only be {emu.config.max_subscription_minutes:g} minutes in the future.",
            )
        return maximum
    return max(requested, minimum)


def _validation_token() -> str:
    # Like Graph's: spaces and colons, so an endpoint that echoes it still encoded fails.
    return f"Validation: Testing client application reachability for subscription Request-Id: {uuid.uuid4()}"


async def handshake(emu: Emulator, url: str) -> None:
    """POST ``url?validationToken=...``; the endpoint must echo the decoded token with 200."""
    token = _validation_token()
    # Keep the endpoint's own query string: Graph appends to it.
    separator = "?" if "?" not in url else ("" if url.endswith(("?", "&")) else "&")
    target = yarl.URL(f"{url}{separator}validationToken={quote(token, safe='')}", encoded=True)
    failure = (
        f"Subscription validation request failed. Notification endpoint must respond with 200 OK to validation "
        f"request. Url: {url}"
    )
    try:
        timeout = aiohttp.ClientTimeout(total=emu.config.validation_timeout_seconds)
        async with emu.http().post(
            target, data=b"", headers={"Content-Type": "text/plain; charset=utf-8"}, timeout=timeout
        ) as response:
            text = await response.text(errors="replace")
            content_type = response.headers.get("Content-Type", "")
    except (TimeoutError, aiohttp.ClientError, ValueError) as exc:
        raise _sub_error(400, "ValidationError", f"{failure} ({type(exc).__name__})") from None
    if response.status != 200:
        raise _sub_error(400, "ValidationError", f"{failure} (status {response.status})")
    if text != token:
        raise _sub_error(400, "ValidationError", f"{failure} (the response body is not the validation token)")
    if emu.config.validation_require_text_plain and not content_type.lower().startswith("text/plain"):
        raise _sub_error(400, "ValidationError", f"{failure} (Content-Type must be text/plain)")


def _find(emu: Emulator, subscription_id: str) -> Subscription:
    sub = emu.subscriptions.items.get(subscription_id)
    if sub is None or not sub.live(emu.now()):
        raise GraphError(404, "ResourceNotFound", f"The object was not found: subscription '{subscription_id}'.")
    return sub


def _respond(emu: Emulator, req: GraphRequest, sub: Subscription, status: int = 200) -> GraphResponse:
    # The creating answer carries the clientState sent; later reads only if expose_client_state.
    client_state = status == 201 or emu.config.expose_client_state
    return GraphResponse(status, sub.to_json(req.base_url, emu.config.application_id, emu.config.creator_id,
                                             client_state))


async def create_subscription(emu: Emulator, req: GraphRequest) -> GraphResponse:
    data = req.json_object()
    for name in data:
        if name not in _FIELDS and not name.startswith("@odata."):
            raise body_read_error(f"The property '{name}' does not exist on type 'microsoft.graph.subscription'.")
    raw_types = data.get("changeType")
    change_types = [t.strip() for t in raw_types.split(",")] if isinstance(raw_types, str) else []
    if not change_types or any(t not in CHANGE_TYPES for t in change_types) or len(set(change_types)) < len(
        change_types
    ):
        raise _sub_error(400, "InvalidRequest", f"Invalid changeType '{raw_types}': use created, updated, deleted.")
    notification_url = _check_url(data.get("notificationUrl"), "notificationUrl", emu.config.require_https)
    lifecycle_url = data.get("lifecycleNotificationUrl")
    if lifecycle_url is not None:
        lifecycle_url = _check_url(lifecycle_url, "lifecycleNotificationUrl", emu.config.require_https)
    resource = data.get("resource")
    match = _RESOURCE.match(resource) if isinstance(resource, str) else None
    if not match or not isinstance(resource, str):
        raise _sub_error(400, "InvalidRequest", f"Unsupported resource '{resource}': use users/{{id}}/events.")
    if match.group(2) and emu.config.me_user is None:
        raise _sub_error(400, "InvalidRequest", "/me request is only valid with delegated authentication flow.")
    user = emu.mailbox(match.group(1) or emu.config.me_user or "")
    client_state = data.get("clientState")
    if client_state is not None and (
        not isinstance(client_state, str) or len(client_state) > emu.config.max_client_state_length
    ):
        raise _sub_error(
            400, "InvalidRequest", f"clientState must be a string of at most {emu.config.max_client_state_length} chars."
        )
    tls = data.get("latestSupportedTlsVersion") or "v1_2"
    if tls not in TLS_VERSIONS:
        raise _sub_error(400, "InvalidRequest", f"Invalid latestSupportedTlsVersion '{tls}'.")
    if data.get("includeResourceData"):
        raise _sub_error(400, "InvalidRequest", "The Graph emulator does not support rich notifications.")
    expiration = _expiration(emu, data.get("expirationDateTime"))
    now = emu.now()
    if emu.config.unique_subscriptions:
        # Same changeType and resource (the mailbox's events), whatever the notificationUrl.
        calendar = "/calendar/" in resource.lower()
        for other in emu.subscriptions.live_for(user.id, now):
            if set(other.change_types) == set(change_types) and ("/calendar/" in other.resource.lower()) == calendar:
                raise _sub_error(409, "Conflict",
                                 f"Subscription Id {other.id} already exists for the requested combination")
    if len(emu.subscriptions.live_for(user.id, now)) >= emu.config.max_subscriptions_per_mailbox:
        raise _sub_error(403, "ExtensionError", "The number of subscriptions for this mailbox has reached the limit.")

    await handshake(emu, notification_url)
    if lifecycle_url:
        await handshake(emu, lifecycle_url)
    sub = Subscription(
        id=str(uuid.uuid4()),
        resource=resource,
        mailbox=user.id,
        change_types=change_types,
        notification_url=notification_url,
        lifecycle_url=lifecycle_url,
        expiration=expiration,
        client_state=client_state,
        tls_version=tls,
        immutable_ids=req.prefer().get("idtype", "").lower() == "immutableid",
    )
    emu.schedule_reauthorization(sub)
    emu.subscriptions.items[sub.id] = sub
    headers = {"Preference-Applied": 'IdType="ImmutableId"'} if sub.immutable_ids else {}
    response = _respond(emu, req, sub, 201)
    response.headers.update(headers)
    return response


async def list_subscriptions(emu: Emulator, req: GraphRequest) -> GraphResponse:
    """The app's live subscriptions, ``subscriptions_page_size`` per page (``$skiptoken`` = offset)."""
    now = emu.now()
    live = [s for s in emu.subscriptions.items.values() if s.live(now)]
    skip_text = req.query.get("$skiptoken", "0")
    if not skip_text.isascii() or not skip_text.isdigit():
        raise bad_request("Invalid $skiptoken.")
    skip, size = int(skip_text), emu.config.subscriptions_page_size
    values = [
        {k: v for k, v in s.to_json(req.base_url, emu.config.application_id, emu.config.creator_id,
                                     emu.config.expose_client_state).items()
         if k != "@odata.context"}
        for s in live[skip:skip + size]
    ]
    body: dict[str, Any] = {"@odata.context": f"{req.base_url}/v1.0/$metadata#subscriptions", "value": values}
    if skip + size < len(live):
        body["@odata.nextLink"] = link(req, {"$skiptoken": str(skip + size)})
    return GraphResponse(200, body)


async def get_subscription(emu: Emulator, req: GraphRequest) -> GraphResponse:
    return _respond(emu, req, _find(emu, req.params[0]))


async def update_subscription(emu: Emulator, req: GraphRequest) -> GraphResponse:
    sub = _find(emu, req.params[0])
    data = req.json_object()
    for name in data:
        if name == "lifecycleNotificationUrl":
            raise _sub_error(400, "InvalidRequest", "lifecycleNotificationUrl can't be added or changed by PATCH: "
                             "delete the subscription and create it again.")
        if name != "expirationDateTime" and not name.startswith("@odata."):
            raise _sub_error(400, "InvalidRequest", f"Only expirationDateTime can be updated, not '{name}'.")
    if "expirationDateTime" not in data:
        raise bad_request("'expirationDateTime' is required.")
    sub.expiration = _expiration(emu, data["expirationDateTime"])
    emu.schedule_reauthorization(sub)  # a PATCH reauthorizes: the next challenge comes a period later
    return _respond(emu, req, sub)


async def delete_subscription(emu: Emulator, req: GraphRequest) -> GraphResponse:
    sub = _find(emu, req.params[0])
    sub.removed = True
    del emu.subscriptions.items[sub.id]
    return GraphResponse(204)
