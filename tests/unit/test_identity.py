"""Who may use the principal-based routes: a host without App Service Authentication in front fails
closed (the principal header would be anyone's to forge); only the dev host's setting lets its sign-in
stand-in in."""

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
        assert refused.value.status == 403 and "WEBSITE_AUTH_ENABLED is not True" in str(refused.value)


def test_a_host_with_neither_easy_auth_nor_the_dev_setting_refuses_a_forged_admin() -> None:
    """Off App Service (a container, `func start`, a VM) nothing strips a client-sent header."""
    admin = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Eve", "eve@evil.example", ("Connector.Admin",), "user-eve")}
    for env in ({}, {"EASY_AUTH_DEV_TRUST": "false"}, {"EASY_AUTH_DEV_TRUST": ""}, {"WEBSITE_AUTH_ENABLED": "False"}):
        with pytest.raises(ApiError) as refused:
            authenticate(admin, env)
        assert refused.value.status == 403
        assert "WEBSITE_AUTH_ENABLED is not True" in refused.value.message
        assert "EASY_AUTH_DEV_TRUST is not true" in refused.value.message


def test_the_header_is_trusted_where_easy_auth_is_enabled_or_the_dev_setting_says_so() -> None:
    admin = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Ada", "ada@contoso.example", ("Connector.Admin",), "user-ada")}
    assert authenticate(admin, {"WEBSITE_AUTH_ENABLED": "True"}).is_admin("Connector.Admin")
    assert authenticate(admin, {"EASY_AUTH_DEV_TRUST": "true"}).is_admin("Connector.Admin")
    assert authenticate(admin, {"EASY_AUTH_DEV_TRUST": " TRUE "}).is_admin("Connector.Admin")


def test_the_dev_setting_is_ignored_on_app_service() -> None:
    """On App Service only the platform's own flag counts: a stray dev setting opens nothing."""
    with pytest.raises(ApiError) as refused:
        authenticate(HEADERS, {"WEBSITE_SITE_NAME": "func-connector", "EASY_AUTH_DEV_TRUST": "true"})
    assert refused.value.status == 403 and "WEBSITE_AUTH_ENABLED is not True" in refused.value.message


def test_in_azure_with_easy_auth_the_principal_is_read() -> None:
    headers = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Alice", "alice@contoso.example", object_id="user-alice")}
    principal = authenticate(headers, {"WEBSITE_SITE_NAME": "func-connector", "WEBSITE_AUTH_ENABLED": "True"})
    assert principal.emails == frozenset({"alice@contoso.example"}) and principal.object_id == "user-alice"


DEV = {"EASY_AUTH_DEV_TRUST": "true"}


def test_on_the_dev_host_the_dev_sign_in_stands_in_for_easy_auth() -> None:
    assert authenticate(HEADERS, DEV).name == "Alice"
    with pytest.raises(ApiError) as missing:
        authenticate({}, DEV)
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


def test_behind_easy_auth_a_principal_without_object_id_is_refused_on_the_dev_host_email_stands_in() -> None:
    for easy_auth in (AZURE, {"WEBSITE_AUTH_ENABLED": "True"}):
        with pytest.raises(ApiError) as refused:
            authenticate(HEADERS, easy_auth)
        assert refused.value.status == 401 and "oid" in str(refused.value)
    with_oid = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Alice", "alice@contoso.example", object_id="user-alice")}
    assert authenticate(with_oid, AZURE).object_id == "user-alice"
    alice = ResourceRecord("ALICE", "alice@contoso.example", user_id="user-alice", status=Status.TRACKED)
    assert _api(alice).resource_of(authenticate(HEADERS, DEV)).resource_no == "ALICE"
