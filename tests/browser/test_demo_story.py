"""The README's walk-through, in a real Chromium, against ``atm-service demo`` itself.

The demo runs as a process with two ATMs, each on a pseudo-terminal with its
``atm-agent run`` process, their safe locks and the panel. A cassette's low
sensor trips on the panel; the replenishment reaches the engineer's phone; the
engineer accepts, travels, arrives, gets the safe code, keys it on the panel's
lock, opens the safe, replenishes, closes it, reports the seal (verified) and
the counts, and resolves. A reconciler runs the closed day from the journals the
agents uploaded with the switch's files; an auditor verifies the lock log. A
Ctrl-C at the terminal (SIGINT to the process group) stops every process and the
demo exits 0.
"""

from __future__ import annotations

import json
import re
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system.demo_support import DemoProcess, alive, descendants, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PHONE = {"width": 390, "height": 844}
DESK = {"width": 1366, "height": 900}


def _log_in(page: Any, url: str, username: str, password: str, then: str) -> None:
    page.goto(url + then)
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url + then)


def _ingested(demo: DemoProcess, day: str, terminals: list[str]) -> bool:
    """Whether the service holds each terminal's whole journal of ``day`` (as on the ATM)."""
    with httpx.Client(base_url=demo.url) as client:
        client.post(
            "/api/v1/session", json={"username": "recon", "password": demo.logins["recon"]}
        ).raise_for_status()
        found = client.get(
            "/api/v1/reconciliation/ingested-days",
            params={"date_from": day, "date_to": day},
        ).json()["items"]
    sizes = {item["terminal_id"]: item["size"] for item in found}
    stem = day.replace("-", "")
    return all(
        sizes.get(tid) == (demo.data_dir / "sim" / "ej" / f"{tid}_{stem}.txt").stat().st_size
        for tid in terminals
    )


def test_the_demo_story_from_a_fault_to_the_audit(
    browser: Any, tmp_path: Path, artifacts: Path
) -> None:
    demo = DemoProcess(tmp_path, atms=2, extra=("--mean-transactions", "60", "--baud", "460800"))
    demo.start()
    try:
        assert set(demo.logins) == {
            "admin",
            "dispatch",
            "engineer",
            "engineer2",
            "recon",
            "auditor",
        }
        processes = descendants(demo.process.pid if demo.process else 0)
        assert len(processes) >= 4  # the service, the world and an agent per ATM
        _story(browser, demo, artifacts)
        code = demo.stop(signal.SIGINT, group=True)
    finally:
        demo.kill()
    assert code == 0, "\n".join(demo.lines)
    assert "Stopped." in demo.lines
    assert not any("Traceback" in line for line in demo.lines)
    assert [pid for pid in processes if alive(pid)] == []
    for log in (demo.data_dir / "logs").iterdir():
        assert "Traceback" not in log.read_text(), log.name


