"""A live simulated ATM: it advances on an injected clock and serves the device link.

:class:`LiveAtm` runs the same :class:`~simulators.atm.Atm` as the batch
generator, but customer by customer as its clock (real or accelerated time, or
a test's hand-moved clock) passes their arrival, appending to its per-day EJ
file ``ej/<TID>_<YYYYMMDD>.txt``. It implements the
:class:`~simulators.device_backend.DeviceBackend` protocol: journals addressed by
(name, offset), XFS cash units, device status and unsolicited events, and the
remote commands. Faults are raised on demand with :meth:`LiveAtm.inject` and show
in the status, as events, in the journal where the formats describe them, and
in ``truth.jsonl``. When a business day closes it writes that day's paper
journal, counters, switch log and ground truth beside the journal, in the same
layout as the batch generator; several live ATMs writing into one directory
share a :class:`~simulators.host.HostLog`, so the switch's day files hold all
of their transactions, as a real switch's would.
"""

from __future__ import annotations

import re
import threading
import time as _time
from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from random import Random

from simulators import faults as f
from simulators.atm import END_OF_DAY, Atm, TerminalConfig
from simulators.counters import dumps_counters
from simulators.demand import AMOUNT_MENU, AMOUNT_WEIGHTS, DemandModel, SeasonalDemand, arrivals
from simulators.errors import ConfigurationError, JournalNotFound, UnknownFault
from simulators.host import HostLog, HostSwitch
from simulators.journal import HMS
from simulators.paper import transcribe
from simulators.truth import dumps

Clock = Callable[[], datetime]
DEVICES = ("dispenser", "card_reader", "receipt_printer", "journal_printer", "encrypting_pin_pad")
_JOURNAL_NAME = re.compile(r"^\d{8}$")

# faults that are not about one transaction, and the device they hit
DEVICE_FAULTS: dict[str, tuple[str, str, str, str]] = {
    "card_reader_fault": ("card_reader", "fatal", "D-07", "card reader jammed"),
    "receipt_printer_fault": ("receipt_printer", "fatal", "P-02", "receipt printer paper out"),
    "pin_pad_fault": ("encrypting_pin_pad", "fatal", "E-01", "encrypting PIN pad not responding"),
}
OTHER_FAULTS = (
    "journal_paper_out",
    "power_failure",
    "safe_door_open",
    "safe_door_closed",
    "cassette_missing",
    "cassette_inop",
    "cassette_low",
)
FAULTS = tuple(sorted(f.DIRECTIVES | set(DEVICE_FAULTS) | set(OTHER_FAULTS)))


class AcceleratedClock:
    """Local time that runs ``factor`` times faster than real time from ``start``.

    It can be paused (simulated time stands still, so the ATM serves nobody and
    its journal stops growing), resumed, and set to another speed while it runs;
    the time it shows never jumps. Safe to read from several threads.
    """

    def __init__(
        self,
        start: datetime,
        factor: float = 1.0,
        monotonic: Callable[[], float] = _time.monotonic,
    ) -> None:
        _check_speed(factor)
        self.start = start
        self.factor = factor
        self._monotonic = monotonic
        self._origin = monotonic()
        self._paused_at: datetime | None = None
        self._lock = threading.Lock()

    def __call__(self) -> datetime:
        with self._lock:
            return self._read()

    def _read(self) -> datetime:
        if self._paused_at is not None:
            return self._paused_at
        return self.start + timedelta(seconds=(self._monotonic() - self._origin) * self.factor)

    @property
    def paused(self) -> bool:
        with self._lock:
            return self._paused_at is not None

    def pause(self) -> datetime:
        """Stop simulated time; returns the time it stands at."""
        with self._lock:
            if self._paused_at is None:
                self._paused_at = self._read()
            return self._paused_at

    def resume(self) -> datetime:
        """Let simulated time run on from where it was paused."""
        with self._lock:
            if self._paused_at is not None:
                self.start, self._origin = self._paused_at, self._monotonic()
                self._paused_at = None
            return self._read()

    def set_speed(self, factor: float) -> None:
        """Simulated seconds per real second from now on."""
        _check_speed(factor)
        with self._lock:
            if self._paused_at is None:
                self.start, self._origin = self._read(), self._monotonic()
            self.factor = factor


def _check_speed(factor: float) -> None:
    if not factor > 0:
        raise ConfigurationError(f"clock speed must be positive, not {factor}")


