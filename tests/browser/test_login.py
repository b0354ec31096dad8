"""Logging in through the real page in Chromium, on a phone-sized screen."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from atm_service.models.users import Role
from tests.browser.conftest import LiveServer
from tests.support import PASSWORD, add_user

pytestmark = pytest.mark.browser


def test_engineer_logs_in_on_a_phone(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    add_user(live_server.context, Role.ENGINEER, "eli")
    page = browser.new_page(viewport={"width": 360, "height": 740})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        page.goto(live_server.url + "/")
        assert page.url.endswith("/login?next=/")
        page.get_by_label("User name").fill("eli")
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Log in").click()
        assert "Wrong user name or password" in page.get_by_role("alert").inner_text()

        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/")
        assert page.get_by_role("heading", level=1).inner_text() == "Field engineer"
        assert page.get_by_text("My dispatches").is_visible()
        # Nothing is wider than the phone's screen.
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        button = page.get_by_role("button", name="Log out").bounding_box()
        assert button is not None
        assert button["height"] >= 44
        page.screenshot(path=str(artifacts / "login-engineer-360.png"), full_page=True)

        page.get_by_role("button", name="Log out").click()
        page.wait_for_url(live_server.url + "/login")
        assert errors == []
    finally:
        page.close()
