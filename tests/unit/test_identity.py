"""Who may use the principal-based routes: a deployment without App Service Authentication in front
fails closed (the principal header would be anyone's to forge); locally the dev sign-in stands in."""

from __future__ import annotations

from typing import Any, cast

import pytest

from connector.stores.registry import ResourceRecord, ResourceRegistry, Status
from connector.web.identity import encode_principal, parse_principal
from connector.web.settings_api import ApiError, SettingsApi, authenticate

HEADERS = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Alice", "alice@contoso.example")}


def test_in_azure_without_easy_auth_every_principal_is_refused() -> None:
    for auth in ({}, {"WEBSITE_AUTH_ENABLED": "False"}, {"WEBSITE_AUTH_ENABLED": ""}):
        with pytest.raises(ApiError) as refused:
            authenticate(HEADERS, {"WEBSITE_SITE_NAME": "func-connector", **auth})
        assert refused.value.status == 503 and "App Service Authentication" in str(refused.value)


def test_in_azure_with_easy_auth_the_principal_is_read() -> None:
    headers = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Alice", "alice@contoso.example", object_id="user-alice")}
    principal = authenticate(headers, {"WEBSITE_SITE_NAME": "func-connector", "WEBSITE_AUTH_ENABLED": "True"})
    assert principal.emails == frozenset({"alice@contoso.example"}) and principal.object_id == "user-alice"


def test_locally_the_dev_sign_in_stands_in_for_easy_auth() -> None:
    assert authenticate(HEADERS, {}).name == "Alice"
    with pytest.raises(ApiError) as missing:
        authenticate({}, {})
    assert missing.value.status == 401


AZURE = {"WEBSITE_SITE_NAME": "func-connector", "WEBSITE_AUTH_ENABLED": "True"}


class _Registry:
    def __init__(self, *records: ResourceRecord) -> None:
        self.records = records

    def all(self) -> list[ResourceRecord]:
        return list(self.records)


def _api(*records: ResourceRecord) -> SettingsApi:
    return SettingsApi(cast(ResourceRegistry, _Registry(*records)), cast(Any, None), "Connector.Admin")


def _principal(email: str, object_id: str = "") -> Any:
    return parse_principal({"X-MS-CLIENT-PRINCIPAL": encode_principal("x", email, object_id=object_id)})


def test_a_resource_is_its_mailbox_by_object_id_not_by_email() -> None:
    """An email moved to someone else (reused, or a rename) does not carry the old owner's settings."""
    alice = ResourceRecord("ALICE", "alice@contoso.example", user_id="0A1B-user-alice", status=Status.TRACKED)
    bob = ResourceRecord("BOB", "bob@contoso.example", user_id="user-bob", status=Status.TRACKED)
    api = _api(alice, bob)
    assert api.resource_of(_principal("bob@contoso.example", "0a1b-USER-alice")).resource_no == "ALICE"
    with pytest.raises(ApiError) as reused:  # the email is Alice's, the account is someone new
        api.resource_of(_principal("alice@contoso.example", "user-newcomer"))
    assert reused.value.status == 403
    untracked = ResourceRecord("CAROL", "carol@contoso.example", user_id="user-carol", status=Status.UNTRACKED)
    with pytest.raises(ApiError):
        _api(untracked).resource_of(_principal("carol@contoso.example", "user-carol"))


def test_in_azure_a_principal_without_object_id_is_refused_locally_email_stands_in() -> None:
    with pytest.raises(ApiError) as refused:
        authenticate(HEADERS, AZURE)
    assert refused.value.status == 401 and "oid" in str(refused.value)
    with_oid = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Alice", "alice@contoso.example", object_id="user-alice")}
    assert authenticate(with_oid, AZURE).object_id == "user-alice"
    alice = ResourceRecord("ALICE", "alice@contoso.example", user_id="user-alice", status=Status.TRACKED)
    assert _api(alice).resource_of(authenticate(HEADERS, {})).resource_no == "ALICE"
