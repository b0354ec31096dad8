"""End to end: the device end on a pseudo-terminal (or TCP), the agent's DeviceLink on pyserial.

The device serves the sample journals of shared/formats; the agent pulls them
into a sink byte for byte, through reboots, agent restarts, line noise and a
failing sink.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device_agent.link import DeviceLink
from device_agent.protocol import InvalidArgument, LinkConfig, NotConnected
from simulators.file_backend import FileDeviceBackend
from simulators.serial_device import SerialDevice
from tests.protocol.support import MemorySink
from tests.simulators.conftest import TERMINAL

FAST = 2_000_000  # baud: a fast line for tests where timing does not matter


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def journals_of(directory: Path) -> dict[str, bytes]:
    return {
        path.stem.split("_")[1]: path.read_bytes()
        for path in sorted(directory.glob(f"{TERMINAL}_*.txt"))
    }


def all_stored(sink: MemorySink, directory: Path) -> bool:
    return all(sink.stored(name) == data for name, data in journals_of(directory).items())


@pytest.fixture
def backend(journal_dir: Path, counters_file: Path) -> FileDeviceBackend:
    return FileDeviceBackend(journal_dir, TERMINAL, counters=counters_file)


@pytest.fixture
def device(backend: FileDeviceBackend) -> Iterator[SerialDevice]:
    with SerialDevice.on_pty(backend, baudrate=FAST, rng=random.Random(1)) as device:
        yield device
    assert device.error is None


@pytest.fixture
def sink() -> MemorySink:
    return MemorySink()


@pytest.fixture
def link(device: SerialDevice, sink: MemorySink) -> Iterator[DeviceLink]:
    assert device.device_path is not None
    with DeviceLink(device.device_path, sink, baudrate=FAST) as link:
        yield link
    assert link.error is None


def test_pulls_the_sample_journals_byte_exact(
    link: DeviceLink, sink: MemorySink, journal_dir: Path, counters_file: Path
) -> None:
    assert wait_for(lambda: all_stored(sink, journal_dir))
    assert wait_for(link.caught_up)
    assert sorted(sink.journals) == ["20261116", "20261117"]
    assert sink.violations == []
    peer = link.peer
    assert peer is not None
    assert peer.terminal_id == TERMINAL
    assert peer.boot_id == 1
    assert wait_for(lambda: bool(sink.statuses and sink.cash_units))
    assert sink.statuses[0]["in_service"] is True
    reason, units = sink.cash_units[0]
    assert reason == "query"
    assert [u["cUnitID"] for u in units] == ["CST01", "CST02", "CST03", "CST04", "REJ01", "RTR01"]


def test_follows_the_current_day_as_it_grows(
    link: DeviceLink, sink: MemorySink, journal_dir: Path
) -> None:
    assert wait_for(lambda: all_stored(sink, journal_dir))
    today = journal_dir / f"{TERMINAL}_20261117.txt"
    for n in range(3):
        with today.open("ab") as handle:
            handle.write(f"23:59:5{n} SUPERVISOR MODE ENTRY\n".encode())
        assert wait_for(lambda: all_stored(sink, journal_dir))
    new_day = journal_dir / f"{TERMINAL}_20261118.txt"
    new_day.write_bytes(b"00:00:01 POWER UP\n")
    assert wait_for(lambda: sink.stored("20261118") == b"00:00:01 POWER UP\n")
    assert sink.violations == []


def test_events_status_and_commands(
    link: DeviceLink, device: SerialDevice, backend: FileDeviceBackend, sink: MemorySink
) -> None:
    assert link.wait_up(5)
    door = {"kind": "safe_door", "time": "2026-11-17T10:00:00", "state": "open"}
    backend.raise_event(door)
    assert wait_for(lambda: door in sink.events)
    assert wait_for(lambda: sink.statuses[-1]["safe_door"] == "open")

    assert link.send_command("go_out_of_service") == {
        "ok": True,
        "in_service": False,
        "changed": True,
    }
    assert wait_for(lambda: any(e["kind"] == "service_mode" for e in sink.events))
    assert wait_for(lambda: sink.statuses[-1]["in_service"] is False)

    before = len(sink.cash_units)
    assert link.send_command("send_counters") == {"ok": True}
    assert len(sink.cash_units) == before + 1  # stored before the result came back
    assert sink.cash_units[-1][0] == "command"

    assert link.send_command("go_in_service")["ok"] is True
    assert backend.commands == ["go_out_of_service", "send_counters", "go_in_service"]
    with pytest.raises(InvalidArgument, match="send_counters"):
        link.send_command("reboot")
    assert sink.events.count(door) == 1


def test_cash_units_that_change_are_pushed(
    link: DeviceLink, backend: FileDeviceBackend, sink: MemorySink
) -> None:
    assert wait_for(lambda: bool(sink.cash_units))
    units = backend.cash_units()
    units[0]["ulCount"] = int(units[0]["ulCount"]) - 2  # type: ignore[call-overload]
    backend.set_cash_units(units)
    assert wait_for(lambda: sink.cash_units[-1] == ("changed", units))


def test_a_device_reboot_mid_transfer_loses_and_repeats_nothing(
    backend: FileDeviceBackend, journal_dir: Path, sink: MemorySink
) -> None:
    with SerialDevice.on_pty(backend, baudrate=230_400, rng=random.Random(2)) as device:
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink) as link:
            assert wait_for(lambda: sink.total() > 8_000)
            assert sink.total() < 30_000
            backend.reboot()
            assert wait_for(lambda: all_stored(sink, journal_dir), timeout=20)
            assert wait_for(lambda: link.peer is not None and link.peer.boot_id == 2)
            assert link.stats.sessions == 2
    assert sink.violations == []


def test_an_agent_restart_mid_transfer_resumes_from_the_sink(
    backend: FileDeviceBackend, journal_dir: Path, sink: MemorySink
) -> None:
    with SerialDevice.on_pty(backend, baudrate=230_400, rng=random.Random(3)) as device:
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink):
            assert wait_for(lambda: sink.total() > 8_000)
        stored = sink.total()
        assert stored < 30_000
        with DeviceLink(device.device_path, sink) as link:
            assert wait_for(lambda: all_stored(sink, journal_dir), timeout=20)
            assert link.stats.sessions == 1
    assert sink.violations == []
    assert device.stats.sessions == 2


def test_a_noisy_line_delivers_exactly(
    backend: FileDeviceBackend, journal_dir: Path, sink: MemorySink
) -> None:
    with SerialDevice.on_pty(
        backend, baudrate=FAST, byte_error_rate=2e-3, rng=random.Random(4)
    ) as device:
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink, config=LinkConfig(rto_min=0.05, rto_initial=0.2)):
            assert wait_for(lambda: all_stored(sink, journal_dir), timeout=30)
        assert device.noise is not None
        assert device.noise.outgoing.corrupted > 20
        assert device.stats.retransmissions > 10
    assert sink.violations == []


def test_a_failing_sink_is_retried_without_loss(
    backend: FileDeviceBackend, journal_dir: Path
) -> None:
    sink = MemorySink()
    sink.fail_journal_writes = 3
    with SerialDevice.on_pty(backend, baudrate=FAST, rng=random.Random(5)) as device:
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink, retry_interval=0.05):
            assert wait_for(lambda: all_stored(sink, journal_dir))
    assert sink.fail_journal_writes == 0
    assert sink.violations == []


def test_over_a_tcp_socket_url(
    backend: FileDeviceBackend, journal_dir: Path, sink: MemorySink
) -> None:
    with SerialDevice.on_tcp(backend, baudrate=FAST, rng=random.Random(6)) as device:
        assert device.url.startswith("socket://127.0.0.1:")
        with DeviceLink(device.url, sink):
            assert wait_for(lambda: all_stored(sink, journal_dir))
    assert sink.violations == []


def test_real_line_timing_at_115200_baud(
    backend: FileDeviceBackend, journal_dir: Path, sink: MemorySink
) -> None:
    journal = journals_of(journal_dir)["20261116"]
    (journal_dir / f"{TERMINAL}_20261117.txt").unlink()
    with SerialDevice.on_pty(backend, baudrate=115_200, rng=random.Random(7)) as device:
        assert device.device_path is not None
        started = time.monotonic()
        with DeviceLink(device.device_path, sink):
            assert wait_for(lambda: sink.stored("20261116") == journal)
            elapsed = time.monotonic() - started
    line_time = len(journal) / 11_520
    assert line_time < elapsed < line_time / 0.6


def test_the_link_waits_for_a_port_that_is_not_there_and_stops_cleanly(sink: MemorySink) -> None:
    link = DeviceLink("/nonexistent/ttyS9", sink, retry_interval=0.05)
    stop = threading.Event()
    thread = threading.Thread(target=link.run, args=(stop,))
    thread.start()
    time.sleep(0.2)
    assert not link.up
    with pytest.raises(NotConnected):
        link.send_command("send_counters", timeout=0.1)
    stop.set()
    thread.join(2)
    assert not thread.is_alive()


def test_a_loopback_line_hears_only_itself(sink: MemorySink) -> None:
    with DeviceLink("loop://", sink) as link:
        time.sleep(0.6)
        assert not link.up
        assert link.stats.ignored >= 1
    assert link.error is None


def test_events_raised_while_no_agent_listens_arrive_once_it_connects(
    backend: FileDeviceBackend, sink: MemorySink
) -> None:
    events = [
        {"kind": "cash_unit_threshold", "time": "2026-11-17T10:00:00", "unit": 2, "status": "low"},
        {"kind": "cash_unit_error", "time": "2026-11-17T10:00:01", "unit": 3, "error": "jam"},
    ]
    with SerialDevice.on_pty(backend, baudrate=FAST, rng=random.Random(8)) as device:
        for event in events:
            backend.raise_event(event)
        time.sleep(0.5)  # the device has polled them and holds them for the agent
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink):
            assert wait_for(lambda: sink.events == events)


class TalkativeBackend(FileDeviceBackend):
    def execute(self, command: str) -> dict[str, object]:
        return {"ok": True, "report": "x" * 10_000, "units": 6}


def test_a_command_result_too_big_for_a_frame_still_reports_the_outcome(
    journal_dir: Path, sink: MemorySink
) -> None:
    backend = TalkativeBackend(journal_dir, TERMINAL)
    with SerialDevice.on_pty(backend, baudrate=FAST, rng=random.Random(9)) as device:
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink) as link:
            assert link.wait_up(5)
            assert link.send_command("go_in_service") == {"ok": True, "truncated": True}


def test_the_device_runs_as_its_own_process(journal_dir: Path, counters_file: Path) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "simulators.serial_device",
            "--journals",
            str(journal_dir),
            "--terminal-id",
            TERMINAL,
            "--counters",
            str(counters_file),
            "--baud",
            str(FAST),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith(f"serving {TERMINAL} on /dev/")
        sink = MemorySink()
        with DeviceLink(line.split(" on ", 1)[1].strip(), sink) as link:
            assert wait_for(lambda: all_stored(sink, journal_dir))
            assert link.send_command("send_counters") == {"ok": True}
    finally:
        process.terminate()
        assert process.wait(10) == 0
        if process.stdout is not None:
            process.stdout.close()


class FlakyDiskBackend(FileDeviceBackend):
    failures = 2

    def read_journal(self, name: str, offset: int, size: int) -> bytes:
        if self.failures > 0:
            self.failures -= 1
            raise OSError("I/O error reading the journal disk")
        return super().read_journal(name, offset, size)


def test_a_journal_the_device_fails_to_read_is_asked_for_again(
    journal_dir: Path, sink: MemorySink
) -> None:
    backend = FlakyDiskBackend(journal_dir, TERMINAL)
    with SerialDevice.on_pty(backend, baudrate=FAST, rng=random.Random(10)) as device:
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink, retry_interval=0.1):
            assert wait_for(lambda: all_stored(sink, journal_dir))
    assert backend.failures == 0
    assert sink.violations == []


def test_a_link_for_another_terminal_stores_and_acknowledges_nothing(
    device: SerialDevice, backend: FileDeviceBackend
) -> None:
    sink = MemorySink()
    assert device.device_path is not None
    door = {"kind": "safe_door", "time": "2026-11-17T10:00:00", "state": "open"}
    backend.raise_event(door)
    with DeviceLink(device.device_path, sink, baudrate=FAST, terminal_id="T9999999") as link:
        assert wait_for(lambda: link.refused is not None)
        assert (
            link.refused
            == f"the device on {device.device_path} is terminal {TERMINAL}, not T9999999"
        )
        time.sleep(0.5)
    assert (sink.journals, sink.events, sink.statuses, sink.cash_units) == ({}, [], [], [])
    # the right agent still gets everything, the event included
    with DeviceLink(device.device_path, sink, baudrate=FAST, terminal_id=TERMINAL) as link:
        assert wait_for(lambda: door in sink.events)
        assert link.refused is None
