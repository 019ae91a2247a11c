"""The monitor's held changes in headless Chromium: Dime.Scheduler switches the Exchange integration off
for two of three resources at once; the second sync_resources run holds the untrack (the mass-change
guard); an admin sees it on the monitor with what, how many items and since when, releases it (confirming
the dialog), and the two resources are untracked, their Outlook items off the board. A screenshot of the
panel is saved under test-artifacts/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Browser, expect

from connector.stores.registry import Status
from tests.browser.conftest import ARTIFACTS
from tests.browser.test_pages import sign_in, utc
from tests.e2e.conftest import Stack, wait_until

PEOPLE = {"ANNA": "anna@contoso.example", "BERT": "bert@contoso.example", "CLEO": "cleo@contoso.example"}
TIMEOUT = 60


def resources(enabled: dict[str, bool]) -> list[dict[str, Any]]:
    return [{"resourceNo": no, "displayName": no.title(), "email": mail, "exchangeIntegrationEnabled": enabled[no]}
            for no, mail in PEOPLE.items()]


def board(stack: Stack, resource_no: str) -> list[dict[str, Any]]:
    items = stack.ds_control("GET", "/appointments").json()
    return [a for a in items if a["Origin"] == "exchange" and resource_no in a["ResourceNos"]]


@pytest.fixture(scope="module")
def stack(start_stack: Callable[..., Stack]) -> Stack:
    stack = start_stack()
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=1, hours=2)
    seeded = stack.graph_control("POST", "/seed", json={
        "users": [{"displayName": no.title(), "userPrincipalName": mail, "mail": mail} for no, mail in PEOPLE.items()],
        "events": {mail: [{"subject": f"{no} on site", "showAs": "busy", "start": utc(start),
                           "end": utc(start + timedelta(hours=1))}] for no, mail in PEOPLE.items()}})
    assert seeded.status_code == 200, seeded.text
    assert stack.ds_control("POST", "/seed", json={"resources": resources(dict.fromkeys(PEOPLE, True))}).status_code == 200
    stack.run_function("sync_resources")
    for no in PEOPLE:
        wait_until(lambda no=no: board(stack, no), TIMEOUT, what=f"{no}'s Outlook item on the board")
    return stack


def test_an_admin_releases_a_held_mass_untrack_on_the_monitor(browser: Browser, stack: Stack) -> None:
    switched_off = {"ANNA": False, "BERT": False, "CLEO": True}
    assert stack.ds_control("POST", "/seed", json={"resources": resources(switched_off)}).status_code == 200
    registry, holds = stack.services.registry, stack.services.holds
    stack.run_function("sync_resources")  # first run: noted as missing, still tracked
    wait_until(lambda: all((r := registry.get(no)) and r.missing_since for no in ("ANNA", "BERT")), TIMEOUT,
               what="ANNA and BERT noted as missing")
    stack.run_function("sync_resources")  # second run: two of three at once, held
    [hold] = wait_until(lambda: holds.held(), TIMEOUT, what="the untrack held")
    assert all(registry.get(no).status == Status.TRACKED for no in PEOPLE)  # type: ignore[union-attr]

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    sign_in(page, stack, "admin@contoso.example", admin=True, target="/api/ui/admin")
    expect(page.get_by_role("heading", name="Held changes")).to_be_visible()
    row = page.locator("#holds tr", has_text="Untrack")
    expect(row).to_contain_text("ANNA")
    expect(row).to_contain_text("BERT")
    expect(row).to_contain_text("2 of 3 tracked resources")
    expect(row.locator("td").nth(1)).to_have_text(str(hold.items))
    expect(row.locator("td").nth(2)).to_have_text(hold.since.isoformat().replace("T", " ")[:19])
    expect(page.locator("#resources tr", has_text="ANNA")).to_contain_text("missing since")
    page.screenshot(path=str(ARTIFACTS / "monitor-held.png"), full_page=True)

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    row.get_by_role("button", name="Release").click()
    expect(page.locator("#hold-status")).to_contain_text("Released: 2 resource(s) untracked")
    assert dialogs and "Release this change?" in dialogs[0]
    expect(page.locator("#holds")).to_contain_text("Nothing is held.")
    for no in ("ANNA", "BERT"):
        expect(page.locator("#resources tr", has_text=no)).to_contain_text("untracked")
        record = registry.get(no)
        assert record is not None and record.status == Status.UNTRACKED and board(stack, no) == []
    assert registry.get("CLEO").status == Status.TRACKED and board(stack, "CLEO")  # type: ignore[union-attr]
    page.reload()
    expect(page.locator("#activity")).to_contain_text("released by")
    page.screenshot(path=str(ARTIFACTS / "monitor-after-release.png"), full_page=True)
