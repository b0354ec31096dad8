"""A whole simulated world for a demo: live ATMs from a spec file, each with its agent on a
serial link and its safe lock, run together until Ctrl-C or SIGTERM (``atm-sim world``).

The spec (JSON, :class:`WorldSpec`) names the ATMs as the service knows them
(terminal, EJ dialect, cassette denominations and loads, site), the service the
agents upload to and the folder of their keys (without a service: no agents),
and each ATM's lock provisioning record. :class:`World` builds a
:class:`~simulators.runner.Simulation` from it (one clock, one switch log, a
pseudo-terminal and an ``atm-agent run`` process per ATM), starting
``history_days`` before today in the sites' time zone so a closed business day,
with its switch files, exists from the start; loads each lock with its memory
from the last run (``locks/<lock id>.memory.json``, mode 0600); and serves the
operator's panel (:mod:`simulators.panel`) where a person injects faults, keys
codes into the locks, opens and closes the safe doors and replenishes the cassettes.

A lock's door is the ATM's safe door: opening and closing it is reported by the
ATM as a ``safe_door`` event, and the cassettes can only be replenished while
it is open.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lockctl import LockCtlError, NotOpen
from simulators.agents import AgentOptions
from simulators.errors import ConfigurationError, SimulatorError
from simulators.live_device import GuardedAtm, LinkOptions
from simulators.lock import SimulatedLock
from simulators.runner import AtmSpec, Simulation, SimulationOptions

logger = logging.getLogger(__name__)

SPEC_FORMAT = "atm-sim-world"
Clock = Callable[[], datetime]


# --- the spec ----------------------------------------------------------------------------


@dataclass(frozen=True)
class WorldAtm:
    """One ATM of the world, as the service knows it."""

    terminal_id: str
    dialect: str = "ndc"
    denominations: tuple[int, int, int, int] = (20, 20, 50, 100)
    loads: tuple[int, int, int, int] = (2000, 2000, 1500, 1500)
    site: str = ""
    lock: Path | None = None  # the lock's provisioning record


@dataclass(frozen=True)
class WorldSpec:
    """What ``atm-sim world --spec FILE`` runs; relative paths are from the file's folder."""

    out: Path
    service_url: str | None  # None: no agents (the ATMs and locks alone)
    keys: Path | None
    atms: tuple[WorldAtm, ...]
    timezone: str = "UTC"
    speed: float = 1.0
    seed: int = 0
    mean_transactions: float = 240.0
    discrepancy_rate: float = 0.03
    baud: int = 115200
    history_days: int = 1
    heartbeat_interval_s: float = 30.0
    panel_host: str = "127.0.0.1"
    panel_port: int = 0
    faults: tuple[tuple[str, str], ...] = ()  # (terminal, console fault words) at the start

    @classmethod
    def from_file(cls, path: Path) -> WorldSpec:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"cannot read the world spec {path}: {exc.strerror}") from None
        except ValueError as exc:
            raise ConfigurationError(f"the world spec {path} is not JSON: {exc}") from None
        return cls.from_dict(data, base=path.parent)

    @classmethod
    def from_dict(cls, data: Any, *, base: Path) -> WorldSpec:
        if not isinstance(data, dict) or data.get("format") != SPEC_FORMAT:
            raise ConfigurationError(f"a world spec is a JSON object with format {SPEC_FORMAT!r}")
        try:
            atms = tuple(_atm(item, base) for item in _list(data, "atms"))
            if not atms:
                raise ConfigurationError("the world spec's atms list is empty")
            panel = data.get("panel", {})
            if not isinstance(panel, dict):
                raise ConfigurationError("panel must be an object")
            service = data.get("service")
            spec = cls(
                out=base / _text(data, "out"),
                service_url=None if service is None else _text(data, "service").rstrip("/"),
                keys=None if service is None else base / _text(data, "keys"),
                atms=atms,
                timezone=str(data.get("timezone", "UTC")),
                speed=_number(data, "speed", 1.0),
                seed=int(_number(data, "seed", 0)),
                mean_transactions=_number(data, "mean_transactions", 240.0),
                discrepancy_rate=_number(data, "discrepancy_rate", 0.03),
                baud=int(_number(data, "baud", 115200)),
                history_days=int(_number(data, "history_days", 1)),
                heartbeat_interval_s=_number(data, "heartbeat_interval_s", 30.0),
                panel_host=str(panel.get("host", "127.0.0.1")),
                panel_port=int(_number(panel, "port", 0)),
                faults=tuple(
                    (_text(item, "terminal_id"), _text(item, "fault"))
                    for item in _list(data, "faults", required=False)
                ),
            )
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"world spec: {exc}") from None
        spec.check()
        return spec

    def check(self) -> None:
        ids = [atm.terminal_id for atm in self.atms]
        if len(set(ids)) != len(ids):
            raise ConfigurationError("world spec: terminal ids must be unique")
        for terminal, _ in self.faults:
            if terminal not in ids:
                raise ConfigurationError(f"world spec: a fault names {terminal}, not in atms")
        if not self.speed > 0:
            raise ConfigurationError(f"world spec: speed must be positive, not {self.speed}")
        if not 0 <= self.history_days <= 7:
            raise ConfigurationError("world spec: history_days must be 0 to 7")
        if not 0 <= self.panel_port <= 65535:
            raise ConfigurationError(f"world spec: panel port {self.panel_port} is not a port")
        self.zone()

    def zone(self) -> ZoneInfo:
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigurationError(f"world spec: unknown time zone {self.timezone!r}") from None


