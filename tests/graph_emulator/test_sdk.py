"""The msgraph-sdk talks to the emulator: typed create/get of an event and a subscription."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)

from .conftest import TOKEN, Graph, Receiver

# The SDK's generated request builders warn about their own deprecated configuration classes.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


class StaticToken(AccessTokenProvider):
    def __init__(self, token: str) -> None:
        self._token = token
        self._validator = AllowedHostsValidator(["127.0.0.1", "localhost"])

    async def get_authorization_token(self, uri: str, additional_authentication_context: dict | None = None) -> str:  # type: ignore[type-arg]
        return self._token

    def get_allowed_hosts_validator(self) -> AllowedHostsValidator:
        return self._validator


async def test_sdk_event_and_subscription(graph: Graph, receiver: Receiver) -> None:
    from msgraph import GraphRequestAdapter, GraphServiceClient
    from msgraph.generated.models.body_type import BodyType
    from msgraph.generated.models.date_time_time_zone import DateTimeTimeZone
    from msgraph.generated.models.event import Event
    from msgraph.generated.models.item_body import ItemBody
    from msgraph.generated.models.single_value_legacy_extended_property import SingleValueLegacyExtendedProperty
    from msgraph.generated.models.subscription import Subscription

    graph.user()
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken(TOKEN)))
    adapter.base_url = graph.url + "/v1.0"
    client = GraphServiceClient(request_adapter=adapter)
    mailbox = client.users.by_user_id("ann@contoso.com")

    created = await mailbox.events.post(Event(
        subject="From the SDK",
        body=ItemBody(content_type=BodyType.Text, content="hello"),
        start=DateTimeTimeZone(date_time="2026-01-05T09:00:00", time_zone="W. Europe Standard Time"),
        end=DateTimeTimeZone(date_time="2026-01-05T10:00:00", time_zone="W. Europe Standard Time"),
        transaction_id="sdk-tx-1",
        single_value_extended_properties=[SingleValueLegacyExtendedProperty(
            id="String {66f5a359-4659-4830-9070-00047ec6ac6e} Name AppointmentId", value="appt-9")],
    ))
    assert created is not None and created.id and created.change_key
    fetched = await mailbox.events.by_event_id(created.id).get()
    assert fetched is not None
    assert fetched.subject == "From the SDK"
    assert fetched.start is not None and fetched.start.date_time == "2026-01-05T08:00:00.0000000"
    assert fetched.transaction_id == "sdk-tx-1"

    subscription = await client.subscriptions.post(Subscription(
        change_type="created,updated,deleted",
        notification_url=receiver.url("/ok"),
        resource="users/ann@contoso.com/events",
        expiration_date_time=datetime.now(UTC) + timedelta(days=1),
        client_state="sdk-state",
    ))
    assert subscription is not None and subscription.id
    assert subscription.client_state == "sdk-state"
    assert subscription.expiration_date_time is not None
    assert len(receiver.validations()) == 1
    assert graph.stats()["requests"]["POST /v1.0/subscriptions"] == 1
