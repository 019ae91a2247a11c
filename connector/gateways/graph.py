"""The Exchange side: Microsoft Graph calls through msgraph-sdk's request pipeline.

Requests are built by the SDK's request builders (URL templates, auth, retry, redirect and telemetry
middleware all come from the SDK); bodies and answers stay JSON dictionaries in Graph's wire
format. That keeps the sync core free of SDK types, keeps `@removed` and other annotations that the
typed models drop, and avoids the ~1.3 s / 35 MiB the typed Event models cost on first use (see
../shared/reference/graph.md). Every event request carries `Prefer: IdType="ImmutableId"` and
`outlook.timezone="UTC"`, so ids survive folder moves and times come back in UTC; every read also
asks for `outlook.body-content-type="text"` (bodies are HTML otherwise; `CalendarEvent.from_graph`
still turns an HTML body into text should one arrive anyway).

Failures surface as `GraphError` with the HTTP status, Graph's error code and the `Retry-After`
delay, so the workers can re-queue throttled work instead of dropping it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

import httpx
from kiota_abstractions.api_error import APIError
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    AuthenticationProvider,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_http.middleware.options import RetryHandlerOption
from msgraph.graph_request_adapter import GraphRequestAdapter
from msgraph.graph_service_client import GraphServiceClient

from connector.config import GraphAuthMode, GraphConfig
from connector.errors import GraphError

IMMUTABLE_ID = 'IdType="ImmutableId"'
UTC_TIMEZONE = 'outlook.timezone="UTC"'
TEXT_BODY = 'outlook.body-content-type="text"'
READ = (IMMUTABLE_ID, UTC_TIMEZONE, TEXT_BODY)


@dataclass(frozen=True)
class DeltaPage:
    """One page of a calendarView delta round: its items and where to go next."""

    items: list[dict[str, Any]]
    next_link: str | None
    delta_link: str | None


class _StaticToken(AccessTokenProvider):
    """A fixed bearer token for the local Graph emulator (config refuses it for non-loopback URLs)."""

    def __init__(self, token: str, host: str) -> None:
        self._token = token
        self._validator = AllowedHostsValidator([host])

    async def get_authorization_token(
        self, uri: str, additional_authentication_context: dict[str, Any] | None = None
    ) -> str:
        return self._token if self._validator.is_url_host_valid(uri) else ""

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


def _auth_provider(config: GraphConfig) -> AuthenticationProvider:
    host = urlparse(config.base_url).hostname or ""
    if config.auth_mode is GraphAuthMode.STATIC_TOKEN:
        assert config.static_token is not None
        return BaseBearerTokenAuthenticationProvider(_StaticToken(config.static_token.reveal(), host))

    from azure.identity.aio import (
        CertificateCredential,
        ClientAssertionCredential,
        ClientSecretCredential,
    )
    from kiota_authentication_azure.azure_identity_authentication_provider import (
        AzureIdentityAuthenticationProvider,
    )

    assert config.tenant_id and config.client_id
    credential: Any
    if config.auth_mode is GraphAuthMode.CLIENT_SECRET:
        assert config.client_secret is not None
        credential = ClientSecretCredential(config.tenant_id, config.client_id, config.client_secret.reveal())
    elif config.auth_mode is GraphAuthMode.CERTIFICATE:
        assert config.client_certificate is not None
        credential = CertificateCredential(
            config.tenant_id, config.client_id, certificate_data=config.client_certificate.reveal().encode()
        )
    else:
        # Secretless: the user-assigned managed identity is a federated credential of the app
        # registration; its token for api://AzureADTokenExchange is the client assertion. The
        # credential calls `assertion` synchronously, so it uses the sync identity credential.
        from azure.identity import ManagedIdentityCredential as SyncManagedIdentityCredential

        identity = SyncManagedIdentityCredential(client_id=config.managed_identity_client_id)

        def assertion() -> str:
            return str(identity.get_token("api://AzureADTokenExchange/.default").token)

        credential = ClientAssertionCredential(config.tenant_id, config.client_id, assertion)
    return AzureIdentityAuthenticationProvider(credential, scopes=[f"https://{host}/.default"], allowed_hosts=[host])


def _retry_after(headers: Any) -> float | None:
    if headers is None:
        return None
    values = headers.get("retry-after") if hasattr(headers, "get") else None
    if not values:
        return None
    value = next(iter(values)) if isinstance(values, set | list | tuple) else values
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        return None


def _graph_error(exc: APIError) -> GraphError:
    status = int(exc.response_status_code or 0)
    code, message = "UnknownError", str(exc.message or exc)
    error = getattr(exc, "error", None)
    if error is not None:
        code = error.code or code
        message = error.message or message
    return GraphError(status, code, message, _retry_after(exc.response_headers))


class ExchangeGateway:
    """Calendar, user and subscription operations against Microsoft Graph (or the emulator)."""

    def __init__(self, config: GraphConfig, max_retries: int = 0) -> None:
        """`max_retries` is the SDK's in-process retry; 0 by default because a throttled or failed
        change goes back to its queue with the `Retry-After` delay instead of holding a worker asleep."""
        self._retry = RetryHandlerOption(delay=1, max_retries=max_retries, should_retry=max_retries > 0)
        adapter = GraphRequestAdapter(_auth_provider(config))
        adapter.base_url = config.base_url
        self._adapter = adapter
        self.client = GraphServiceClient(request_adapter=adapter)
        self._error_map: dict[str, Any] | None = None

    # -- plumbing ---------------------------------------------------------------------------
    def _errors(self) -> dict[str, Any]:
        if self._error_map is None:
            from msgraph.generated.models.o_data_errors.o_data_error import ODataError

            self._error_map = {"XXX": ODataError}
        return self._error_map

    async def _send(
        self,
        method: Method,
        builder: Any = None,
        *,
        url: str | None = None,
        body: Mapping[str, Any] | None = None,
        query: Mapping[str, str] | None = None,
        prefer: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """Send one request built by an SDK request builder (or a Graph-issued link) and parse JSON."""
        info = RequestInformation(method, getattr(builder, "url_template", None), dict(getattr(builder, "path_parameters", {})))
        if url is not None:
            info.url = url
        for key, value in (query or {}).items():
            info.query_parameters[key] = value
        info.headers.try_add("Accept", "application/json")
        info.add_request_options([self._retry])
        for preference in prefer:
            info.headers.add("Prefer", preference)
        if body is not None:
            info.set_stream_content(json.dumps(body).encode(), "application/json")
        try:
            raw = await self._adapter.send_primitive_async(info, "bytes", self._errors())
        except APIError as exc:
            raise _graph_error(exc) from None
        except (httpx.TransportError, OSError) as exc:
            # Timeouts, resets, refused connections: Graph may be fine a moment later (and a write may
            # have happened: every write is idempotent), so a network error is transient, like a 503.
            raise GraphError(0, "NetworkError", f"{type(exc).__name__}: {exc}") from None
        if not raw:
            return None
        parsed = json.loads(raw)
        return parsed if isinstance(parsed, dict) else {"value": parsed}

    async def batch(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """`POST /$batch` with a body built by `connector.gateways.batcher.build_batch`; the answer's JSON.

        The batch itself failing (throttled, 5xx) raises GraphError with its Retry-After; inner
        failures come back inside the answer, one response per request id."""
        result = await self._send(Method.POST, url=f"{str(self._adapter.base_url).rstrip('/')}/$batch", body=body)
        return result or {}

    @property
    def base_url(self) -> str:
        return str(self._adapter.base_url).rstrip("/")

    def _user(self, user_id: str) -> Any:
        return self.client.users.by_user_id(user_id)

    # -- users ------------------------------------------------------------------------------
    async def get_user(self, id_or_upn: str) -> dict[str, Any] | None:
        """The user, or None if Graph does not know the id / user principal name."""
        try:
            return await self._send(Method.GET, self._user(id_or_upn),
                                    query={"%24select": "id,displayName,mail,userPrincipalName"})
        except GraphError as exc:
            if exc.not_found:
                return None
            raise

    async def ping(self) -> None:
        """A cheap authenticated call for the health check."""
        await self._send(Method.GET, self.client.users, query={"%24top": "1", "%24select": "id"})

    # -- subscriptions ----------------------------------------------------------------------
    async def create_subscription(
        self,
        user_id: str,
        notification_url: str,
        lifecycle_url: str,
        client_state: str,
        expiration: datetime,
    ) -> dict[str, Any]:
        body = {
            "changeType": "created,updated,deleted",
            "notificationUrl": notification_url,
            "lifecycleNotificationUrl": lifecycle_url,
            "resource": f"users/{user_id}/events",
            "expirationDateTime": expiration.isoformat().replace("+00:00", "Z"),
            "clientState": client_state,
            "latestSupportedTlsVersion": "v1_2",
        }
        result = await self._send(Method.POST, self.client.subscriptions, body=body, prefer=(IMMUTABLE_ID,))
        assert result is not None
        return result

    async def renew_subscription(self, subscription_id: str, expiration: datetime) -> dict[str, Any]:
        body = {"expirationDateTime": expiration.isoformat().replace("+00:00", "Z")}
        builder = self.client.subscriptions.by_subscription_id(subscription_id)
        result = await self._send(Method.PATCH, builder, body=body)
        assert result is not None
        return result

    async def get_subscription(self, subscription_id: str) -> dict[str, Any] | None:
        try:
            return await self._send(Method.GET, self.client.subscriptions.by_subscription_id(subscription_id))
        except GraphError as exc:
            if exc.not_found:
                return None
            raise

    async def list_subscriptions(self) -> list[dict[str, Any]]:
        """Every subscription of this app (all pages): what a 409 on create is about."""
        items: list[dict[str, Any]] = []
        page = await self._send(Method.GET, self.client.subscriptions)
        while page is not None:
            items.extend(page.get("value", []))
            next_link = page.get("@odata.nextLink")
            page = await self._send(Method.GET, url=next_link) if next_link else None
        return items

    async def delete_subscription(self, subscription_id: str) -> None:
        """Delete; a subscription already gone counts as deleted."""
        try:
            await self._send(Method.DELETE, self.client.subscriptions.by_subscription_id(subscription_id))
        except GraphError as exc:
            if not exc.not_found:
                raise

    # -- events -----------------------------------------------------------------------------
    async def create_event(self, user_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Create an event; give `transactionId` in `event` so a retried create never duplicates."""
        result = await self._send(Method.POST, self._user(user_id).events, body=event,
                                  prefer=(IMMUTABLE_ID, UTC_TIMEZONE))
        assert result is not None
        return result

    async def update_event(self, user_id: str, event_id: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """PATCH only the given fields."""
        builder = self._user(user_id).events.by_event_id(event_id)
        result = await self._send(Method.PATCH, builder, body=changes, prefer=(IMMUTABLE_ID, UTC_TIMEZONE))
        assert result is not None
        return result

    async def delete_event(self, user_id: str, event_id: str) -> bool:
        """Delete; False when the event was already gone (a replayed delete)."""
        try:
            await self._send(Method.DELETE, self._user(user_id).events.by_event_id(event_id), prefer=(IMMUTABLE_ID,))
        except GraphError as exc:
            if exc.not_found:
                return False
            raise
        return True

    async def get_event(self, user_id: str, event_id: str, expand_property: str | None = None) -> dict[str, Any] | None:
        """The event (with one single-value extended property expanded), or None if gone."""
        query = {}
        if expand_property:
            query["%24expand"] = f"singleValueExtendedProperties($filter=id eq '{expand_property}')"
        try:
            return await self._send(Method.GET, self._user(user_id).events.by_event_id(event_id), query=query,
                                    prefer=READ)
        except GraphError as exc:
            if exc.not_found:
                return None
            raise

    async def find_events_by_property(self, user_id: str, property_id: str, value: str) -> list[dict[str, Any]]:
        """Events carrying a single-value extended property with this value (e.g. an appointment GUID)."""
        escaped = value.replace("'", "''")
        query = {
            "%24filter": f"singleValueExtendedProperties/Any(ep: ep/id eq '{property_id}' and ep/value eq '{escaped}')",
            "%24expand": f"singleValueExtendedProperties($filter=id eq '{property_id}')",
        }
        page = await self._send(Method.GET, self._user(user_id).events, query=query, prefer=(IMMUTABLE_ID, UTC_TIMEZONE))
        return list((page or {}).get("value", []))

    async def calendar_view(self, user_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Every instance (singles, occurrences, exceptions) overlapping [start, end), all pages."""
        page = await self._send(
            Method.GET, self._user(user_id).calendar_view,
            query={"startDateTime": _iso(start), "endDateTime": _iso(end)},
            prefer=(*READ, "odata.maxpagesize=200"),
        )
        return await self._all_pages(page)

    async def instances(self, user_id: str, master_id: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """The occurrences and exceptions of one series overlapping [start, end), full items, all pages."""
        builder = self._user(user_id).events.by_event_id(master_id).instances
        page = await self._send(Method.GET, builder, query={"startDateTime": _iso(start), "endDateTime": _iso(end)},
                                prefer=(*READ, "odata.maxpagesize=200"))
        return await self._all_pages(page)

    async def _all_pages(self, page: dict[str, Any] | None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while page is not None:
            items.extend(page.get("value", []))
            next_link = page.get("@odata.nextLink")
            page = await self._send(Method.GET, url=next_link, prefer=READ) if next_link else None
        return items

    async def mailbox_time_zone(self, user_id: str) -> str | None:
        """The mailbox's `mailboxSettings.timeZone` (a Windows zone name), None when not set.
        Needs the `MailboxSettings.Read` application permission."""
        settings = await self._send(Method.GET, self._user(user_id).mailbox_settings)
        zone = (settings or {}).get("timeZone")
        return str(zone) if zone else None

    async def delta_page(
        self, user_id: str, *, link: str | None = None, start: datetime | None = None, end: datetime | None = None,
        page_size: int = 100,
    ) -> DeltaPage:
        """One calendarView delta page: from a stored next/delta link, or a fresh round over [start, end)."""
        prefer = (*READ, f"odata.maxpagesize={page_size}")
        if link is not None:
            page = await self._send(Method.GET, url=link, prefer=prefer)
        else:
            assert start is not None and end is not None
            page = await self._send(Method.GET, self._user(user_id).calendar_view.delta,
                                    query={"startDateTime": _iso(start), "endDateTime": _iso(end)}, prefer=prefer)
        page = page or {}
        return DeltaPage(list(page.get("value", [])), page.get("@odata.nextLink"), page.get("@odata.deltaLink"))


def _iso(moment: datetime) -> str:
    """Graph query timestamps: ISO 8601 in UTC with a Z (a naive datetime is taken as UTC)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
