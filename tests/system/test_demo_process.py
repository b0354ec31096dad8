"""``atm-service demo`` as a process, without a browser: every printed login works, each ATM
has its agent process uploading its journals, a fault raised on the panel becomes a task,
and SIGTERM to the demo alone stops every process it started; it exits 0."""

from __future__ import annotations

import contextlib
import json
import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.system.demo_support import DemoProcess, alive, descendants, wait_until

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def _client(demo: DemoProcess, username: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=demo.url) as client:
        client.post(
            "/api/v1/session", json={"username": username, "password": demo.logins[username]}
        ).raise_for_status()
        yield client


def test_the_demo_runs_the_fleet_and_stops_on_sigterm(tmp_path: Path) -> None:
    demo = DemoProcess(tmp_path, atms=2, extra=("--mean-transactions", "40", "--baud", "460800"))
    demo.start()
    try:
        assert demo.process is not None
        started = descendants(demo.process.pid)
        fleet = json.loads((demo.data_dir / "sim" / "fleet.json").read_text())
        agents = {atm["terminal_id"]: atm["agent_pid"] for atm in fleet["atms"]}
        assert set(agents) == {"T1000001", "T1000002"}
        assert set(agents.values()) <= started
        assert all(atm["port"].startswith("/dev/pts/") for atm in fleet["atms"])

        for username in demo.logins:
            with _client(demo, username) as client:
                assert client.get("/api/v1/session").status_code == 200

        with _client(demo, "dispatch") as dispatcher:
            fleet_state = {
                item["terminal_id"]: item
                for item in dispatcher.get("/api/v1/fleet/state").json()["items"]
            }
            assert set(fleet_state) == {"T1000001", "T1000002"}

            answer = httpx.post(
                demo.panel_url + "/atms/T1000002/fault",
                data={"fault": "card_reader_fault"},
                headers={"Accept": "application/json"},
            )
            assert answer.json() == {"ok": True, "said": "card reader fault injected"}

            def task_opened() -> bool:
                tasks = dispatcher.get("/api/v1/tasks", params={"open": "true"}).json()["items"]
                return any(
                    task["terminal_id"] == "T1000002" and "Card reader" in task["title"]
                    for task in tasks
                )

            wait_until(task_opened, 20, "the card reader fault becomes a task")

        with _client(demo, "recon") as reconciler:

            def both_journals() -> bool:
                days = reconciler.get("/api/v1/reconciliation/ingested-days").json()["items"]
                return {day["terminal_id"] for day in days} == {"T1000001", "T1000002"}

            wait_until(both_journals, 20, "each agent uploads its ATM's journals")

        code = demo.stop(signal.SIGTERM, group=False)
    finally:
        demo.kill()
    assert code == 0, "\n".join(demo.lines)
    assert demo.lines[-1] == "Stopped."
    assert [pid for pid in started if alive(pid)] == []
