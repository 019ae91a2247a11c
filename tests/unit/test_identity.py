"""Who may use the principal-based routes: a deployment without App Service Authentication in front
fails closed (the principal header would be anyone's to forge); locally the dev sign-in stands in."""

from __future__ import annotations

import pytest

from connector.web.identity import encode_principal
from connector.web.settings_api import ApiError, authenticate

HEADERS = {"X-MS-CLIENT-PRINCIPAL": encode_principal("Alice", "alice@contoso.example")}


def test_in_azure_without_easy_auth_every_principal_is_refused() -> None:
    for auth in ({}, {"WEBSITE_AUTH_ENABLED": "False"}, {"WEBSITE_AUTH_ENABLED": ""}):
        with pytest.raises(ApiError) as refused:
            authenticate(HEADERS, {"WEBSITE_SITE_NAME": "func-connector", **auth})
        assert refused.value.status == 503 and "App Service Authentication" in str(refused.value)


def test_in_azure_with_easy_auth_the_principal_is_read() -> None:
    principal = authenticate(HEADERS, {"WEBSITE_SITE_NAME": "func-connector", "WEBSITE_AUTH_ENABLED": "True"})
    assert principal.emails == frozenset({"alice@contoso.example"})


def test_locally_the_dev_sign_in_stands_in_for_easy_auth() -> None:
    assert authenticate(HEADERS, {}).name == "Alice"
    with pytest.raises(ApiError) as missing:
        authenticate({}, {})
    assert missing.value.status == 401
