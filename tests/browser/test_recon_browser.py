"""A reconciler starts a run from the sample's files in a real Chromium, waits for it, opens a
discrepancy with its evidence side by side and resolves it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from atm_service.models.reconciliation import DiscrepancyStatus
from atm_service.models.users import Role
from atm_service.services import discrepancies
from tests.browser.conftest import LiveServer
from tests.samples import sample_dir
from tests.support import PASSWORD, add_user

pytestmark = [pytest.mark.browser, pytest.mark.slow]

DESK = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def _fits(page: Any, width: int) -> None:
    assert page.evaluate("document.documentElement.scrollWidth") <= width


def test_reconciler_runs_the_sample_and_resolves_a_discrepancy(
    browser: Any, live_server: LiveServer, artifacts: Path
) -> None:
    sample = sample_dir()
    add_user(live_server.context, Role.RECONCILER, "rita")
    page = browser.new_page(viewport=DESK)
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        page.goto(live_server.url + "/reconciliation")
        page.get_by_label("User name").fill("rita")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(live_server.url + "/reconciliation")
        assert page.get_by_role("heading", level=1).inner_text() == "Reconciliation"

        form = page.locator(
            "section", has=page.get_by_role("heading", name="Start a run from files")
        )
        for kind, label in (
            ("ej", "Electronic journals"),
            ("paper", "Paper journals"),
            ("host", "Host files (ISO 8583, CSV)"),
            ("counters", "Counters"),
        ):
            form.get_by_label(label, exact=True).set_input_files(
                sorted(str(path) for path in (sample / kind).iterdir())
            )
        page.screenshot(path=str(artifacts / "recon-1-start-1366.png"), full_page=True)
        form.get_by_role("button", name="Start run").click()
        page.wait_for_url(f"{live_server.url}/reconciliation/runs/*")
        # The page refreshes itself (no script) until the worker has finished the run.
        page.wait_for_selector("#run-state:text-is('done')", timeout=60_000)
        assert "Owed to customers" in page.inner_text("main")
        assert page.locator("#by-kind tbody tr").count() == 14
        page.screenshot(path=str(artifacts / "recon-2-run-done-1366.png"), full_page=True)

        page.locator("#by-kind").get_by_role("link", name="No dispense, no reversal").click()
        page.wait_for_url("**/reconciliation/discrepancies?*")
        rows = page.locator("#discrepancies tbody tr")
        assert rows.count() == 6
        assert "6 of 6" in page.inner_text("#list-summary")
        page.screenshot(path=str(artifacts / "recon-3-list-1366.png"), full_page=True)
        rows.first.get_by_role("link").first.click()
        page.wait_for_url(re.compile(r".*/reconciliation/discrepancies/\d+(\?.*)?$"))

        # The evidence side by side: EJ and paper excerpts, host messages, counters.
        stan = page.locator("dt:text-is('STAN') + dd").inner_text()
        marked = page.locator(".evidence .pane").nth(0).locator("mark").all_inner_texts()
        assert any(stan in line for line in marked), marked
        assert page.locator(".evidence .pane").nth(1).locator("pre").count() == 1
        host = page.locator(".evidence .pane").nth(2).inner_text()
        assert "0200" in host
        assert "0210" in host
        assert "0420" not in host
        assert page.locator(".evidence .pane").nth(3).locator("table").count() >= 1
        boxes = [page.locator(".evidence .pane").nth(i).bounding_box() for i in range(2)]
        assert boxes[0] is not None
        assert boxes[1] is not None
        assert boxes[0]["y"] == boxes[1]["y"], "not side by side"
        assert boxes[0]["x"] < boxes[1]["x"], "not side by side"
        assert "Refund the customer" in page.inner_text(".recon-head")
        assert page.locator("#status").inner_text() == "open"
        page.screenshot(path=str(artifacts / "recon-4-evidence-1366.png"), full_page=True)

        page.get_by_label("What was done").fill("Refunded to the card, reference RF-2211.")
        page.get_by_role("button", name="Mark resolved").click()
        page.wait_for_selector("#status:text-is('resolved')")
        assert "Refunded to the card, reference RF-2211." in page.inner_text("#history")
        assert page.get_by_role("button", name="Reopen").is_visible()
        page.screenshot(path=str(artifacts / "recon-5-resolved-1366.png"), full_page=True)

        page.set_viewport_size(PHONE)
        page.reload()
        _fits(page, PHONE["width"])
        page.screenshot(path=str(artifacts / "recon-6-resolved-390.png"), full_page=True)
        assert errors == []
        discrepancy_id = int(page.url.split("/")[-1].split("?")[0])
    finally:
        page.close()

    with live_server.context.database.session() as session:
        stored = discrepancies.get_discrepancy(session, discrepancy_id=discrepancy_id)
        trail = discrepancies.history(session, discrepancy_id=discrepancy_id)
    assert stored.status is DiscrepancyStatus.RESOLVED
    assert stored.kind == "no_dispense_no_reversal"
    assert [(e.actor, e.note) for e in trail] == [
        ("rita", "Refunded to the card, reference RF-2211.")
    ]