def _story(browser: Any, demo: DemoProcess, artifacts: Path) -> None:
    phone = browser.new_context(viewport=PHONE)
    desk = browser.new_context(viewport=DESK)
    errors: list[str] = []
    engineer, panel = phone.new_page(), desk.new_page()
    for page in (engineer, panel):
        page.on("pageerror", lambda exc: errors.append(str(exc)))
    try:
        # The engineer's phone shows their dispatches, live.
        _log_in(engineer, demo.url, "engineer", demo.logins["engineer"], "/my")

        # On the panel, the near-empty sensor of T1000001's second cassette trips.
        panel.goto(demo.panel_url + "/")
        atm = panel.locator("section#T1000001")
        assert "CX-1000001" in atm.inner_text()
        atm.get_by_label("Fault", exact=True).select_option("cassette_low")
        atm.get_by_label("Cassette", exact=True).select_option("2")
        atm.get_by_role("button", name="Inject").click()
        panel.wait_for_selector("section#T1000001 .said")
        assert "cassette low injected" in atm.locator(".said").inner_text()

        # The agent reports it, the rules open a replenishment, and it reaches the phone.
        card = engineer.locator(".task", has_text="T1000001")
        card.wait_for(timeout=20_000)
        assert "cassette 2" in card.inner_text().lower(), card.inner_text()
        card.get_by_role("link").first.click()
        engineer.wait_for_url(re.compile(r".*/my/tasks/\d+$"))
        task_url = engineer.url
        for step in ("Accept", "On my way", "Arrived on site"):
            engineer.get_by_role("button", name=step).click()
            engineer.wait_for_load_state()
        engineer.screenshot(path=str(artifacts / "demo-1-on-site-390.png"), full_page=True)

        # On site: the safe code, shown once.
        engineer.locator("#safe-lock").get_by_role("button", name="Get safe code").click()
        engineer.wait_for_selector("#otc")
        code = engineer.locator("#otc").inner_text().replace("\n", "").replace(" ", "")
        user = engineer.locator(".otc-user").inner_text().strip()
        assert len(code) == 8
        assert code.isdigit()

        # At the ATM (the panel): the code opens the safe; a cash exchange; the door closes.
        atm = panel.locator("section#T1000001")
        atm.get_by_label("User number", exact=True).fill(user)
        atm.get_by_label("Code", exact=True).fill(code)
        atm.get_by_role("button", name="Enter code").click()
        panel.wait_for_selector("section#T1000001 .said")
        assert "OPEN" in atm.locator(".display").inner_text()
        atm.get_by_role("button", name="Replenish the cassettes").click()
        assert "safe of T1000001 is closed" in atm.locator(".said").inner_text()
        atm.get_by_role("button", name="Open the safe door").click()
        assert "safe door open" in atm.locator(".said").inner_text()
        atm.get_by_role("button", name="Replenish the cassettes").click()
        said = atm.locator(".said").inner_text()
        assert said.startswith("replenished")
        counted = {
            unit: int(count)
            for unit, count in re.findall(r"(cassette \d|reject bin|retract bin) (\d+)", said)
        }
        taken_out = said.split(";")[0]
        loaded = said.split(";")[1]
        atm.get_by_role("button", name="Close the safe door").click()
        said = atm.locator(".said").inner_text()
        seal = re.search(r"SEAL (\d{4}-\d{4})", said)
        assert seal is not None, said
        panel.screenshot(path=str(artifacts / "demo-2-panel-1366.png"), full_page=True)

        # The engineer reports the seal; the service verifies it.
        engineer.get_by_label("Close seal shown by the lock").fill(seal.group(1))
        engineer.get_by_role("button", name="Report seal").click()
        engineer.wait_for_selector("text=Seal accepted")

        # The counts, as the panel showed them, then resolve.
        engineer.goto(task_url)
        out = dict(re.findall(r"(cassette \d|reject bin|retract bin) (\d+)", taken_out))
        into = dict(re.findall(r"(cassette \d) (\d+)", loaded))
        assert len(out) == 6
        assert len(into) == 4
        assert counted
        for unit, notes in out.items():
            label = unit.capitalize()
            engineer.get_by_label(f"{label}: notes taken out").fill(notes)
            if unit in into:
                engineer.get_by_label(f"{label}: notes loaded").fill(into[unit])
        engineer.get_by_role("button", name="Save counts").click()
        engineer.wait_for_load_state()
        engineer.get_by_label("Resolution").select_option("replenished")
        engineer.get_by_label("What was done").fill("Cassettes exchanged; cassette 2 sensor low.")
        engineer.get_by_role("button", name="Resolve").click()
        engineer.wait_for_url(demo.url + "/my")
        assert engineer.locator(".task", has_text="T1000001").count() == 0
        engineer.screenshot(path=str(artifacts / "demo-3-resolved-390.png"), full_page=True)
        _check_the_task(demo, task_url, out, into)

        _reconcile(browser, demo, panel, artifacts)
        _audit(browser, demo)
        assert errors == []
    finally:
        phone.close()
        desk.close()