def _list(data: Mapping[str, Any], name: str, *, required: bool = True) -> list[Any]:
    value = data.get(name, None if required else [])
    if not isinstance(value, list):
        raise ConfigurationError(f"world spec: {name} must be a list")
    return value


def _text(data: Any, name: str) -> str:
    value = data.get(name) if isinstance(data, dict) else None
    if not isinstance(value, str) or not value:
        raise ConfigurationError(f"world spec: {name} must be non-empty text")
    return value


def _number(data: Mapping[str, Any], name: str, default: float) -> float:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"world spec: {name} must be a number, not {value!r}")
    return float(value)


def _four(data: Mapping[str, Any], name: str, default: tuple[int, int, int, int]) -> Any:
    value = data.get(name, list(default))
    if (
        not isinstance(value, list)
        or len(value) != 4
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in value)
    ):
        raise ConfigurationError(f"world spec: {name} must be four whole numbers")
    return tuple(value)


def _atm(item: Any, base: Path) -> WorldAtm:
    if not isinstance(item, dict):
        raise ConfigurationError("world spec: each ATM is an object")
    terminal = _text(item, "terminal_id")
    if not re.fullmatch(r"[A-Z0-9]{8}", terminal):
        raise ConfigurationError(f"world spec: terminal id {terminal!r} is not 8 letters or digits")
    dialect = str(item.get("dialect", "ndc"))
    if dialect not in ("ndc", "procash"):
        raise ConfigurationError(f"world spec: {terminal} dialect must be ndc or procash")
    lock = item.get("lock")
    if lock is not None and not isinstance(lock, str):
        raise ConfigurationError(f"world spec: {terminal} lock must be a file name")
    return WorldAtm(
        terminal_id=terminal,
        dialect=dialect,
        denominations=_four(item, "denominations", (20, 20, 50, 100)),
        loads=_four(item, "loads", (2000, 2000, 1500, 1500)),
        site=str(item.get("site", "")),
        lock=None if lock is None else base / lock,
    )


# --- one ATM's safe lock -----------------------------------------------------------------


class PanelError(SimulatorError):
    """An operator's action at the panel that cannot be done; the message says why."""


@dataclass
class Replenishment:
    """What an engineer took out of and loaded into the ATM at a cash exchange."""

    at: str
    taken_out: dict[str, int]
    loaded: dict[str, int]