class LiveAtm:
    """A simulated ATM in real (or accelerated) time; see the module docstring."""

    def __init__(
        self,
        directory: Path,
        clock: Clock,
        *,
        terminal_id: str = "T1000001",
        seed: int = 0,
        dialect: str = "ndc",
        mean_transactions: float = 120.0,
        discrepancy_rate: float = 0.0,
        denominations: tuple[int, int, int, int] = (20, 20, 50, 100),
        loads: tuple[int, int, int, int] = (2000, 2000, 1500, 1500),
        first_stan: int = 1,
        demand: DemandModel | None = None,
        ocr_p: float = 0.02,
        host_log: HostLog | None = None,
        since: date | None = None,
    ) -> None:
        """``since``: a business day before the clock's to start from. The days from it up
        to now are served at once, as the ATM's past: their journals, paper, counters and
        switch files are written, and the events of that past are not reported (the link
        starts now)."""
        if not re.fullmatch(r"[A-Z0-9]{8}", terminal_id):
            raise ConfigurationError(
                f"terminal ID must be 8 letters or digits, not {terminal_id!r}"
            )
        if dialect not in ("ndc", "procash"):
            raise ConfigurationError(f"dialect must be 'ndc' or 'procash', not {dialect!r}")
        self.directory = directory
        self.clock = clock
        self.terminal_id = terminal_id
        self.seed = seed
        self.ocr_p = ocr_p
        self.rng = Random(f"{seed}:{terminal_id}:live")
        self.demand = demand or SeasonalDemand.for_fleet(
            [terminal_id], mean_transactions, Random(f"{seed}:demand")
        )
        self.host = HostSwitch(Random(f"{seed}:{terminal_id}:host"))
        # The switch's day files hold every terminal it serves; ATMs of one fleet share one log.
        self.host_log = host_log or HostLog(directory / "host")
        self.policy = f.FaultPolicy(discrepancy_rate)
        config = TerminalConfig(terminal_id, dialect, denominations, loads, first_stan)
        self.atm = Atm(config, self.rng, self.host, self.policy, emit_events=True)
        for sub in ("ej", "paper", "host", "counters"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.day: date | None = None
        self.schedule: list[int] = []
        self.next_customer = 0
        self.written = 0  # EJ lines of the current day already in the file
        self.in_service = True
        self.remote_out_of_service = False
        self.safe_door = "closed"
        self.devices = dict.fromkeys(DEVICES, "ok")
        self.details: dict[str, str] = {}
        self.outbox: list[dict[str, object]] = []
        self.jam_pending = False
        if since is not None:
            if since > self.clock().date():
                raise ConfigurationError(f"since {since} is after the clock's day")
            self._begin(since)
        self.advance()
        if since is not None:
            self.outbox.clear()

    # ------------------------------------------------------------- time
    @property
    def boot_id(self) -> int:
        return self.atm.boot_id

    def _now(self) -> tuple[date, int]:
        now = self.clock()
        return now.date(), now.hour * 3600 + now.minute * 60 + now.second

    def advance(self) -> int:
        """Serve every customer whose arrival the clock has passed; returns how many."""
        today, second = self._now()
        served = 0
        if self.day is None:
            self._begin(today)
        while self.day is not None and self.day < today:
            served += self._serve_until(END_OF_DAY)
            self._close_day()
            assert self.day is not None
            self._begin(self.day + timedelta(days=1))
        served += self._serve_until(second)
        self._flush(second)
        self._collect()
        return served

    def _begin(self, day: date) -> None:
        self.day = day
        self.atm.begin_day(day)
        self.schedule = arrivals(self.demand, self.terminal_id, day, self.rng)
        self.next_customer = 0
        self.written = 0
        self._journal_path(day).touch()
        self._write_counters()

    def _serve_until(self, second: int) -> int:
        atm = self.atm
        served = 0
        weights = AMOUNT_WEIGHTS
        while self.next_customer < len(self.schedule):
            arrival = self.schedule[self.next_customer]
            if arrival > second:
                break
            self.next_customer += 1
            if not self.in_service or arrival < atm.clock:
                continue  # nobody is served while the ATM is down or busy
            share = self.demand.balance_share(self.terminal_id, atm.day)
            if self.rng.random() < share:
                tx = atm.serve(arrival, False)
            else:
                amount = self.rng.choices(AMOUNT_MENU, weights=weights)[0]
                tx = atm.serve(arrival, True, amount)
            if tx is not None:
                served += 1
        return served

    def _flush(self, second: int) -> None:
        """Append the journal lines whose time has come to the day's EJ file."""
        atm = self.atm
        if atm.clock > second or self.day is None:
            return
        lines = atm.out.ej[self.written :]
        if lines:
            with open(self._journal_path(self.day), "a", encoding="ascii", newline="\n") as fh:
                fh.write("\n".join(lines) + "\n")
            self.written += len(lines)

    def _close_day(self) -> None:
        assert self.day is not None
        day = self.day
        out = self.atm.end_day()
        self._flush(END_OF_DAY)
        self._write_counters()
        stem = day.strftime("%Y%m%d")
        paper_rng = Random(f"{self.seed}:{self.terminal_id}:{stem}:paper")
        (self.directory / "paper" / f"{self.terminal_id}_{stem}.txt").write_text(
            transcribe(out.paper, paper_rng, self.ocr_p), encoding="ascii"
        )
        self.host_log.close_day(
            out.date_iso, self.terminal_id, self.host.pop_day(self.terminal_id, out.date_iso)
        )
        if out.truth:
            with open(self.directory / "truth.jsonl", "a", encoding="ascii") as fh:
                fh.write(dumps(out.truth))

    def _journal_path(self, day: date) -> Path:
        return self.directory / "ej" / f"{self.terminal_id}_{day.strftime('%Y%m%d')}.txt"

    def _write_counters(self) -> None:
        out = self.atm.out
        (
            self.directory / "counters" / f"{self.terminal_id}_{out.date_iso.replace('-', '')}.json"
        ).write_text(
            dumps_counters(self.terminal_id, out.date_iso, out.snapshots), encoding="ascii"
        )

    # ---------------------------------------------------------- events
    def _collect(self) -> None:
        """Move the engine's new events to the outbox, updating device states."""
        events = self.atm.events
        assert events is not None
        for event in events:
            self._apply(event)
            self.outbox.append(event)
        events.clear()

    def _apply(self, event: dict[str, object]) -> None:
        kind = event["kind"]
        if kind == "hardware_error":
            device = str(event["device"])
            self.devices[device] = "fault" if event["severity"] == "fatal" else "warning"
            self.details[device] = str(event["description"])
        elif kind == "hardware_recovered":
            device = str(event["device"])
            self.devices[device] = "ok"
            self.details.pop(device, None)
        elif kind == "safe_door":
            self.safe_door = str(event["state"])
        self.in_service = not self.remote_out_of_service and self.devices["card_reader"] != "fault"

    def _emit(self, event: dict[str, object]) -> None:
        self._apply(event)
        self.outbox.append(event)

    def _stamp(self) -> str:
        return self.clock().replace(microsecond=0).isoformat()

    # -------------------------------------------------- fault injection
    def inject(self, fault: str, *, reversal: bool | None = None, unit: int = 1) -> None:
        """Raise a fault now (device faults) or on the next transaction it fits.

        Transaction faults: ``no_dispense``, ``dispenser_jam``, ``partial_dispense``,
        ``notes_not_taken``, ``power_interruption``, ``host_timeout``,
        ``dispensed_not_in_host``, ``host_duplicate``, ``ej_truncated``, ``ej_lost``,
        ``paper_jam``, ``roll_change`` (``reversal``: whether the terminal's 0420
        reaches the switch; None draws it). Device faults: ``card_reader_fault``,
        ``receipt_printer_fault``, ``pin_pad_fault``, ``journal_paper_out``,
        ``power_failure``, ``safe_door_open``, ``safe_door_closed``,
        ``cassette_missing`` / ``cassette_inop`` (``unit`` 1-4), ``cassette_low`` (the
        near-empty sensor of cassette ``unit`` trips: it reports low until replenished).
        """
        self.advance()
        _, second = self._now()
        atm = self.atm
        if fault in f.DIRECTIVES:
            self.policy.inject(fault, reversal)
        elif fault in DEVICE_FAULTS:
            device, severity, code, description = DEVICE_FAULTS[fault]
            self._emit(
                {
                    "kind": "hardware_error",
                    "time": self._stamp(),
                    "device": device,
                    "severity": severity,
                    "code": code,
                    "description": description,
                }
            )
        elif fault == "journal_paper_out":
            atm.paper_out(second)
        elif fault == "power_failure":
            t = max(second, atm.clock + 1)
            atm.out.ej.append(atm.dialect.event(min(t, END_OF_DAY), "power_up"))
            atm.clock = min(t, END_OF_DAY)
            atm._power_up(atm.clock)
        elif fault in ("safe_door_open", "safe_door_closed"):
            state = "open" if fault == "safe_door_open" else "closed"
            self._emit({"kind": "safe_door", "time": self._stamp(), "state": state})
        elif fault == "cassette_low":
            if not 1 <= unit <= 4:
                raise ConfigurationError(f"cassette unit must be 1-4, not {unit}")
            cassette = atm.cash.cassettes[unit - 1]
            before = cassette.status
            cassette.sensor_low = True
            if cassette.status != before:
                t = min(max(second, atm.clock + 1), END_OF_DAY)
                atm.out.ej.append(atm.dialect.event(t, "low", unit))
                atm.clock = t
                atm._threshold(unit, cassette.status, t)
        elif fault in ("cassette_missing", "cassette_inop"):
            if not 1 <= unit <= 4:
                raise ConfigurationError(f"cassette unit must be 1-4, not {unit}")
            missing = fault == "cassette_missing"
            atm.cash.cassettes[unit - 1].fault_status = 6 if missing else 5
            self._emit(
                {
                    "kind": "cash_unit_error",
                    "time": self._stamp(),
                    "unit": unit,
                    "error": "missing" if missing else "inop",
                }
            )
        else:
            raise UnknownFault(f"unknown fault {fault!r}; known: {', '.join(FAULTS)}")
        self._flush(second)
        self._collect()

    def clear(self, device: str) -> None:
        """An engineer clears a device fault (or reloads journal paper, or reseats cassettes)."""
        self.advance()
        _, second = self._now()
        atm = self.atm
        if device == "journal_printer":
            atm.paper_loaded(second)
        elif device == "dispenser":
            atm.dispenser_down = False
        elif device == "cassettes":
            for unit in atm.cash.cassettes:
                unit.fault_status = None
            self._flush(second)
            self._collect()
            return
        elif device not in DEVICES:
            raise ConfigurationError(f"unknown device {device!r}; known: {', '.join(DEVICES)}")
        self._flush(second)
        self._collect()
        if self.devices.get(device) != "ok":
            self._emit({"kind": "hardware_recovered", "time": self._stamp(), "device": device})

    def service_visit(
        self, *, replenish: bool = True, count_errors: Sequence[tuple[int, int]] = ()
    ) -> None:
        """An engineer at the terminal now: supervisor mode, and a cash exchange if asked."""
        self.advance()
        _, second = self._now()
        if replenish:
            self.atm.replenish(second, count_errors)
        else:
            self.atm.supervisor_visit(second, 5)
        if self.atm.clock >= second:
            # the visit's lines are written now, even if its exit lies ahead of the clock
            lines = self.atm.out.ej[self.written :]
            if lines and self.day is not None:
                with open(self._journal_path(self.day), "a", encoding="ascii", newline="\n") as fh:
                    fh.write("\n".join(lines) + "\n")
                self.written += len(lines)
        self._write_counters()
        self._collect()

    # --------------------------------------------------- DeviceBackend
    def journals(self) -> list[tuple[str, int]]:
        self.advance()
        prefix = f"{self.terminal_id}_"
        found = []
        for path in sorted((self.directory / "ej").glob(f"{prefix}*.txt")):
            name = path.stem[len(prefix) :]
            if _JOURNAL_NAME.match(name):
                found.append((name, path.stat().st_size))
        return found

    def read_journal(self, name: str, offset: int, size: int) -> bytes:
        if not _JOURNAL_NAME.match(name):
            raise JournalNotFound(f"journal names are YYYYMMDD, not {name!r}")
        if offset < 0 or size < 0:
            raise ConfigurationError("offset and size must not be negative")
        path = self.directory / "ej" / f"{self.terminal_id}_{name}.txt"
        if not path.exists():
            raise JournalNotFound(f"no journal {name} on {self.terminal_id}")
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(size)

    def cash_units(self) -> list[dict[str, object]]:
        self.advance()
        return self.atm.cash.snapshot()

    def device_status(self) -> dict[str, object]:
        self.advance()
        status: dict[str, object] = {
            "time": self._stamp(),
            "in_service": self.in_service,
            "safe_door": self.safe_door,
            "devices": dict(self.devices),
        }
        if self.details:
            status["details"] = dict(self.details)
        return status

    def poll_events(self) -> list[dict[str, object]]:
        self.advance()
        events, self.outbox = self.outbox, []
        return events

    def execute(self, command: str) -> dict[str, object]:
        self.advance()
        if command == "send_counters":
            return {"ok": True, "time": self._stamp(), "cash_units": self.atm.cash.snapshot()}
        if command in ("go_out_of_service", "go_in_service"):
            self.remote_out_of_service = command == "go_out_of_service"
            self._emit(
                {
                    "kind": "service_mode",
                    "time": self._stamp(),
                    "in_service": not self.remote_out_of_service,
                    "reason": "remote",
                }
            )
            return {"ok": True, "in_service": self.in_service}
        return {"ok": False, "error": f"unknown command {command!r}"}

    def transactions_today(self) -> int:
        return self.atm.out.transactions

    def journal_time(self) -> str:
        return HMS[self.atm.clock]