def _check_the_task(
    demo: DemoProcess, task_url: str, out: dict[str, str], into: dict[str, str]
) -> None:
    """The dispatcher sees the task resolved as replenished, with the engineer's counts."""
    task_id = task_url.rsplit("/", 1)[1]
    with httpx.Client(base_url=demo.url) as client:
        client.post(
            "/api/v1/session", json={"username": "dispatch", "password": demo.logins["dispatch"]}
        ).raise_for_status()
        task = client.get(f"/api/v1/tasks/{task_id}").json()
    assert task["state"] == "resolved"
    assert task["resolution_code"] == "replenished"
    counts = {
        (c["unit_kind"], c["unit_number"]): (c["removed"], c["loaded"]) for c in task["counts"]
    }
    assert counts[("cassette", 2)] == (int(out["cassette 2"]), int(into["cassette 2"]))
    assert counts[("reject_bin", 0)][0] == int(out["reject bin"])
    actions = [event["action"] for event in task["events"]]
    assert {"accept", "depart", "arrive", "resolve"} <= set(actions), actions


def _reconcile(browser: Any, demo: DemoProcess, panel: Any, artifacts: Path) -> None:
    """The reconciler runs the closed day from the agents' journals and the switch's files."""
    state = httpx.get(demo.panel_url + "/state.json").json()
    (closed,) = state["days"]
    day = closed["day"]
    wait_until(
        lambda: _ingested(demo, day, ["T1000001", "T1000002"]),
        30,
        "the agents upload the closed day's journals",
    )
    files = {kind: [] for kind in ("host", "paper", "counters")}
    for name in closed["files"]:
        kind = name.split("/")[0]
        if name.endswith(".csv"):
            continue
        files[kind].append(str(demo.data_dir / "sim" / name))
    assert len(files["host"]) == 1
    assert len(files["paper"]) == len(files["counters"]) == 2

    context = browser.new_context(viewport=DESK)
    page = context.new_page()
    try:
        _log_in(page, demo.url, "recon", demo.logins["recon"], "/reconciliation")
        heading = page.get_by_role("heading", name="Start a run from days already ingested")
        form = page.locator("section", has=heading)
        # The closed day is preselected (today's journals are still growing).
        assert form.get_by_label("First business day").input_value() == day
        assert form.get_by_label("Last business day").input_value() == day
        form.get_by_label("Host files").set_input_files(files["host"])
        form.get_by_label("Paper journals").set_input_files(files["paper"])
        form.get_by_label("Counters files").set_input_files(files["counters"])
        form.get_by_role("button", name="Start run").click()
        page.wait_for_url(re.compile(r".*/reconciliation/runs/\d+$"))
        run_url = page.url

        def done() -> bool:
            page.goto(run_url)
            return page.locator("#run-state").inner_text() in ("done", "failed")

        wait_until(done, 30, "the reconciliation run finishes")
        assert page.locator("#run-state").inner_text() == "done", page.content()
        read = page.locator("li.card", has_text="Read").inner_text()
        assert "2 terminal-days" in read
        # what the run found is what the simulated ATMs and switch did wrong that day
        run_id = run_url.rsplit("/", 1)[1]
        truth = [
            json.loads(line)
            for line in (demo.data_dir / "sim" / "truth.jsonl").read_text().splitlines()
        ]
        expected = Counter(t["kind"] for t in truth if t["business_date"] == day)
        with httpx.Client(base_url=demo.url) as client:
            client.post(
                "/api/v1/session", json={"username": "recon", "password": demo.logins["recon"]}
            ).raise_for_status()
            found = client.get(
                "/api/v1/reconciliation/discrepancies", params={"run_id": run_id, "limit": 500}
            ).json()["items"]
        assert Counter(d["kind"] for d in found) == expected
        page.screenshot(path=str(artifacts / "demo-4-reconciliation-1366.png"), full_page=True)
    finally:
        context.close()


def _audit(browser: Any, demo: DemoProcess) -> None:
    """The auditor sees the code and the seal in the lock log and verifies the log."""
    context = browser.new_context(viewport=DESK)
    page = context.new_page()
    try:
        _log_in(page, demo.url, "auditor", demo.logins["auditor"], "/audit/locks")
        text = page.content()
        assert "code-issued" in text
        assert "seal-reported" in text
        page.goto(demo.url + "/audit/locks/verification")
        heading = page.locator("#result").inner_text()
        assert heading.startswith("valid"), heading
    finally:
        context.close()
