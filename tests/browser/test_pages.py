"""The real pages in headless Chromium against the local stack, as a technician and an admin use them.

- A resource signs in, switches private items from masked to shown, and the next sync shows the
  private appointment's real subject on the planning board.
- An admin sees a change that failed (Graph down), presses Retry once the fault is lifted, and sees
  it applied; the event is then in the resource's Outlook.
Screenshots of both pages are saved under test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS
from tests.e2e.conftest import Stack, wait_until

EMAIL = "alice@contoso.example"


def utc(moment: datetime) -> dict[str, str]:
    return {"dateTime": moment.strftime("%Y-%m-%dT%H:%M:%S"), "timeZone": "UTC"}


@pytest.fixture(scope="module")
def stack(start_stack: Callable[..., Stack]) -> Stack:
    stack = start_stack(WORK_MAX_ATTEMPTS="1")
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1, hours=2)
    seeded = stack.graph_control("POST", "/seed", json={
        "users": [{"displayName": "Alice Field", "userPrincipalName": EMAIL, "mail": EMAIL}],
        "events": {EMAIL: [{"subject": "Dentist", "sensitivity": "private", "showAs": "oof",
                            "start": utc(start), "end": utc(start + timedelta(hours=1))}]},
    })
    assert seeded.status_code == 200, seeded.text
    resources = stack.ds_control("POST", "/seed", json={"resources": [
        {"resourceNo": "ALICE", "displayName": "Alice Field", "email": EMAIL, "exchangeIntegrationEnabled": True}]})
    assert resources.status_code == 200, resources.text
    stack.run_function("sync_resources")
    return stack


def board(stack: Stack) -> list[dict[str, Any]]:
    return list(stack.ds_control("GET", "/appointments").json())


def sign_in(page: Page, stack: Stack, email: str, admin: bool, target: str) -> None:
    page.goto(f"{stack.app.url}/.auth/login/dev?post_login_redirect_uri={target}")
    page.get_by_label("Email").fill(email)
    if admin:
        page.get_by_label("Connector admin", exact=False).check()
    page.get_by_role("button", name="Sign in").click()


def test_resource_shows_private_items_and_the_board_follows(browser: Browser, stack: Stack) -> None:
    masked = wait_until(lambda: [a for a in board(stack) if a.get("Subject") == "Private appointment"],
                        timeout=30, what="the private item to reach the board, masked")
    assert not masked[0]["Body"]  # masked: no body (blank or never set)

    page = browser.new_page(viewport={"width": 390, "height": 844})  # a phone
    sign_in(page, stack, EMAIL, admin=False, target="/api/ui/")
    expect(page.get_by_role("heading", name="My calendar sync settings")).to_be_visible()
    expect(page.locator("#who")).to_contain_text(EMAIL)
    masked_choice = page.get_by_label("Masked", exact=False)
    expect(masked_choice).to_be_checked()
    page.get_by_label("Shown in full", exact=False).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("#status")).to_contain_text("Saved")
    page.screenshot(path=str(ARTIFACTS / "settings-page.png"), full_page=True)

    stack.run_function("reconcile_exchange")  # the next sync
    wait_until(lambda: [a for a in board(stack) if a.get("Subject") == "Dentist"], timeout=30,
               what="the board to show the private item in full after the setting changed")
    assert not [a for a in board(stack) if a.get("Subject") == "Private appointment"]


def test_admin_retries_a_failed_change_after_the_fault_is_lifted(browser: Browser, stack: Stack) -> None:
    fault = stack.graph_control("POST", "/faults", json={"method": "POST", "route": "/v1.0/users/{id}/events",
                                                         "status": 503})
    assert fault.status_code == 201
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=2, hours=9)
    created = stack.ds_control("POST", "/planner/appointments", json={
        "Subject": "Boiler maintenance", "StartDate": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "EndDate": (start + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "Assignments": [{"Resource": {"ResourceNo": "ALICE"}}],
        # Dime.Scheduler routes webhooks by the job's Source App: the demo back office, which the stack follows.
        "Task": {"TaskNo": "T-1", "Job": {"SourceApp": "DEMO", "SourceType": "SVC", "JobNo": "J-1001"}}})
    assert created.status_code == 201
    guid = created.json()["AppointmentGuid"]
    wait_until(lambda: stack.services.work_queues.depth("planning-changes-poison") > 0, timeout=30,
               what="the failed change to be parked")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, stack, "admin@contoso.example", admin=True, target="/api/ui/admin")
    expect(page.get_by_role("heading", name="Failed work")).to_be_visible()
    failed_row = page.locator("#failed tr", has_text=guid)
    expect(failed_row).to_be_visible()
    expect(page.locator("#activity")).to_contain_text("failed")
    page.screenshot(path=str(ARTIFACTS / "monitor-failed.png"), full_page=True)

    stack.graph_control("DELETE", "/faults")
    failed_row.get_by_role("button", name="Retry").click()
    expect(page.locator("#retry-status")).to_contain_text("Queued again")
    user = stack.graph_api("GET", f"/users/{EMAIL}").json()["id"]
    wait_until(lambda: [e for e in stack.graph_api("GET", f"/users/{user}/events").json()["value"]
                        if e["subject"] == "Boiler maintenance"], timeout=30, what="the retried event in Outlook")
    page.reload()
    expect(page.locator("#activity tr", has_text="applied").first).to_be_visible()
    alice_row = page.locator("#resources tr", has_text="ALICE")
    expect(alice_row.locator("td").nth(5)).not_to_have_text("—")  # last sync to Outlook is shown
    expect(page.locator("#failed")).to_contain_text("Nothing has failed.")
    page.screenshot(path=str(ARTIFACTS / "monitor-after-retry.png"), full_page=True)
