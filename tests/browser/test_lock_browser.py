"""An engineer on site, on a 360 px phone: asks for the safe code, sees it once in large
digits, keys it into the (simulated) lock, relocks, and reports the close seal."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from atm_service.app import create_app
from atm_service.context import AppContext
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from lockctl import Outcome
from tests.browser.conftest import LiveServer
from tests.service.dispatch_world import build
from tests.service.lock_world import lock_settings, on_site, provision, simulated
from tests.support import PASSWORD, FakeClock

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}


@pytest.fixture
def lock_server(tmp_path: Path) -> Iterator[LiveServer]:
    engine = create_engine(f"sqlite:///{tmp_path / 'live.db'}")
    database = Database(engine)
    upgrade(database)
    app = create_app(lock_settings(), database=database)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("the live server did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield LiveServer(url=f"http://127.0.0.1:{port}", context=app.state.context)
    server.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


def _fits_the_phone(page: Any) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    for button in page.get_by_role("button").all():
        if button.is_visible():
            box = button.bounding_box()
            assert box is not None
            assert box["height"] >= 44, button.inner_text()


def test_engineer_gets_the_safe_code_and_reports_the_seal(
    browser: Any, lock_server: LiveServer, artifacts: Path
) -> None:
    context: AppContext = lock_server.context
    clock = FakeClock(now=datetime.now(UTC))
    with context.database.session() as session:
        world = build(session, passwords=context.passwords, now=clock())
        provision(session, context, world)
        lock = simulated(session, context, world, clock)
        task = on_site(session, world, clock)
    page = browser.new_page(viewport=PHONE)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(f"{lock_server.url}/my/tasks/{task.id}")
        page.get_by_label("User name").fill("eli")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{lock_server.url}/my/tasks/{task.id}")
        card = page.locator("#safe-lock")
        assert "Safe lock CX-1000001" in card.inner_text()
        assert "Operation flm" in card.inner_text()
        card.get_by_role("button", name="Get safe code").click()
        page.wait_for_selector("#otc")
        code = page.locator("#otc").inner_text().replace("\n", "").replace(" ", "")
        assert len(code) == 8
        assert code.isdigit()
        assert page.locator("#otc").evaluate("e => getComputedStyle(e).userSelect") == "none"
        assert "Shown once" in page.content()
        assert "Works until" in page.locator(".otc-until").inner_text()
        _fits_the_phone(page)
        page.screenshot(path=str(artifacts / "lock-1-code-360.png"), full_page=True)

        clock.now = datetime.now(UTC)
        assert lock.enter_code(world.users["eli"], code) is Outcome.OPENED
        lock.open_door()
        shown = lock.close_door()
        page.get_by_label("Close seal shown by the lock").fill(f"{shown[:4]}-{shown[4:]}")
        page.get_by_role("button", name="Report seal").click()
        page.wait_for_selector("text=Seal accepted")
        assert code not in page.content()  # never shown again
        assert page.get_by_role("button", name="Get safe code").is_visible()
        _fits_the_phone(page)
        page.screenshot(path=str(artifacts / "lock-2-sealed-360.png"), full_page=True)
        assert errors == []
    finally:
        page.close()