class LockBay:
    """An ATM's safe: its simulated lock (kept in memory across runs) and the safe door."""

    def __init__(self, lock: SimulatedLock, atm: GuardedAtm, memory: Path | None) -> None:
        self.lock = lock
        self.atm = atm
        self.memory = memory
        self.guard = threading.Lock()

    def view(self) -> dict[str, Any]:
        with self.guard:
            lock = self.lock
            return {
                "lock_id": lock.lock_id,
                "display": lock.display,
                "status": lock.status.value,
                "door_open": lock.door_open,
                "relocks": lock.sequence,
            }

    def key(self, user: str, code: str) -> str:
        user, code = user.strip(), code.replace("-", "").replace(" ", "").strip()
        if not user.isdigit() or not 1 <= int(user) <= 999_999_999:
            raise PanelError("the user number is 1 to 9 digits, as the code page shows it")
        if not code.isdigit():
            raise PanelError("the code is digits only")
        with self.guard:
            self.lock.enter_code(int(user), code)
            self._save()
            return self.lock.display

    def open_door(self) -> None:
        with self.guard:
            try:
                self.lock.open_door()
            except NotOpen as exc:
                raise PanelError(str(exc)) from None
            self._save()
        self.atm.inject("safe_door_open")

    def close_door(self) -> str:
        with self.guard:
            try:
                seal = self.lock.close_door()
            except NotOpen as exc:
                raise PanelError(str(exc)) from None
            self._save()
        self.atm.inject("safe_door_closed")
        return seal

    def relock(self) -> str:
        with self.guard:
            try:
                seal = self.lock.relock()
            except NotOpen as exc:
                raise PanelError(str(exc)) from None
            self._save()
            return seal

    @property
    def door_open(self) -> bool:
        with self.guard:
            return self.lock.door_open

    def save(self) -> None:
        with self.guard:
            self._save()

    def _save(self) -> None:
        if self.memory is None:
            return
        data = json.dumps(self.lock.memory(), indent=1).encode("utf-8")
        temporary = self.memory.with_suffix(".tmp")
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as out:
            out.write(data)
        os.replace(temporary, self.memory)


def load_lock(record: Path, memory: Path | None, clock: Clock) -> SimulatedLock:
    """The lock from its provisioning record, with its memory from the last run if kept."""
    try:
        lock = SimulatedLock.from_file(record, clock=clock)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the lock record {record}: {exc.strerror}") from None
    except LockCtlError as exc:
        raise ConfigurationError(f"the lock record {record} is not valid: {exc}") from None
    if memory is not None and memory.exists():
        try:
            lock.restore(json.loads(memory.read_text(encoding="utf-8")))
        except (OSError, ValueError, LockCtlError) as exc:
            raise ConfigurationError(f"the lock memory {memory} cannot be loaded: {exc}") from None
    return lock


# --- the world ---------------------------------------------------------------------------


