"""Live ATMs served for people and tests: the simulation, its control port, and ``atm-sim``."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from device_agent.link import DeviceLink
from simulators.errors import ConfigurationError
from simulators.live_device import LinkOptions
from simulators.runner import AtmSpec, Simulation, SimulationOptions, fleet_specs, free_port
from tests.protocol.support import MemorySink

BAUD = 921_600
ATM_SIM = str(Path(sys.executable).with_name("atm-sim"))


def _wait(condition: object, timeout: float = 15.0) -> bool:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_fleet_specs_number_the_atms_and_refuse_nonsense() -> None:
    specs = fleet_specs(
        3,
        first_terminal=2000001,
        dialect="mixed",
        link=LinkOptions(where="tcp", tcp_port=7000, baudrate=BAUD),
        seed=1,
    )
    assert [spec.terminal_id for spec in specs] == ["T2000001", "T2000002", "T2000003"]
    assert [spec.link.tcp_port for spec in specs] == [7000, 7001, 7002]
    assert {spec.dialect for spec in specs} <= {"ndc", "procash"}
    assert all(spec.link.baudrate == BAUD for spec in specs)
    pty = LinkOptions(where="pty")
    with pytest.raises(ConfigurationError, match="--count"):
        fleet_specs(0, first_terminal=1, dialect="ndc", link=pty, seed=1)
    with pytest.raises(ConfigurationError, match="--first-terminal"):
        fleet_specs(2, first_terminal=9_999_999, dialect="ndc", link=pty, seed=1)
    with pytest.raises(ConfigurationError, match="--dialect"):
        fleet_specs(1, first_terminal=1, dialect="ej", link=pty, seed=1)
    with pytest.raises(ConfigurationError, match="pseudo-terminal or a TCP port"):
        fleet_specs(1, first_terminal=1, dialect="ndc", link=LinkOptions(where="url"), seed=1)
    with pytest.raises(ConfigurationError, match="unique"):
        SimulationOptions(
            out=Path("x"),
            atms=(AtmSpec("T1000001", "ndc", pty), AtmSpec("T1000001", "ndc", pty)),
            start=datetime(2026, 11, 16),
        )


def test_a_simulated_fleet_serves_each_atm_and_takes_commands_on_its_control_port(
    tmp_path: Path,
) -> None:
    options = SimulationOptions(
        out=tmp_path,
        atms=fleet_specs(
            2,
            first_terminal=1000001,
            dialect="ndc",
            link=LinkOptions(where="pty", baudrate=BAUD),
            seed=3,
        ),
        start=datetime(2026, 11, 16, 9, 0),
        speed=600,
        control_port=0,
    )
    said: list[str] = []
    simulation = Simulation(options, echo=said.append)
    simulation.start()
    try:
        simulation.announce()
        assert said[0].split() == ["terminal", "dialect", "port"]
        assert said[-1].startswith("ready: 2 ATMs writing to ")
        manifest = json.loads((tmp_path / "fleet.json").read_text())
        assert [row["terminal_id"] for row in manifest["atms"]] == ["T1000001", "T1000002"]
        assert manifest["control_port"] == simulation.control_port
        port = manifest["atms"][1]["port"]
        sink = MemorySink()
        with DeviceLink(port, sink, baudrate=BAUD) as link:
            assert link.wait_up(10)
            assert link.peer is not None
            assert link.peer.terminal_id == "T1000002"
            assert simulation.control_port is not None
            with socket.create_connection(("127.0.0.1", simulation.control_port)) as control:
                lines = control.makefile("rw", encoding="utf-8")

                def ask(line: str) -> str:
                    lines.write(line + "\n")
                    lines.flush()
                    return lines.readline().strip()

                assert ask("T1000002 inject receipt_printer_fault") == (
                    "ok T1000002 receipt_printer_fault"
                )
                assert _wait(lambda: any(e.get("device") == "receipt_printer" for e in sink.events))
                assert ask("pause").startswith("ok paused at 2026-11-16T")
                day = (tmp_path / "ej" / "T1000002_20261116.txt").read_bytes()
                assert _wait(lambda: sink.stored("20261116") == day)
                assert ask("quit") == "ok stopping"
        assert simulation.stopping.is_set()
        events = (tmp_path / "events" / "T1000002.jsonl").read_text().splitlines()
        assert any(json.loads(line)["device"] == "receipt_printer" for line in events)
    finally:
        simulation.stop()
    threads = [thread for d in simulation.devices.values() for thread in d.device._threads]
    assert threads
    assert not any(thread.is_alive() for thread in threads)


def test_atm_sim_atm_serves_a_live_atm_until_ctrl_c(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [
            ATM_SIM,
            "atm",
            "--out",
            str(tmp_path),
            "--speed",
            "600",
            "--baud",
            str(BAUD),
            "--start",
            "2026-11-16T09:00:00",
            "--terminal-id",
            "T3000001",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    try:
        assert process.stdout is not None
        assert process.stdin is not None
        first = process.stdout.readline()
        assert first.startswith("T3000001 serves on /dev/")
        port = first.split(" serves on ")[1].split()[0]
        assert process.stdout.readline().startswith(
            f"connect its agent: atm-agent run --port {port}"
        )
        assert process.stdout.readline().startswith("ready: 1 ATM writing to ")
        sink = MemorySink()
        with DeviceLink(port, sink, baudrate=BAUD) as link:
            assert link.wait_up(10)
            process.stdin.write("door open\n")
            process.stdin.flush()
            assert process.stdout.readline().strip() == "ok T3000001 safe door open"
            assert _wait(
                lambda: any(
                    e.get("kind") == "safe_door" and e.get("state") == "open" for e in sink.events
                )
            )
            process.send_signal(signal.SIGINT)
            assert process.wait(20) == 0
        assert process.stdout.read().strip().endswith("stopping")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                stream.close()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["atm", "--out", "x", "--pty", "--tcp", "0"], "choose one of --pty, --url and --tcp"),
        (["atm", "--out", "x", "--terminal-id", "T1"], "terminal ID must be 8"),
        (["atm", "--out", "x", "--start", "monday"], "is not YYYY-MM-DDTHH:MM:SS"),
        (["fleet", "--out", "x", "--count", "2", "--service", "http://s"], "go with --agents"),
        (
            ["fleet", "--out", "x", "--count", "2", "--agents", "--service", "s", "--keys", "k"],
            "http:// or https:// URL",
        ),
    ],
)
def test_atm_sim_refuses_bad_options_and_says_why(
    arguments: list[str], message: str, tmp_path: Path
) -> None:
    done = subprocess.run(
        [ATM_SIM, *arguments], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 2
    assert message in " ".join((done.stdout + done.stderr).split())
    assert "Traceback" not in done.stderr


def test_atm_sim_serial_device_is_the_file_device(tmp_path: Path) -> None:
    done = subprocess.run([ATM_SIM, "serial-device", "--help"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout.startswith("usage: atm-sim serial-device")
    assert "--journals" in done.stdout
    port = free_port()
    (tmp_path / "T1000001_20261116.txt").write_bytes(b"08:00:00 POWER UP\n")
    process = subprocess.Popen(
        [
            ATM_SIM,
            "serial-device",
            "--journals",
            str(tmp_path),
            "--terminal-id",
            "T1000001",
            "--tcp",
            str(port),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == (
            f"serving T1000001 on socket://127.0.0.1:{port}"
        )
        sink = MemorySink()
        with DeviceLink(f"socket://127.0.0.1:{port}", sink):
            assert _wait(lambda: sink.stored("20261116") == b"08:00:00 POWER UP\n")
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(10)
        if process.stdout is not None:
            process.stdout.close()
