"""A gap in a journal being read: the agent asks for it once, and again only if that read fails.

The device (the simulator, on a pseudo-terminal with line noise) serves a journal
that grows while the agent reads it, so the agent has a second read of the same
journal queued behind the first; then the device's disk fails the first read part
way. The chunks of the second read arrive beyond a gap. The agent must ask for the
gap once, not once per chunk, and ask again only when that read itself fails
(JOURNAL_ERROR) or goes unanswered; the journal must still be stored exactly once,
byte for byte, in order. The device notes every read it receives, so the test counts
the reads of the gap.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from device_agent.link import DeviceLink
from device_agent.protocol import JournalRead
from simulators.file_backend import FileDeviceBackend
from simulators.ports import Port
from simulators.serial_device import SerialDevice
from tests.protocol.support import MemorySink

pytestmark = pytest.mark.slow

TERMINAL = "T1000001"
DAY = "20261116"
BAUD = 230_400
NOISE = 3e-4  # byte error probability, each way: about one chunk in three is damaged
FIRST = 64 * 1024  # the journal when the agent starts reading it
GROWTH = 24 * 1024  # what the device writes while the first read is served


def journal_text(start: int, size: int) -> bytes:
    lines = (
        f"08:{n // 60 % 60:02d}:{n % 60:02d} TRANSACTION {n:06d} CASH 20.00\n"
        for n in range(start, 10**6)
    )
    text = b""
    while len(text) < size:
        text += next(lines).encode()
    return text[:size]


class RecordingDevice(SerialDevice):
    """The simulator, noting every journal read it receives; ``lose`` makes it drop some."""

    def __init__(
        self,
        backend: FileDeviceBackend,
        port: Port,
        *,
        lose: Callable[[JournalRead], bool] = lambda read: False,
        **options: Any,
    ) -> None:
        super().__init__(backend, port, **options)
        self.reads: list[JournalRead] = []
        self.lost: list[JournalRead] = []
        self._lose = lose

    def _on_read(self, read: JournalRead) -> None:
        self.reads.append(read)
        if self._lose(read):
            self.lost.append(read)
            return
        super()._on_read(read)


class GrowingFlakyDisk(FileDeviceBackend):
    """A journal that grows at the device's first read of it, and a disk that fails reads of
    the older bytes (``failures`` of them) once the agent has asked for the newer ones."""

    def __init__(self, journal_dir: Path, *, failures: int) -> None:
        super().__init__(journal_dir, TERMINAL)
        self.path = journal_dir / f"{TERMINAL}_{DAY}.txt"
        self.failures = failures
        self.failed_at: list[int] = []
        self.reads_seen: Callable[[], list[JournalRead]] = list
        self._grown = threading.Event()

    def read_journal(self, name: str, offset: int, size: int) -> bytes:
        if not self._grown.is_set():
            self._grown.set()
            with self.path.open("ab") as handle:
                handle.write(journal_text(10**5, GROWTH))
        second_read_queued = any(read.offset >= FIRST for read in self.reads_seen())
        if self.failures > 0 and offset < FIRST and second_read_queued:
            self.failures -= 1
            self.failed_at.append(offset)
            raise OSError("I/O error reading the journal disk")
        return super().read_journal(name, offset, size)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def transfer(
    tmp_path: Path, *, failures: int, lose_gap_reads: int = 0, **link_options: Any
) -> tuple[RecordingDevice, GrowingFlakyDisk, MemorySink]:
    """Read the growing journal through the failures; return once it is stored or 60 s pass."""
    journal_dir = tmp_path / "ej"
    journal_dir.mkdir()
    first = journal_text(0, FIRST)
    (journal_dir / f"{TERMINAL}_{DAY}.txt").write_bytes(first)
    backend = GrowingFlakyDisk(journal_dir, failures=failures)
    lost = [lose_gap_reads]

    def lose(read: JournalRead) -> bool:
        if lost[0] > 0 and backend.failed_at and read.offset == backend.failed_at[0]:
            lost[0] -= 1
            return True
        return False

    sink = MemorySink()
    device = RecordingDevice.on_pty(
        backend, baudrate=BAUD, byte_error_rate=NOISE, rng=random.Random(5), lose=lose
    )
    assert isinstance(device, RecordingDevice)
    backend.reads_seen = lambda: list(device.reads)
    with device:
        assert device.device_path is not None
        with DeviceLink(device.device_path, sink, baudrate=BAUD, **link_options) as link:
            wait_for(lambda: sink.stored(DAY) == first + journal_text(10**5, GROWTH))
            assert link.error is None
    assert device.error is None
    return device, backend, sink


def gap_reads(device: RecordingDevice, backend: GrowingFlakyDisk) -> list[JournalRead]:
    """The reads the device received for the gap: from where its disk first failed."""
    assert backend.failed_at, "the disk never failed: the second read came too late"
    return [
        read for read in device.reads if read.name == DAY and read.offset == backend.failed_at[0]
    ]


def check_stored_once(sink: MemorySink) -> None:
    assert sink.stored(DAY) == journal_text(0, FIRST) + journal_text(10**5, GROWTH)
    assert sink.violations == []


def test_a_gap_is_asked_for_once(tmp_path: Path) -> None:
    device, backend, sink = transfer(tmp_path, failures=1)
    check_stored_once(sink)
    assert len(backend.failed_at) == 1
    # the chunks of the second read that arrived beyond the gap asked for nothing more
    assert len(gap_reads(device, backend)) == 1


def test_a_gap_read_that_fails_is_asked_for_again(tmp_path: Path) -> None:
    device, backend, sink = transfer(tmp_path, failures=2, retry_interval=0.2)
    check_stored_once(sink)
    assert backend.failed_at[0] == backend.failed_at[1]  # the gap's read failed too
    assert len(gap_reads(device, backend)) == 2


def test_a_gap_read_left_unanswered_is_asked_for_again(tmp_path: Path) -> None:
    device, backend, sink = transfer(tmp_path, failures=1, lose_gap_reads=1, reread_timeout=1.0)
    check_stored_once(sink)
    assert len(device.lost) == 1
    assert len(gap_reads(device, backend)) == 2