@dataclass
class World:
    """See the module docstring. ``start``/``stop``, or :meth:`run` until a signal."""

    spec: WorldSpec
    echo: Callable[[str], None] = field(default=lambda text: print(text, flush=True))
    lock_clock: Clock = field(default=lambda: datetime.now(UTC))
    simulation: Simulation = field(init=False)
    bays: dict[str, LockBay] = field(init=False, default_factory=dict)
    replenishments: dict[str, Replenishment] = field(init=False, default_factory=dict)
    panel: Any = field(init=False, default=None)
    stopping: threading.Event = field(init=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        spec = self.spec
        now = datetime.now(spec.zone()).replace(tzinfo=None, microsecond=0)
        since = now.date() - timedelta(days=spec.history_days) if spec.history_days else None
        link = LinkOptions(where="pty", baudrate=spec.baud)
        self.simulation = Simulation(
            SimulationOptions(
                out=spec.out,
                atms=tuple(
                    AtmSpec(
                        terminal_id=atm.terminal_id,
                        dialect=atm.dialect,
                        link=link,
                        denominations=atm.denominations,
                        loads=atm.loads,
                    )
                    for atm in spec.atms
                ),
                start=now,
                speed=spec.speed,
                seed=spec.seed,
                mean_transactions=spec.mean_transactions,
                discrepancy_rate=spec.discrepancy_rate,
                agents=None
                if spec.service_url is None or spec.keys is None
                else AgentOptions(
                    service_url=spec.service_url,
                    keys=spec.keys,
                    spools=spec.out / "agents",
                    logs=spec.out / "agents",
                    baudrate=spec.baud,
                    heartbeat_interval_s=spec.heartbeat_interval_s,
                ),
                since=since,
            ),
            echo=self.echo,
        )
        memories = spec.out / "locks"
        memories.mkdir(parents=True, exist_ok=True)
        for atm in spec.atms:
            if atm.lock is None:
                continue
            device = self.simulation.devices[atm.terminal_id]
            probe = load_lock(atm.lock, None, self.lock_clock)
            memory = memories / f"{probe.lock_id}.memory.json"
            lock = load_lock(atm.lock, memory, self.lock_clock)
            self.bays[atm.terminal_id] = LockBay(lock, device.atm, memory)

    # --- what the panel shows and does ------------------------------------------------

    def atm(self, terminal_id: str) -> GuardedAtm:
        device = self.simulation.devices.get(terminal_id)
        if device is None:
            raise PanelError(f"no ATM {terminal_id} in this world")
        return device.atm

    def bay(self, terminal_id: str) -> LockBay:
        self.atm(terminal_id)
        bay = self.bays.get(terminal_id)
        if bay is None:
            raise PanelError(f"{terminal_id} has no safe lock")
        return bay

    def command(self, line: str) -> str:
        """A console line (faults, clearing devices); raises :class:`PanelError` on ``error``."""
        answer = self.simulation.console.execute(line)
        if answer.startswith("error"):
            raise PanelError(answer.removeprefix("error").strip())
        return answer.removeprefix("ok").strip()

    def replenish(self, terminal_id: str) -> Replenishment:
        """A cash exchange now: what is in the cassettes and bins comes out, the loads go in.

        Only with the safe open, where the ATM has a lock."""
        guarded = self.atm(terminal_id)
        bay = self.bays.get(terminal_id)
        if bay is not None and not bay.door_open:
            raise PanelError(
                f"the safe of {terminal_id} is closed: key a code and open the door first"
            )
        with guarded.lock:
            before = guarded.cash_units()
            guarded.service_visit(replenish=True)
            after = guarded.cash_units()
            at = guarded.atm.clock().strftime("%H:%M")
        done = Replenishment(
            at=at, taken_out=_by_unit(before), loaded=_by_unit(after, cassettes_only=True)
        )
        self.replenishments[terminal_id] = done
        return done

    def state(self) -> dict[str, Any]:
        """Every ATM and lock as the panel shows them (also ``/state.json``)."""
        clock = self.simulation.clock
        atms = []
        for spec in self.spec.atms:
            guarded = self.simulation.devices[spec.terminal_id].atm
            with guarded.lock:
                summary = guarded.summary()
                units = guarded.cash_units()
            bay = self.bays.get(spec.terminal_id)
            done = self.replenishments.get(spec.terminal_id)
            atms.append(
                {
                    "terminal_id": spec.terminal_id,
                    "site": spec.site,
                    "dialect": spec.dialect,
                    "status": summary["status"],
                    "transactions_today": summary["transactions_today"],
                    "journal_bytes": sum(summary["journals"].values()),
                    "units": [_unit_view(unit) for unit in units],
                    "lock": None if bay is None else bay.view(),
                    "replenishment": None if done is None else done.__dict__,
                }
            )
        return {
            "time": clock().isoformat(timespec="seconds"),
            "speed": clock.factor,
            "service": self.spec.service_url,
            "atms": atms,
            "days": self.closed_days(),
        }

    def closed_days(self) -> list[dict[str, Any]]:
        """Business days the switch has closed, newest first, with the files of each."""
        out = self.spec.out
        days = []
        for iso in sorted((out / "host").glob("*.iso"), reverse=True):
            stem = iso.stem
            if not re.fullmatch(r"\d{8}", stem):
                continue
            files = [f"host/{path.name}" for path in sorted((out / "host").glob(f"{stem}.*"))]
            for kind in ("paper", "counters"):
                files += [f"{kind}/{p.name}" for p in sorted((out / kind).glob(f"*_{stem}.*"))]
            days.append({"day": f"{stem[:4]}-{stem[4:6]}-{stem[6:]}", "files": files})
        return days

    def day_file(self, relative: str) -> Path:
        """A closed day's file by its name under the output folder (host/, paper/, counters/)."""
        if not re.fullmatch(
            r"(host/\d{8}\.(iso|csv)|paper/[A-Z0-9]{8}_\d{8}\.txt|counters/[A-Z0-9]{8}_\d{8}\.json)",
            relative,
        ):
            raise PanelError(f"no such file {relative!r}")
        path = self.spec.out / relative
        stem = re.findall(r"\d{8}", relative)[-1]
        if not path.is_file() or not (self.spec.out / "host" / f"{stem}.iso").exists():
            raise PanelError(f"{relative} is not a file of a closed day")
        return path

    # --- running ------------------------------------------------------------------------

    def start(self) -> None:
        from simulators.panel import Panel

        self.simulation.start()
        for terminal, fault in self.spec.faults:
            try:
                self.command(f"{terminal} inject {fault}")
            except PanelError as exc:
                logger.warning("the starting fault %s on %s failed: %s", fault, terminal, exc)
        self.panel = Panel(self, host=self.spec.panel_host, port=self.spec.panel_port)
        self.panel.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.panel is not None:
            self.panel.stop()
        for bay in self.bays.values():
            bay.save()
        self.simulation.stop()

    def announce(self) -> None:
        for row in self.simulation.rows():
            agent = f" (agent pid {row['agent_pid']})" if "agent_pid" in row else ""
            self.echo(f"{row['terminal_id']} on {row['port']}{agent}")
        if self.panel is not None:
            self.echo(f"panel: {self.panel.url}")
        self.echo("ready")

    def run(self) -> None:
        """Start, announce, serve until SIGINT or SIGTERM, stop."""
        handler = lambda *_: self.stopping.set()  # noqa: E731
        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            self.start()
            self.announce()
            while not self.stopping.wait(0.5):
                failed = [
                    tid
                    for tid, device in self.simulation.devices.items()
                    if device.device.error is not None
                ]
                if failed:
                    raise SimulatorError(f"the serial device of {', '.join(failed)} stopped")
        finally:
            self.echo("stopping")
            self.stop()
            for sig, old in previous.items():
                signal.signal(sig, old)


def _unit_name(unit: Mapping[str, Any]) -> str:
    kind = unit.get("usType")
    if kind == 3:
        return f"c{unit['usNumber']}"
    return "reject_bin" if kind == 2 else "retract_bin"


def _by_unit(units: list[dict[str, Any]], *, cassettes_only: bool = False) -> dict[str, int]:
    return {
        _unit_name(unit): int(unit["ulCount"])
        for unit in units
        if not cassettes_only or unit.get("usType") == 3
    }


_STATUS = {0: "ok", 1: "full", 2: "high", 3: "low", 4: "empty", 5: "inoperative", 6: "missing"}


def _unit_view(unit: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "unit": _unit_name(unit),
        "number": unit["usNumber"],
        "denomination": unit.get("ulValues") or None,
        "count": unit["ulCount"],
        "status": _STATUS.get(int(unit["usStatus"]), str(unit["usStatus"])),
    }
