"""An engineer works a dispatch on a phone-sized Chromium: it arrives live, they resolve it."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from atm_service.models.users import Role
from tests.browser.conftest import LiveServer
from tests.service.dispatch_world import NEW_YORK, build, fault
from tests.support import PASSWORD, add_user

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


def _check_phone_layout(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for button in page.get_by_role("button").all():
        if button.is_visible():
            box = button.bounding_box()
            assert box is not None
            assert box["height"] >= 44, button.inner_text()


def test_engineer_gets_a_live_dispatch_and_resolves_it(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    context = live_server.context
    with context.database.session() as session:
        world = build(session, passwords=context.passwords, now=datetime.now(UTC))
    add_user(context, Role.DISPATCHER, "dana")
    page = browser.new_page(viewport=PHONE)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_server.url + "/my")
        page.get_by_label("User name").fill("eli")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/my")
        assert page.get_by_role("heading", level=1).inner_text() == "My dispatches"
        assert page.get_by_text("No dispatches right now").is_visible()
        page.wait_for_selector("#tasks[data-live]")  # the event stream is open
        page.evaluate("window.stillTheSamePage = true")

        # A fault at North Station, reported through the service.
        local = datetime.now(ZoneInfo(NEW_YORK)).strftime("%Y-%m-%dT%H:%M:%S")
        with httpx.Client(base_url=live_server.url) as dispatcher:
            login = dispatcher.post(
                "/api/v1/session", json={"username": "dana", "password": PASSWORD}
            )
            response = dispatcher.post(
                f"/api/v1/atms/{world.atms['T1000001']}/device-events",
                json=fault(local),
                headers={"X-CSRF-Token": login.json()["csrf_token"]},
            )
        assert response.status_code == 200, response.text
        task = response.json()["tasks"][0]
        card = page.locator(f"#task-{task['id']}")
        card.wait_for(timeout=5000)
        assert page.evaluate("window.stillTheSamePage") is True  # no reload
        assert not page.get_by_text("No dispatches right now").is_visible()
        assert "T1000001" in card.inner_text()
        assert "Dispenser: note jam in presenter" in card.inner_text()
        assert "on site by" in card.inner_text()
        assert " min" in card.locator(".countdown").inner_text()
        _check_phone_layout(page)
        page.screenshot(path=str(artifacts / "dispatch-1-live-360.png"), full_page=True)

        card.get_by_role("link").click()
        page.wait_for_url(f"{live_server.url}/my/tasks/{task['id']}")
        assert page.get_by_role("link", name="Open map").is_visible()
        _check_phone_layout(page)
        page.screenshot(path=str(artifacts / "dispatch-2-detail-360.png"), full_page=True)

        for button, state in (
            ("Accept", "accepted"),
            ("On my way", "en route"),
            ("Arrived on site", "on site"),
        ):
            page.get_by_role("button", name=button).click()
            page.wait_for_selector(f"#what ~ p .state:text-is('{state}')")
        page.get_by_label("Resolution").select_option("cleared_jam")
        page.get_by_label("What was done").fill("Removed a folded note from the presenter.")
        _check_phone_layout(page)
        page.screenshot(path=str(artifacts / "dispatch-3-on-site-360.png"), full_page=True)
        page.get_by_role("button", name="Resolve").click()
        page.wait_for_url(live_server.url + "/my")
        assert page.get_by_text("No dispatches right now").is_visible()
        page.screenshot(path=str(artifacts / "dispatch-4-resolved-360.png"), full_page=True)
        assert errors == []
    finally:
        page.close()

    with context.database.session() as session:
        from atm_service.services import tasks

        stored = tasks.get_task(session, task_id=task["id"])
        assert stored.state.value == "resolved"
        assert stored.resolution_notes == "Removed a folded note from the presenter."
        actions = [e.action for e in tasks.history(session, task_id=task["id"])]
    assert actions == ["opened", "assign", "accept", "depart", "arrive", "resolve"]
