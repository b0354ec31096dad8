"""The last check of the live-ATM test, on a hand-moved clock: what the ATM's journal files
hold once its clock is paused, and how they compare with a service that has received them.

The live test pauses an accelerated clock and compares every EJ file with the service's
copy. Two moments made that check wait in vain: a pause that the ATM had not caught up
with (its files still grew afterwards), and a pause just after midnight in New York (the
new day's file was empty, and the service has no journal of a day without a byte).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest

from atm_service.errors import NotFound
from atm_service.services.journals import get_journal
from simulators.live import LiveAtm
from simulators.live_device import GuardedAtm
from tests.system.support import build_place, committed_database, journal_at_service, journal_files
from tests.system.test_device_to_dispatch import RoundTheClock

DAY = date(2026, 11, 23)


class HandClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _live_atm(directory: Path, clock: HandClock) -> GuardedAtm:
    return GuardedAtm(
        LiveAtm(directory, clock, terminal_id="T1000001", seed=5, demand=RoundTheClock())
    )


def _on_disk(directory: Path) -> dict[str, bytes]:
    """The EJ files as they are, without letting the ATM catch up first."""
    return {path.stem: path.read_bytes() for path in (directory / "ej").glob("*.txt")}


def test_the_files_are_read_once_the_atm_has_caught_up_with_the_paused_clock(
    tmp_path: Path,
) -> None:
    midnight = datetime.combine(DAY, time())
    clock = HandClock(midnight + timedelta(hours=12))
    atm = _live_atm(tmp_path, clock)
    engine = atm.atm.atm
    # The link polls until a customer is at the ATM: the lines of a session are written
    # once it ends (the engine's clock is where the session ends).
    while engine.clock <= (clock.now - midnight).total_seconds():
        clock.now += timedelta(seconds=7)
        atm.journals()
    written = _on_disk(tmp_path)

    # The clock passes the end of that session and stops before the link polls again.
    clock.now = midnight + timedelta(seconds=engine.clock)
    assert _on_disk(tmp_path) == written
    files = journal_files(atm)
    assert len(files["20261123"]) > len(written["T1000001_20261123"])

    # Whatever the link asks now, the files stay as they were read.
    atm.journals()
    atm.poll_events()
    atm.device_status()
    atm.cash_units()
    assert _on_disk(tmp_path) == {f"T1000001_{name}": data for name, data in files.items()}


def test_a_pause_just_after_midnight_leaves_an_empty_day_the_service_does_not_know(
    tmp_path: Path,
) -> None:
    clock = HandClock(datetime.combine(DAY, time(23, 58)))
    atm = _live_atm(tmp_path / "atm", clock)
    clock.now = datetime.combine(DAY + timedelta(days=1), time(0, 0, 10))
    files = journal_files(atm)
    assert sorted(files) == ["20261123", "20261124"]
    assert files["20261123"]
    assert files["20261124"] == b""  # created as the day began; no line yet

    with committed_database("sqlite", tmp_path) as committed:
        place = build_place(committed.database, datetime.now(UTC))
        with committed.database.session() as session:
            # The agent sends bytes, and there are none: the service has no such journal.
            with pytest.raises(NotFound):
                get_journal(session, place.atm_id, "20261124")
            assert journal_at_service(session, place.atm_id, "20261124") == files["20261124"]
