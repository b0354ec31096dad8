"""A small fleet under load for the fault tests: simulated devices, the real agent's uploader.

Each :class:`Device` writes what an ATM's link would deliver into its agent's
durable spool (``device_agent.spool.Spool`` on disk), from a thread of its own as
the link does: journal bytes for two business days, a status, and events (cash
running low, hardware faults, the safe door) with device times that never repeat.
It keeps its own copy of everything it wrote, which is what the service must
hold in the end.

Each agent is the agent's real :class:`~device_agent.uploader.Uploader` (signed
requests, batches, backoff honouring ``Retry-After``, resume from the spool) on
an asyncio loop in one thread, talking to the service instances through a
:class:`RoundRobin` transport that sends each request to the next instance, as a
load balancer in front of them would. Every answer and transport failure is
counted by status.
"""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from device_agent.signing import DeviceKey, RequestSigner
from device_agent.spool import Spool
from device_agent.uploader import Uploader, UploadPolicy

DAYS = ("20261116", "20261117")
FAULTS = (
    ("dispenser", "fatal", "M-05", "note jam in presenter"),
    ("card_reader", "fatal", "C-02", "card jammed"),
    ("dispenser", "fatal", "", "dispenser module failure"),
    ("receipt_printer", "warning", "P-01", "paper low"),
)


class RoundRobin(httpx.AsyncBaseTransport):
    """Sends each request to the next of ``bases`` (a load balancer without health checks:
    a request to an instance that is down fails, and the agent retries)."""

    def __init__(self, bases: list[str], seen: Counter[str]) -> None:
        self.bases = [httpx.URL(base) for base in bases]
        self.inner = httpx.AsyncHTTPTransport()
        self.seen = seen
        self.turn = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.turn = (self.turn + 1) % len(self.bases)
        base = self.bases[self.turn]
        request.url = request.url.copy_with(scheme=base.scheme, host=base.host, port=base.port)
        try:
            response = await self.inner.handle_async_request(request)
        except httpx.TransportError as exc:
            self.seen[f"transport: {type(exc).__name__}"] += 1
            raise
        self.seen[str(response.status_code)] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Device:
    """One ATM's device: writes into its agent's spool and remembers what it wrote."""

    terminal_id: str
    spool: Spool
    rng: random.Random
    journals: dict[str, bytearray] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    device_time: datetime = field(default_factory=lambda: datetime(2026, 11, 16, 8, 0, 0))
    transactions: int = 0

    def start_of_day(self) -> None:
        self.spool.store_status(
            {
                "time": self.device_time.isoformat(),
                "in_service": True,
                "safe_door": "closed",
                "devices": {"dispenser": "ok", "card_reader": "ok", "receipt_printer": "ok"},
            }
        )

    def write_journal(self, day: str) -> None:
        self.transactions += 1
        self.device_time += timedelta(seconds=self.rng.randint(20, 90))
        clock = self.device_time.strftime("%H:%M:%S")
        amount = self.rng.choice((20, 40, 60, 100, 200))
        text = (
            f"*{self.transactions:04d}*{self.device_time:%m/%d/%Y}*{clock}*\n"
            "     *TRANSACTION START*\n"
            f" CARD INSERTED ({self.rng.randrange(400000, 499999)}XXXXXX"
            f"{self.rng.randrange(1000, 9999)})\n"
            f" {clock} PIN ENTERED\n"
            f"  GENAC 1 : ARQC          AMOUNT {amount:>8}.00\n"
            f" {clock} NOTES PRESENTED 0,{amount // 20},0,0\n"
            f" {clock} NOTES TAKEN\n"
            " <- TRANSACTION END\n"
        ).encode("ascii")
        journal = self.journals.setdefault(day, bytearray())
        self.spool.store_journal(day, len(journal), text)
        journal += text

    def report_event(self) -> None:
        self.device_time += timedelta(seconds=self.rng.randint(5, 30))
        at = self.device_time.isoformat()
        roll = self.rng.random()
        event: dict[str, Any]
        if roll < 0.4:
            event = {
                "kind": "cash_unit_threshold",
                "time": at,
                "unit": self.rng.randint(1, 4),
                "status": "low",
            }
        elif roll < 0.75:
            device, severity, code, description = self.rng.choice(FAULTS)
            event = {
                "kind": "hardware_error",
                "time": at,
                "device": device,
                "severity": severity,
                "code": code,
                "description": description,
            }
        else:
            event = {"kind": "safe_door", "time": at, "state": self.rng.choice(("open", "closed"))}
        self.spool.store_event(event)
        self.events.append(event)


