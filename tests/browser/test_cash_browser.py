"""A dispatcher makes a cash plan in Chromium and reads its route map and an ATM's charts."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from atm_service.models.users import Role
from tests.browser.conftest import LiveServer
from tests.service.cash_world import import_history, report_cash
from tests.service.dispatch_world import NEW_YORK, build
from tests.support import PASSWORD, add_user

pytestmark = pytest.mark.browser


def test_a_dispatcher_plans_and_reads_the_charts(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    context = live_server.context
    now = datetime.now(UTC)
    today = now.astimezone(ZoneInfo(NEW_YORK)).date()
    with context.database.session() as session:
        world = build(session, passwords=context.passwords, now=now)
        for n, terminal in enumerate(("T1000001", "T1000002", "T1000003")):
            import_history(session, world.atms[terminal], today=today, days=70, now=now, seed=n)
        report_cash(session, world.atms["T1000001"], (150, 0, 900, 1200), now=now)
        report_cash(session, world.atms["T1000002"], (2500, 2500, 2000, 2000), now=now)
        report_cash(session, world.atms["T1000003"], (1500, 1500, 1500, 1500), now=now)
    add_user(context, Role.DISPATCHER, "dana")
    page = browser.new_page(viewport={"width": 1100, "height": 900})
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_server.url + "/cash")
        page.get_by_label("User name").fill("dana")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/cash")
        page.get_by_label("Region").select_option("North")
        page.get_by_role("button", name="Make the plan").click()
        page.wait_for_url("**/cash/plans/*")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Cash plan")
        route_map = page.locator("figure.chart svg").first
        route_map.wait_for()
        box = route_map.bounding_box()
        assert box is not None
        assert box["width"] > 300
        assert page.get_by_role("rowheader", name="T1000001").first.is_visible()
        page.screenshot(path=str(artifacts / "cash-plan.png"), full_page=True)
        page.get_by_role("button", name="Open the tasks").click()
        page.wait_for_selector("text=replenishment task")
        page.get_by_role("link", name="T1000001").first.click()
        page.wait_for_url("**/cash/atms/*")
        charts = page.locator("figure.chart svg")
        assert charts.count() == 4
        page.screenshot(path=str(artifacts / "cash-atm.png"), full_page=True)
        page.set_viewport_size({"width": 360, "height": 740})
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
        assert errors == []
    finally:
        page.close()
