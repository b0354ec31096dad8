"""The live ATM: journal growth on its clock, the DeviceBackend calls, and faults on demand."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from simulators.device_backend import DeviceBackend
from simulators.errors import ConfigurationError, JournalNotFound, UnknownFault
from simulators.host import HostLog
from simulators.live import AcceleratedClock, LiveAtm
from tests.simulators.grammar import check_ej, ej_transactions


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 16, 8, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["ndc", "procash"])
def atm(request: pytest.FixtureRequest, tmp_path: Path, clock: Clock) -> LiveAtm:
    return LiveAtm(tmp_path, clock, dialect=request.param, mean_transactions=400, seed=3)


def test_journal_grows_with_the_clock_and_reads_by_offset(atm: LiveAtm, clock: Clock) -> None:
    backend: DeviceBackend = atm
    ((name, size),) = backend.journals()
    assert name == "20261116"
    assert size > 0
    head = backend.read_journal(name, 0, size)
    clock.advance(hours=2)
    ((_, grown),) = backend.journals()
    assert grown > size
    assert backend.read_journal(name, 0, grown)[:size] == head
    assert backend.read_journal(name, size, 10**6) == backend.read_journal(name, 0, grown)[size:]
    check_ej(backend.read_journal(name, 0, grown).decode())
    clock.advance(days=1)
    names = [n for n, _ in backend.journals()]
    assert names == ["20261116", "20261117"]
    (_, final), _ = backend.journals()
    clock.advance(hours=3)
    assert backend.journals()[0][1] == final  # a finished day no longer changes
    with pytest.raises(JournalNotFound):
        backend.read_journal("20261115", 0, 10)
    root = atm.directory
    assert (root / "paper" / "T1000001_20261116.txt").read_text().startswith("--- PAGE 1 ---")
    assert (root / "host" / "20261116.iso").stat().st_size > 0
    snaps = json.loads((root / "counters" / "T1000001_20261116.json").read_text())["snapshots"]
    assert [s["reason"] for s in snaps] == ["start_of_day", "end_of_day"]
    assert snaps[-1]["cash_units"] == backend.cash_units() or atm.transactions_today() > 0


def test_dispenser_jam_shows_everywhere(atm: LiveAtm, clock: Clock) -> None:
    atm.poll_events()
    atm.inject("dispenser_jam", reversal=False)
    clock.advance(hours=1)
    status = atm.device_status()
    assert status["devices"]["dispenser"] == "fault"  # type: ignore[index]
    events = atm.poll_events()
    assert any(e["kind"] == "hardware_error" and e["device"] == "dispenser" for e in events)
    text = atm.read_journal("20261116", 0, 10**7).decode()
    jammed = [tx for tx in ej_transactions(text) if tx.outcome == "error"]
    assert jammed
    assert jammed[-1].presented == [0, 0, 0, 0]
    # no withdrawal is served while the dispenser is down
    after = [tx for tx in ej_transactions(text) if tx.line > jammed[-1].line]
    assert all(not tx.withdrawal or tx.rc != "00" for tx in after)
    atm.clear("dispenser")
    assert atm.device_status()["devices"]["dispenser"] == "ok"  # type: ignore[index]
    clock.advance(days=1)
    atm.advance()
    truth = [json.loads(line) for line in (atm.directory / "truth.jsonl").read_text().splitlines()]
    assert any(
        t["kind"] == "no_dispense_no_reversal" and t["stan"] == jammed[-1].stan for t in truth
    )


def test_device_faults_power_and_commands(atm: LiveAtm, clock: Clock) -> None:
    boot = atm.boot_id
    atm.inject("power_failure")
    assert atm.boot_id == boot + 1
    atm.inject("safe_door_open")
    atm.inject("card_reader_fault")
    status = atm.device_status()
    assert status["safe_door"] == "open"
    assert status["in_service"] is False
    served = atm.transactions_today()
    clock.advance(hours=1)
    assert atm.transactions_today() == served  # nobody is served while the card reader is down
    atm.clear("card_reader")
    atm.inject("safe_door_closed")
    assert atm.device_status()["in_service"] is True
    atm.inject("journal_paper_out")
    assert atm.device_status()["devices"]["journal_printer"] == "fault"  # type: ignore[index]
    clock.advance(minutes=30)
    atm.clear("journal_printer")
    text = atm.read_journal("20261116", 0, 10**7).decode()
    assert "JOURNAL PAPER OUT" in text
    assert "POWER UP" in text or "SYSTEM STARTUP" in text
    atm.inject("cassette_missing", unit=2)
    units = atm.cash_units()
    assert units[1]["usStatus"] == 6
    kinds = [e["kind"] for e in atm.poll_events()]
    for kind in ("safe_door", "hardware_error", "hardware_recovered", "cash_unit_error"):
        assert kind in kinds
    assert atm.execute("go_out_of_service") == {"ok": True, "in_service": False}
    assert atm.execute("go_in_service")["ok"] is True
    counters = atm.execute("send_counters")
    assert counters["ok"] is True
    assert len(counters["cash_units"]) == 6
    assert atm.execute("reboot")["ok"] is False
    with pytest.raises(UnknownFault, match="levitation"):
        atm.inject("levitation")


def test_replenishment_visit_writes_the_sequence(atm: LiveAtm, clock: Clock) -> None:
    clock.advance(hours=2)
    atm.service_visit(replenish=True, count_errors=[(3, -2)])
    text = atm.read_journal("20261116", 0, 10**7).decode()
    assert ("SUPERVISOR MODE EXIT" in text) or ("OPERATOR MODE EXIT" in text)
    assert all(u["ulDispensedCount"] == 0 for u in atm.cash_units())
    clock.advance(hours=1)
    check_ej(atm.read_journal("20261116", 0, 10**7).decode())
    snaps = json.loads((atm.directory / "counters" / "T1000001_20261116.json").read_text())[
        "snapshots"
    ]
    before = next(s for s in snaps if s.get("phase") == "before_exchange")
    assert before["cash_units"][2]["physical_count"] == before["cash_units"][2]["ulCount"] - 2


def test_accelerated_clock() -> None:
    ticks = iter([10.0, 12.0])
    clock = AcceleratedClock(datetime(2026, 11, 16, 8, 0), 60.0, monotonic=lambda: next(ticks))
    assert clock() == datetime(2026, 11, 16, 8, 2)


def test_atms_of_one_directory_share_the_switch_log(tmp_path: Path, clock: Clock) -> None:
    log = HostLog(tmp_path / "host")
    atms = [
        LiveAtm(tmp_path, clock, terminal_id=tid, seed=4, mean_transactions=200, host_log=log)
        for tid in ("T1000001", "T1000002")
    ]
    clock.advance(days=1)
    for atm in atms:
        atm.advance()
    rows = (tmp_path / "host" / "20261116.csv").read_text().splitlines()
    assert rows[0].startswith("terminal_id,")
    assert {row.split(",")[0] for row in rows[1:]} == {"T1000001", "T1000002"}
    iso = (tmp_path / "host" / "20261116.iso").read_bytes()
    assert b"T1000001" in iso
    assert b"T1000002" in iso
    clock.advance(days=3)
    for atm in atms:
        atm.advance()
    assert sorted(log._days) == ["2026-11-18", "2026-11-19"]  # older days are forgotten
    assert (tmp_path / "host" / "20261116.csv").read_text().splitlines() == rows


def test_the_accelerated_clock_pauses_and_changes_speed() -> None:
    now = [0.0]
    clock = AcceleratedClock(datetime(2026, 11, 16, 8, 0), 60, monotonic=lambda: now[0])
    now[0] = 10
    assert clock() == datetime(2026, 11, 16, 8, 10)
    assert clock.pause() == datetime(2026, 11, 16, 8, 10)
    now[0] = 100
    assert clock() == datetime(2026, 11, 16, 8, 10)
    assert clock.paused
    clock.set_speed(1)  # while paused: applies from the resume
    assert clock.resume() == datetime(2026, 11, 16, 8, 10)
    now[0] = 160
    assert clock() == datetime(2026, 11, 16, 8, 11)
    clock.set_speed(3600)
    now[0] = 161
    assert clock() == datetime(2026, 11, 16, 9, 11)
    with pytest.raises(ConfigurationError, match="positive"):
        clock.set_speed(-1)
