"""Helpers for the device-link tests: a recording sink, sample paths, and a simulated line.

:class:`SimulatedLine` runs two pure :class:`Connection` ends against each other
in simulated time over a line of a given byte rate, with optional corruption,
loss, duplication and reordering of whole frames, so window, session and
retransmission behaviour can be tested quickly and reproducibly without ports
or threads.
"""

from __future__ import annotations

import heapq
import itertools
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from device_agent.protocol import (
    Connection,
    JournalData,
    JournalRead,
    LinkConfig,
    Priority,
    Received,
    Role,
    SessionEnded,
    SessionStarted,
)
from simulators.noise import ByteCorrupter

REPO = Path(__file__).resolve().parents[2]


class MemorySink:
    """A LinkSink that keeps everything in memory and checks journals grow contiguously."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.journals: dict[str, bytearray] = {}
        self.cash_units: list[tuple[str, list[dict[str, object]]]] = []
        self.statuses: list[dict[str, object]] = []
        self.events: list[dict[str, object]] = []
        self.violations: list[str] = []
        self.fail_journal_writes = 0
        self.writes = 0

    def journal_offset(self, name: str) -> int:
        with self.lock:
            return len(self.journals.get(name, b""))

    def store_journal(self, name: str, offset: int, data: bytes) -> None:
        with self.lock:
            if self.fail_journal_writes > 0:
                self.fail_journal_writes -= 1
                raise OSError("disk full (simulated)")
            journal = self.journals.setdefault(name, bytearray())
            if offset != len(journal):
                self.violations.append(f"{name}: write at {offset}, stored {len(journal)}")
                raise ValueError(self.violations[-1])
            journal += data
            self.writes += 1

    def store_cash_units(self, units: list[dict[str, object]], reason: str) -> None:
        with self.lock:
            self.cash_units.append((reason, units))

    def store_status(self, status: dict[str, object]) -> None:
        with self.lock:
            self.statuses.append(status)

    def store_event(self, event: dict[str, object]) -> None:
        with self.lock:
            self.events.append(event)

    def stored(self, name: str) -> bytes:
        with self.lock:
            return bytes(self.journals.get(name, b""))

    def total(self) -> int:
        with self.lock:
            return sum(len(data) for data in self.journals.values())


def id_source(seed: int) -> Callable[[], int]:
    rng = random.Random(seed)
    return lambda: rng.getrandbits(32)


@dataclass
class Direction:
    """One direction of the simulated line."""

    corrupter: ByteCorrupter | None = None
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    dead_until: float = 0.0
    free_at: float = 0.0
    delivered_frames: int = 0


@dataclass
class StreamApps:
    """Minimal applications: the device streams ``journal``; the host reads it into ``got``."""

    journal: bytes
    name: str = "20261116"
    chunk: int = 200
    got: bytearray = field(default_factory=bytearray)
    served_from: int | None = None
    sessions: int = 0
    duplicates_stored: int = 0

    def host(self, connection: Connection) -> None:
        while (item := connection.next_item()) is not None:
            if isinstance(item, SessionStarted):
                self.sessions += 1
                connection.send(JournalRead(self.name, len(self.got), 0))
            elif isinstance(item, Received) and isinstance(item.message, JournalData):
                message = item.message
                if message.offset != len(self.got):
                    raise AssertionError(f"data at {message.offset}, have {len(self.got)}")
                self.got += message.data
            connection.pop_item()

    def device(self, connection: Connection) -> None:
        while (item := connection.next_item()) is not None:
            if isinstance(item, Received) and isinstance(item.message, JournalRead):
                self.served_from = item.message.offset
            elif isinstance(item, SessionEnded | SessionStarted):
                self.served_from = None
            connection.pop_item()
        while (
            self.served_from is not None
            and self.served_from < len(self.journal)
            and connection.wants_bulk()
        ):
            start = self.served_from
            data = self.journal[start : start + self.chunk]
            last = start + len(data) >= len(self.journal)
            connection.send(JournalData(self.name, start, data, last), Priority.LOW)
            self.served_from = start + len(data)


class SimulatedLine:
    """Two connection ends on a simulated serial line, in simulated time."""

    def __init__(
        self,
        *,
        rate: float = 11520.0,
        seed: int = 0,
        config: LinkConfig | None = None,
        host_app: Callable[[Connection], None] | None = None,
        device_app: Callable[[Connection], None] | None = None,
    ) -> None:
        self.rate = rate
        self.now = 0.0
        self.rng = random.Random(seed)
        self.config = config or LinkConfig()
        self.host = Connection(
            Role.HOST, now=0.0, session_ids=id_source(seed + 1), config=self.config
        )
        self.device = Connection(
            Role.DEVICE,
            now=0.0,
            session_ids=id_source(seed + 2),
            config=self.config,
            boot_id=1,
            terminal_id="T1000001",
        )
        self.to_host = Direction()
        self.to_device = Direction()
        self.host_app = host_app
        self.device_app = device_app
        self._queue: list[tuple[float, int, str, bytes]] = []
        self._order = itertools.count()
        self.transcript: list[tuple[str, bytes]] = []

    def noisy(self, byte_error_rate: float) -> None:
        for index, direction in enumerate((self.to_host, self.to_device)):
            direction.corrupter = ByteCorrupter(
                byte_error_rate, random.Random(self.rng.getrandbits(64) + index)
            )

    def _ends(self) -> tuple[tuple[str, Connection, Direction], ...]:
        return (("device", self.device, self.to_host), ("host", self.host, self.to_device))

    def _apps(self) -> None:
        if self.host_app is not None:
            self.host_app(self.host)
        if self.device_app is not None:
            self.device_app(self.device)

    def step(self, limit: float) -> None:
        """Run the apps, put frames on free lines, then advance to the next event."""
        self._apps()
        for sender, end, direction in self._ends():
            while direction.free_at <= self.now:
                wire = end.next_frame(self.now)
                if wire is None:
                    break
                self.transcript.append((sender, wire))
                done = self.now + len(wire) / self.rate
                direction.free_at = done
                self._transmit(sender, wire, done, direction)
        candidates = [limit]
        if self._queue:
            candidates.append(self._queue[0][0])
        for _, end, direction in self._ends():
            deadline = end.next_deadline(self.now)
            if deadline is not None:
                candidates.append(max(deadline, direction.free_at))
        upcoming = min(candidates)
        self.now = max(upcoming, self.now + 1e-6) if upcoming <= self.now else upcoming
        while self._queue and self._queue[0][0] <= self.now:
            _, _, target, data = heapq.heappop(self._queue)
            (self.host if target == "host" else self.device).receive(data, self.now)

    def _transmit(self, sender: str, wire: bytes, done: float, direction: Direction) -> None:
        target = "host" if sender == "device" else "device"
        if done < direction.dead_until or self.rng.random() < direction.loss:
            return
        if direction.corrupter is not None:
            wire = direction.corrupter(wire)
        arrival = done
        if direction.reorder and self.rng.random() < direction.reorder:
            arrival += self.rng.uniform(0, 20 * len(wire) / self.rate)
        copies = 2 if self.rng.random() < direction.duplicate else 1
        for copy in range(copies):
            heapq.heappush(
                self._queue,
                (arrival + copy * len(wire) / self.rate, next(self._order), target, wire),
            )

    def run(self, until: Callable[[], bool], *, timeout: float) -> bool:
        """Step until ``until()`` holds or ``timeout`` simulated seconds pass."""
        end = self.now + timeout
        while self.now < end:
            self._apps()
            if until():
                return True
            self.step(end)
        self._apps()
        return until()

    def run_for(self, seconds: float) -> None:
        end = self.now + seconds
        while self.now < end:
            self.step(end)
