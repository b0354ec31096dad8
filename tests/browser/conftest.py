"""Browser fixtures: the real service on a loopback port, and Debian's chromium
driven by Playwright (no browser is downloaded).

Without chromium these tests skip, unless ``ATM_REQUIRE_BROWSER=1`` (as in CI).
Screenshots go to ``test-artifacts/`` (or ``ATM_TEST_ARTIFACTS``).
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from atm_service.app import create_app
from atm_service.context import AppContext
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from tests.support import make_settings

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    configured = os.environ.get("ATM_CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


@dataclass
class LiveServer:
    url: str
    context: AppContext


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    engine = create_engine(f"sqlite:///{tmp_path / 'live.db'}")
    database = Database(engine)
    upgrade(database)
    # A committed database of its own: the reconciliation worker may run for real.
    app = create_app(make_settings(recon_poll_seconds=0.2), database=database)
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


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = chromium_path()
    if path is None:
        message = "no chromium found (install Debian's chromium or set ATM_CHROMIUM)"
        if os.environ.get("ATM_REQUIRE_BROWSER", "") not in ("", "0"):
            pytest.fail(message + ", and ATM_REQUIRE_BROWSER=1")
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def artifacts() -> Path:
    path = Path(os.environ.get("ATM_TEST_ARTIFACTS", "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path