class DeviceWriters:
    """Every device writing from one thread (as each agent's link thread would), until
    stopped: a transaction every ``journal_every`` seconds, an event every ``event_every``."""

    def __init__(
        self, devices: list[Device], *, journal_every: float, event_every: float, switch_at: float
    ) -> None:
        self.devices = devices
        self.journal_every = journal_every
        self.event_every = event_every
        self.switch_at = switch_at  # seconds into the run when the business day changes
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="devices", daemon=True)

    def start(self) -> None:
        for device in self.devices:
            device.start_of_day()
        self._thread.start()

    def _run(self) -> None:
        began = time.monotonic()
        due: dict[tuple[int, str], float] = {}
        for n, device in enumerate(self.devices):
            due[(n, "journal")] = began + device.rng.uniform(0, self.journal_every)
            due[(n, "event")] = began + device.rng.expovariate(1 / self.event_every)
        try:
            while not self.stop.is_set():
                now = time.monotonic()
                day = DAYS[0] if now - began < self.switch_at else DAYS[1]
                for (n, what), when in list(due.items()):
                    if when > now:
                        continue
                    device = self.devices[n]
                    if what == "journal":
                        device.write_journal(day)
                        due[(n, what)] = when + self.journal_every
                    else:
                        device.report_event()
                        due[(n, what)] = when + device.rng.expovariate(1 / self.event_every)
                self.stop.wait(0.02)
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self) -> None:
        self.stop.set()
        self._thread.join(10)
        if self.error is not None:
            raise self.error


class Agents:
    """The agents' uploaders on one asyncio loop in a thread of its own."""

    def __init__(
        self,
        spools: dict[str, Spool],
        keys: dict[str, DeviceKey],
        bases: list[str],
        policy: UploadPolicy,
    ) -> None:
        self.seen: Counter[str] = Counter()
        self.spools = spools
        self.keys = keys
        self.bases = bases
        self.policy = policy
        self.uploaders: dict[str, Uploader] = {}
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="agents", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise AssertionError("the agents did not start")

    def _run(self) -> None:
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:
            self.error = exc
        finally:
            self._ready.set()
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        transports = []
        clients = []
        for n, (terminal_id, spool) in enumerate(sorted(self.spools.items())):
            transport = RoundRobin(self.bases, self.seen)
            client = httpx.AsyncClient(
                base_url="http://service",
                transport=transport,
                auth=RequestSigner(self.keys[terminal_id]),
                timeout=10,
            )
            transports.append(transport)
            clients.append(client)
            self.uploaders[terminal_id] = Uploader(
                spool=spool,
                client=client,
                policy=self.policy,
                terminal_id=terminal_id,
                rng=random.Random(n),
            )
        self._ready.set()
        try:
            await asyncio.gather(*(u.run(self._stop) for u in self.uploaders.values()))
        finally:
            for client in clients:
                await client.aclose()

    def stop(self) -> None:
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(20)
        if self.error is not None:
            raise self.error


def open_spools(directory: Path, terminals: list[str]) -> dict[str, Spool]:
    """A durable spool per agent (WAL, ``synchronous=NORMAL``: the machine does not lose
    power in this test, only processes die)."""
    directory.mkdir(parents=True, exist_ok=True)
    return {
        terminal: Spool(directory / f"{terminal}.db", synchronous="NORMAL")
        for terminal in terminals
    }
