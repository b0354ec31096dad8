"""``atm-sim fleet --agents``: simulated ATMs with one real agent process each, uploading to a
real service; the whole fleet stops cleanly on Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from atm_service.models.fleet import AtmCreate
from atm_service.services import fleet
from atm_service.services.journals import get_journal
from tests.support import atm_payload
from tests.system.support import (
    ServiceProcess,
    build_place,
    committed_database,
    enrol,
    tool,
    wait_for,
)

pytestmark = pytest.mark.slow


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_fleet_with_agents_uploads_and_stops_cleanly(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with committed_database("sqlite", tmp_path) as committed:
        database = committed.database
        place = build_place(database, now)
        with database.session() as session:
            atm = fleet.get_atm(session, atm_id=place.atm_id)
            second = fleet.create_atm(
                session,
                data=AtmCreate.model_validate(atm_payload(atm.site_id, "T1000002")),
                now=now,
            )
        atm_ids = {"T1000001": place.atm_id, "T1000002": second.id}
        service = ServiceProcess(database_url=committed.url, log=tmp_path / "service.log")
        out = tmp_path / "fleet"
        service.start()
        simulation = subprocess.Popen(
            [
                tool("atm-sim"),
                "fleet",
                "--count",
                "2",
                "--out",
                str(out),
                "--speed",
                "600",
                "--baud",
                "460800",
                "--start",
                "2026-11-16T09:00:00",
                "--agents",
                "--service",
                service.url,
                "--keys",
                str(tmp_path / "keys"),
                "--heartbeat-interval",
                "1",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        lines: list[str] = []
        try:
            assert simulation.stdout is not None
            assert simulation.stdin is not None
            for line in simulation.stdout:
                lines.append(line.rstrip())
                if line.startswith("ready:"):
                    break
            assert lines[0].startswith("terminal"), lines
            assert [line.split()[0] for line in lines[1:3]] == ["T1000001", "T1000002"]
            reader = threading.Thread(
                target=lambda: lines.extend(line.rstrip() for line in simulation.stdout or ()),
                daemon=True,
            )
            reader.start()
            manifest = json.loads((out / "fleet.json").read_text())
            rows = {row["terminal_id"]: row for row in manifest["atms"]}
            assert manifest["service"] == service.url
            for terminal_id, row in rows.items():
                assert Path(row["key"]).stat().st_mode & 0o077 == 0
                assert row["port"].startswith("/dev/")
                enrol(database, atm_ids[terminal_id], row["public_key"], now)

            def uploaded() -> bool:
                with database.session() as session:
                    try:
                        return all(get_journal(session, atm_ids[tid], "20261116") for tid in rows)
                    except Exception:
                        return False

            wait_for(uploaded, 40, "both agents' first journal bytes at the service")
            simulation.stdin.write("pause\n")
            simulation.stdin.flush()
            wait_for(lambda: any(line.startswith("ok paused") for line in lines), 5, "pause")
            files = {tid: (out / "ej" / f"{tid}_20261116.txt").read_bytes() for tid in rows}

            def complete() -> bool:
                with database.session() as session:
                    return all(
                        get_journal(session, atm_ids[tid], "20261116") == data
                        for tid, data in files.items()
                    )

            wait_for(complete, 30, "both journals complete at the service")
            pids = [row["agent_pid"] for row in rows.values()]
            assert all(_alive(pid) for pid in pids)
            simulation.send_signal(signal.SIGINT)
            assert simulation.wait(30) == 0
            assert not any(_alive(pid) for pid in pids)
            assert "stopping" in lines
        finally:
            if simulation.poll() is None:
                simulation.kill()
                simulation.wait()
            for stream in (simulation.stdin, simulation.stdout):
                if stream is not None:
                    stream.close()
            service.close()
