"""A live simulated ATM served on the serial link, with the operator's controls.

:class:`GuardedAtm` puts a :class:`~simulators.live.LiveAtm` behind a lock, so
the link's threads (which call the :class:`~simulators.device_backend.DeviceBackend`
methods) and a person injecting faults from a console never run its engine at
once. It also writes every event the ATM reports to ``events/<TID>.jsonl`` in
the ATM's directory, as it hands them to the link: the device's own record of
what it said, to compare with what reached the service.

:class:`LiveDevice` is one such ATM and the :class:`~simulators.serial_device.SerialDevice`
serving it (on a new pseudo-terminal, a loopback TCP port or a pyserial URL).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from simulators.live import LiveAtm
from simulators.serial_device import SerialDevice


class GuardedAtm:
    """A :class:`LiveAtm` that is safe to share between threads; a ``DeviceBackend``."""

    def __init__(self, atm: LiveAtm, *, event_log: Path | None = None) -> None:
        self.atm = atm
        self.lock = threading.RLock()
        self.event_log = event_log
        if event_log is not None:
            event_log.parent.mkdir(parents=True, exist_ok=True)

    # --- DeviceBackend ------------------------------------------------------------

    @property
    def terminal_id(self) -> str:
        return self.atm.terminal_id

    @property
    def boot_id(self) -> int:
        with self.lock:
            return self.atm.boot_id

    def journals(self) -> list[tuple[str, int]]:
        with self.lock:
            return self.atm.journals()

    def read_journal(self, name: str, offset: int, size: int) -> bytes:
        with self.lock:
            return self.atm.read_journal(name, offset, size)

    def cash_units(self) -> list[dict[str, object]]:
        with self.lock:
            return self.atm.cash_units()

    def device_status(self) -> dict[str, object]:
        with self.lock:
            return self.atm.device_status()

    def poll_events(self) -> list[dict[str, object]]:
        with self.lock:
            events = self.atm.poll_events()
            if events and self.event_log is not None:
                with open(self.event_log, "a", encoding="utf-8") as log:
                    log.writelines(json.dumps(event, sort_keys=True) + "\n" for event in events)
            return events

    def execute(self, command: str) -> dict[str, object]:
        with self.lock:
            return self.atm.execute(command)

    # --- the operator's side ----------------------------------------------------

    def settle(self) -> None:
        """Bring the ATM up to its clock now: every journal line whose time has come is written.

        After the clock is paused and the ATM settled, its journal no longer changes (but for
        a customer session the pause caught in progress, whose lines wait for the clock).
        """
        with self.lock:
            self.atm.advance()

    def inject(self, fault: str, *, reversal: bool | None = None, unit: int = 1) -> None:
        with self.lock:
            self.atm.inject(fault, reversal=reversal, unit=unit)

    def clear(self, device: str) -> None:
        with self.lock:
            self.atm.clear(device)

    def service_visit(
        self, *, replenish: bool = True, count_errors: Sequence[tuple[int, int]] = ()
    ) -> None:
        with self.lock:
            self.atm.service_visit(replenish=replenish, count_errors=count_errors)

    def summary(self) -> dict[str, Any]:
        """Status, journals, cash units in brief and today's transactions, for the console."""
        with self.lock:
            return {
                "terminal_id": self.atm.terminal_id,
                "time": self.atm.clock().replace(microsecond=0).isoformat(),
                "boot_id": self.atm.boot_id,
                "status": self.atm.device_status(),
                "journals": dict(self.atm.journals()),
                "cassettes": {
                    str(unit["usNumber"]): unit["ulCount"]
                    for unit in self.atm.cash_units()
                    if unit.get("usType") == 3
                },
                "transactions_today": self.atm.transactions_today(),
            }


Where = Literal["pty", "tcp", "url"]


@dataclass(frozen=True)
class LinkOptions:
    """How an ATM's end of the serial link is served."""

    where: Where = "pty"
    tcp_port: int = 0
    url: str | None = None
    baudrate: int = 115200
    noise: float = 0.0


class LiveDevice:
    """One live ATM and the serial device serving it; ``start``/``stop`` or ``with``."""

    def __init__(self, atm: GuardedAtm, link: LinkOptions, *, rng: random.Random) -> None:
        self.atm = atm
        self.link = link
        options: dict[str, Any] = {
            "baudrate": link.baudrate,
            "byte_error_rate": link.noise,
            "rng": rng,
        }
        if link.where == "tcp":
            self.device = SerialDevice.on_tcp(atm, port=link.tcp_port, **options)
        elif link.where == "url":
            if not link.url:
                raise ValueError("a device served on a URL needs the URL")
            self.device = SerialDevice.on_url(atm, link.url, **options)
        else:
            self.device = SerialDevice.on_pty(atm, **options)

    @property
    def terminal_id(self) -> str:
        return self.atm.terminal_id

    @property
    def address(self) -> str:
        """What an agent passes as ``--port`` to reach this ATM."""
        return self.device.url

    def start(self) -> None:
        self.device.start()

    def stop(self) -> None:
        self.device.stop()

    def __enter__(self) -> LiveDevice:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
