"""The file-backed device: journals from files, counters from a counters file, commands."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from simulators.device_backend import DeviceBackend
from simulators.file_backend import FileDeviceBackend
from tests.simulators.conftest import TERMINAL


def backend(journal_dir: Path, counters: Path | None = None) -> FileDeviceBackend:
    return FileDeviceBackend(
        journal_dir, TERMINAL, counters=counters, clock=lambda: datetime(2026, 11, 17, 9, 30, 5)
    )


def test_it_is_a_device_backend(journal_dir: Path) -> None:
    device: DeviceBackend = backend(journal_dir)
    assert device.terminal_id == TERMINAL
    assert device.boot_id == 1


def test_journals_are_this_terminals_files_oldest_first(journal_dir: Path) -> None:
    journals = backend(journal_dir).journals()
    assert [name for name, _ in journals] == ["20261116", "20261117"]
    for name, size in journals:
        assert size == (journal_dir / f"{TERMINAL}_{name}.txt").stat().st_size


def test_reads_by_offset_and_sees_growth(journal_dir: Path) -> None:
    device = backend(journal_dir)
    path = journal_dir / f"{TERMINAL}_20261117.txt"
    content = path.read_bytes()
    assert device.read_journal("20261117", 100, 50) == content[100:150]
    assert device.read_journal("20261117", len(content) - 5, 50) == content[-5:]
    assert device.read_journal("20261117", len(content), 50) == b""
    with path.open("ab") as handle:
        handle.write(b"10:00:00 SUPERVISOR MODE ENTRY\n")
    assert dict(device.journals())["20261117"] == len(content) + 31
    with pytest.raises(LookupError, match="20261118"):
        device.read_journal("20261118", 0, 10)
    with pytest.raises(LookupError):
        device.read_journal("../etc", 0, 10)


def test_cash_units_are_the_last_snapshot(journal_dir: Path, counters_file: Path) -> None:
    device = backend(journal_dir, counters_file)
    expected = json.loads(counters_file.read_text())["snapshots"][-1]["cash_units"]
    units = device.cash_units()
    assert units == expected
    units[0]["ulCount"] = -1
    assert device.cash_units() == expected
    assert backend(journal_dir).cash_units() == []


def test_a_bad_counters_file_is_named(journal_dir: Path, tmp_path: Path) -> None:
    bad = tmp_path / "counters.json"
    bad.write_text('{"snapshots": []}')
    with pytest.raises(ValueError, match=r"counters\.json"):
        backend(journal_dir, bad)


def test_commands_change_the_service_state_and_raise_events(journal_dir: Path) -> None:
    device = backend(journal_dir)
    assert device.device_status()["in_service"] is True
    assert device.execute("go_out_of_service") == {"ok": True, "in_service": False, "changed": True}
    assert device.execute("go_out_of_service")["changed"] is False
    assert device.device_status()["in_service"] is False
    assert device.poll_events() == [
        {
            "kind": "service_mode",
            "time": "2026-11-17T09:30:05",
            "in_service": False,
            "reason": "remote_command",
        }
    ]
    assert device.poll_events() == []
    assert device.execute("send_counters") == {"ok": True}
    assert device.execute("format_disk")["ok"] is False
    assert device.commands == [
        "go_out_of_service",
        "go_out_of_service",
        "send_counters",
        "format_disk",
    ]


def test_raised_events_update_the_status(journal_dir: Path) -> None:
    device = backend(journal_dir)
    device.raise_event({"kind": "safe_door", "time": "2026-11-17T09:30:00", "state": "open"})
    device.raise_event(
        {
            "kind": "hardware_error",
            "time": "2026-11-17T09:30:01",
            "device": "dispenser",
            "severity": "fatal",
            "code": "M-05",
            "description": "note jam in presenter",
        }
    )
    status = device.device_status()
    assert status["safe_door"] == "open"
    assert status["devices"] == {
        "dispenser": "fault",
        "card_reader": "ok",
        "receipt_printer": "ok",
        "journal_printer": "ok",
        "encrypting_pin_pad": "ok",
    }
    assert [e["kind"] for e in device.poll_events()] == ["safe_door", "hardware_error"]
    device.raise_event(
        {"kind": "hardware_recovered", "time": "2026-11-17T09:40:00", "device": "dispenser"}
    )
    assert device.device_status()["devices"]["dispenser"] == "ok"  # type: ignore[index]


def test_reboot_changes_the_boot_id(journal_dir: Path) -> None:
    device = backend(journal_dir)
    device.reboot()
    assert device.boot_id == 2


def test_terminal_id_is_checked(journal_dir: Path) -> None:
    with pytest.raises(ValueError, match="terminal_id"):
        FileDeviceBackend(journal_dir, "T1/0")


def test_the_journal_directory_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a directory"):
        FileDeviceBackend(tmp_path / "missing", TERMINAL)
