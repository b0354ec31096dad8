"""The operator's console: faults, repairs and the clock of running ATMs, one line at a time."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from simulators.console import Console
from simulators.live import AcceleratedClock, LiveAtm
from simulators.live_device import GuardedAtm, LinkOptions, LiveDevice


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def monotonic() -> Monotonic:
    return Monotonic()


@pytest.fixture
def clock(monotonic: Monotonic) -> AcceleratedClock:
    return AcceleratedClock(datetime(2026, 11, 16, 9, 0, 0), 60.0, monotonic=monotonic)


def _devices(tmp_path: Path, clock: AcceleratedClock, *ids: str) -> dict[str, LiveDevice]:
    devices = {}
    for tid in ids:
        atm = GuardedAtm(
            LiveAtm(tmp_path, clock, terminal_id=tid, seed=2, mean_transactions=300),
            event_log=tmp_path / "events" / f"{tid}.jsonl",
        )
        devices[tid] = LiveDevice(atm, LinkOptions(where="tcp"), rng=random.Random(1))
    return devices


@pytest.fixture
def one(tmp_path: Path, clock: AcceleratedClock) -> Iterator[Console]:
    devices = _devices(tmp_path, clock, "T1000001")
    yield Console(devices, clock)
    for device in devices.values():
        device.stop()


@pytest.fixture
def two(tmp_path: Path, clock: AcceleratedClock) -> Iterator[Console]:
    devices = _devices(tmp_path, clock, "T1000001", "T1000002")
    yield Console(devices, clock)
    for device in devices.values():
        device.stop()


def _status(console: Console, tid: str = "") -> dict[str, object]:
    answer = console.execute(f"{tid} status".strip())
    assert answer.startswith("ok {"), answer
    data: dict[str, object] = json.loads(answer[3:])
    return data


def test_faults_and_repairs_on_one_atm(one: Console) -> None:
    assert one.execute("inject card_reader_fault") == "ok T1000001 card_reader_fault"
    status = _status(one)["status"]
    assert status["devices"]["card_reader"] == "fault"  # type: ignore[index]
    assert status["in_service"] is False  # type: ignore[index]
    assert one.execute("clear card-reader") == "ok T1000001 card-reader cleared"
    assert one.execute("door open") == "ok T1000001 safe door open"
    assert _status(one)["status"]["safe_door"] == "open"  # type: ignore[index]
    boot = _status(one)["boot_id"]
    assert one.execute("reboot") == f"ok T1000001 restarted (boot {boot + 1})"  # type: ignore[operator]
    assert one.execute("inject cassette-missing unit 2") == "ok T1000001 cassette_missing"
    assert one.execute("inject dispenser_jam no-reversal") == "ok T1000001 dispenser_jam"
    assert one.execute("replenish 3:-2") == "ok T1000001 replenished"
    assert one.execute("visit") == "ok T1000001 supervisor visit"
    device = one.devices["T1000001"]
    kinds = [event["kind"] for event in device.atm.poll_events()]
    assert {"hardware_error", "hardware_recovered", "safe_door", "cash_unit_error"} <= set(kinds)
    logged = (device.atm.event_log or Path()).read_text().splitlines()
    assert [json.loads(line)["kind"] for line in logged] == kinds


def test_bad_lines_say_what_is_wrong(one: Console) -> None:
    assert one.execute("") == "ok"
    assert one.execute("levitate").startswith("error unknown command 'levitate'")
    assert "known: " in one.execute("inject levitation")
    assert one.execute("inject").startswith("error inject needs a fault: ")
    assert "unit needs a cassette number" in one.execute("inject cassette_inop unit two")
    assert "does not take 'sideways'" in one.execute("inject dispenser_jam sideways")
    assert "clear needs one of" in one.execute("clear toaster")
    assert one.execute("door ajar") == "error door needs `open` or `close`"
    assert "CASSETTE:NOTES" in one.execute("replenish three")
    assert one.execute('inject "unclosed') == "error No closing quotation"
    assert one.log == []  # only what was carried out is logged


def test_a_fleet_console_needs_the_atm_named(two: Console) -> None:
    assert two.execute("door open") == (
        "error name the ATM first, e.g. `T1000001 door open`, or `all`"
    )
    assert two.execute("t1000002 door open") == "ok T1000002 safe door open"
    assert _status(two, "T1000001")["status"]["safe_door"] == "closed"  # type: ignore[index]
    assert two.execute("all door open") == ("ok T1000001 safe door open | T1000002 safe door open")
    listed = two.execute("list")
    assert listed.startswith("ok T1000001=socket://127.0.0.1:")
    assert " T1000002=socket://" in listed
    assert two.execute("T1000009 door open").startswith("error unknown command or terminal")


def test_the_clock_pauses_resumes_and_changes_speed(
    one: Console, clock: AcceleratedClock, monotonic: Monotonic
) -> None:
    device = one.devices["T1000001"]
    monotonic.now += 60  # an hour of simulated time
    assert one.execute("pause") == "ok paused at 2026-11-16T10:00:00"
    size = dict(device.atm.journals())["20261116"]
    monotonic.now += 600
    assert clock() == datetime(2026, 11, 16, 10, 0, 0)
    assert dict(device.atm.journals())["20261116"] == size  # nothing grows while paused
    assert json.loads(one.execute("clock")[3:]) == {
        "time": "2026-11-16T10:00:00",
        "speed": 60.0,
        "paused": True,
    }
    assert one.execute("resume") == "ok running from 2026-11-16T10:00:00"
    assert one.execute("speed 3600") == "ok speed 3600"
    monotonic.now += 1
    assert clock() == datetime(2026, 11, 16, 11, 0, 0)
    assert one.execute("speed 0") == "error clock speed must be positive, not 0.0"
    assert one.execute("speed fast") == "error speed 'fast' is not a number"
    assert one.execute("speed") == (
        "error speed needs one number: simulated seconds per real second"
    )


def test_help_and_quit(one: Console) -> None:
    stopped: list[bool] = []
    one.on_quit = lambda: stopped.append(True)
    text = one.execute("help")
    for word in ("inject FAULT", "clear DEVICE", "door open|close", "replenish", "pause", "quit"):
        assert word in text
    assert one.execute("quit") == "ok stopping"
    assert stopped == [True]
