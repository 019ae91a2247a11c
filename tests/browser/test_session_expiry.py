"""The pages behind sign-in, in headless Chromium, with the dev host's Easy Auth stand-in in front:

- Opening a page without a session goes to sign-in and, signed in, back to that page.
- When the session ends under an open page (the cookie is deleted), the page's next call gets 401
  from Easy Auth (it sends X-Requested-With) and the page reloads itself into the sign-in flow
  instead of showing a broken page; the change it tried to save never reached the app.
- The monitor, which refreshes itself, does the same with no click at all.
"""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from connector.stores.registry import ResourceRecord
from tests.e2e.conftest import Stack

EMAIL = "alice@contoso.example"


@pytest.fixture(scope="module")
def stack(start_stack: Callable[..., Stack]) -> Stack:
    stack = start_stack()
    stack.services.registry.save(ResourceRecord("ALICE", EMAIL, "Alice Field", "user-ALICE"))
    stack.services.resource_settings.ensure_account("ALICE")
    return stack


def at_sign_in(page: Page, back_to: str) -> None:
    """The page shows the dev sign-in form, which returns to ``back_to`` afterwards."""
    expect(page.get_by_role("heading", name="Dev sign-in")).to_be_visible()
    url = urlsplit(page.url)
    assert url.path == "/.auth/login/dev"
    assert parse_qs(url.query)["post_login_redirect_uri"] == [back_to]


def sign_in(page: Page, email: str, admin: bool = False) -> None:
    page.get_by_label("Email").fill(email)
    if admin:
        page.get_by_label("Connector admin", exact=False).check()
    page.get_by_role("button", name="Sign in").click()


def test_an_expired_session_sends_the_settings_page_to_sign_in(browser: Browser, stack: Stack) -> None:
    page = browser.new_page()
    page.goto(f"{stack.app.url}/api/ui/")  # no session yet: Easy Auth sends the browser to sign in
    at_sign_in(page, "/api/ui/")
    sign_in(page, EMAIL)
    expect(page.locator("#who")).to_contain_text(EMAIL)
    assert urlsplit(page.url).path == "/api/ui/"

    page.context.clear_cookies()  # the session ends (expired, or signed out in another tab)
    page.get_by_label("Shown in full", exact=False).check()
    page.get_by_role("button", name="Save").click()  # a fetch: 401 from Easy Auth
    at_sign_in(page, "/api/ui/")
    mine = page.request.get(f"{stack.app.url}/api/settings/me", headers={"X-Requested-With": "XMLHttpRequest"})
    assert mine.status == 401  # this browser has no session any more

    sign_in(page, EMAIL)  # and back to the page, which loads again
    expect(page.locator("#who")).to_contain_text(EMAIL)
    expect(page.get_by_label("Masked", exact=False)).to_be_checked()  # the save never reached the app
    expect(page.locator("#banner")).to_be_hidden()


def test_the_monitor_goes_to_sign_in_on_its_own_refresh(browser: Browser, stack: Stack) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(f"{stack.app.url}/api/ui/admin")
    at_sign_in(page, "/api/ui/admin")
    sign_in(page, "admin@contoso.example", admin=True)
    expect(page.get_by_role("heading", name="Failed work")).to_be_visible()
    page.context.clear_cookies()
    page.wait_for_url("**/.auth/login/dev?**", timeout=20_000)  # the 10 s auto-refresh, no click
    at_sign_in(page, "/api/ui/admin")


def test_a_401_right_after_signing_in_shows_an_error_instead_of_looping(browser: Browser, stack: Stack) -> None:
    page = browser.new_page()
    page.goto(f"{stack.app.url}/api/ui/")
    sign_in(page, EMAIL)
    expect(page.locator("#who")).to_contain_text(EMAIL)
    # The app itself refuses the signed-in user (what a principal it cannot read would get).
    page.route("**/api/settings/me", lambda route: route.fulfill(status=401, content_type="application/json",
                                                                 body='{"error": {"message": "sign-in required"}}'))
    page.reload()
    at_sign_in(page, "/api/ui/")  # the first 401: maybe the session ended, so sign in again
    sign_in(page, EMAIL)
    expect(page.locator("#banner")).to_contain_text("sign-in required")  # the second: say so, no loop
    assert urlsplit(page.url).path == "/api/ui/"
