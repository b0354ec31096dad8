"""Running live ATMs for people and tests: ``atm-sim atm`` and ``atm-sim fleet``.

:class:`Simulation` builds one or more :class:`~simulators.live.LiveAtm` on one
accelerated clock, writing into one directory (``ej/ paper/ host/ counters/
truth.jsonl`` like the batch generator, one shared switch log, and
``events/<TID>.jsonl``), serves each on its own serial link
(:class:`~simulators.live_device.LiveDevice`: a pseudo-terminal, a loopback
TCP port or a pyserial URL), and optionally starts one device agent per ATM
(:mod:`simulators.agents`). It takes operator commands
(:mod:`simulators.console`) from standard input and, with ``control_port``,
from a loopback TCP port. It writes ``fleet.json`` into the directory: per ATM
the address of its link and, with agents, its key, public key, spool and log.

:meth:`Simulation.run` serves until ``quit``, Ctrl-C or SIGTERM, then stops
everything in order: the agents first (they may be in the middle of an upload),
then the links, then the control port.
"""

from __future__ import annotations

import json
import logging
import random
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

from simulators.agents import AgentOptions, AgentSupervisor
from simulators.console import Console
from simulators.errors import ConfigurationError
from simulators.host import HostLog
from simulators.live import AcceleratedClock, LiveAtm
from simulators.live_device import GuardedAtm, LinkOptions, LiveDevice

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AtmSpec:
    terminal_id: str
    dialect: str
    link: LinkOptions
    denominations: tuple[int, int, int, int] = (20, 20, 50, 100)
    loads: tuple[int, int, int, int] = (2000, 2000, 1500, 1500)


@dataclass(frozen=True)
class SimulationOptions:
    out: Path
    atms: tuple[AtmSpec, ...]
    start: datetime
    speed: float = 60.0
    seed: int = 0
    mean_transactions: float = 120.0
    discrepancy_rate: float = 0.0
    control_port: int | None = None
    agents: AgentOptions | None = None
    since: date | None = None  # served at once as the ATMs' past (see LiveAtm)

    def __post_init__(self) -> None:
        if not self.atms:
            raise ConfigurationError("a simulation needs at least one ATM")
        ids = [spec.terminal_id for spec in self.atms]
        if len(set(ids)) != len(ids):
            raise ConfigurationError("terminal ids must be unique")


def fleet_specs(
    count: int,
    *,
    first_terminal: int,
    dialect: str,
    link: LinkOptions,
    seed: int,
) -> tuple[AtmSpec, ...]:
    """``count`` ATMs numbered from ``first_terminal``; TCP ports count up from ``tcp_port``."""
    if count < 1:
        raise ConfigurationError(f"--count must be at least 1, not {count}")
    if first_terminal < 0 or first_terminal + count - 1 > 9_999_999:
        raise ConfigurationError("terminal ids are T + 7 digits: --first-terminal is out of range")
    if dialect not in ("ndc", "procash", "mixed"):
        raise ConfigurationError(f"--dialect must be ndc, procash or mixed, not {dialect!r}")
    if link.where == "url":
        raise ConfigurationError("a fleet serves each ATM on a pseudo-terminal or a TCP port")
    rng = random.Random(f"{seed}:fleet-dialects")
    specs = []
    for index in range(count):
        chosen = dialect if dialect != "mixed" else rng.choice(("ndc", "procash"))
        port = link.tcp_port + index if link.where == "tcp" and link.tcp_port else 0
        specs.append(
            AtmSpec(
                terminal_id=f"T{first_terminal + index:07d}",
                dialect=chosen,
                link=LinkOptions(
                    where=link.where, tcp_port=port, baudrate=link.baudrate, noise=link.noise
                ),
            )
        )
    return tuple(specs)


class _ControlHandler(socketserver.StreamRequestHandler):
    server: _ControlServer

    def handle(self) -> None:
        for raw in self.rfile:
            line = raw.decode("utf-8", "replace").strip()
            if not line:
                continue
            self.wfile.write((self.server.console.execute(line) + "\n").encode())
            self.wfile.flush()


class _ControlServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int, console: Console) -> None:
        self.console = console
        super().__init__(("127.0.0.1", port), _ControlHandler)


@dataclass
class Simulation:
    """See the module docstring."""

    options: SimulationOptions
    echo: Callable[[str], None] = field(default=lambda text: print(text, flush=True))
    clock: AcceleratedClock = field(init=False)
    devices: dict[str, LiveDevice] = field(init=False, default_factory=dict)
    console: Console = field(init=False)
    agents: AgentSupervisor | None = field(init=False, default=None)
    control: _ControlServer | None = field(init=False, default=None)
    stopping: threading.Event = field(init=False, default_factory=threading.Event)

    def __post_init__(self) -> None:
        o = self.options
        self.clock = AcceleratedClock(o.start, o.speed)
        host_log = HostLog(o.out / "host")
        rng = random.Random(f"{o.seed}:links")
        for spec in o.atms:
            atm = LiveAtm(
                o.out,
                self.clock,
                terminal_id=spec.terminal_id,
                seed=o.seed,
                dialect=spec.dialect,
                mean_transactions=o.mean_transactions,
                discrepancy_rate=o.discrepancy_rate,
                denominations=spec.denominations,
                loads=spec.loads,
                host_log=host_log,
                since=o.since,
            )
            guarded = GuardedAtm(atm, event_log=o.out / "events" / f"{spec.terminal_id}.jsonl")
            self.devices[spec.terminal_id] = LiveDevice(
                guarded, spec.link, rng=random.Random(rng.getrandbits(64))
            )
        self.console = Console(self.devices, self.clock, on_quit=self.stopping.set)

    # --- starting and stopping ------------------------------------------------------

    def start(self) -> None:
        for device in self.devices.values():
            device.start()
        o = self.options
        if o.control_port is not None:
            self.control = _ControlServer(o.control_port, self.console)
            threading.Thread(target=self.control.serve_forever, name="control", daemon=True).start()
        if o.agents is not None:
            ports = {tid: device.address for tid, device in self.devices.items()}
            self.agents = AgentSupervisor(o.agents, ports)
            self.agents.start()
        self._write_manifest()

    def stop(self) -> None:
        self.stopping.set()
        if self.agents is not None:
            self.agents.stop()
        for device in self.devices.values():
            device.stop()
        if self.control is not None:
            self.control.shutdown()
            self.control.server_close()

    @property
    def control_port(self) -> int | None:
        return None if self.control is None else int(self.control.server_address[1])

    def rows(self) -> list[dict[str, Any]]:
        """Per ATM: terminal, dialect, link address and, with agents, the agent's files."""
        rows = []
        for spec in self.options.atms:
            device = self.devices[spec.terminal_id]
            row: dict[str, Any] = {
                "terminal_id": spec.terminal_id,
                "dialect": spec.dialect,
                "port": device.address,
                "baud": spec.link.baudrate,
            }
            if self.agents is not None:
                agent = self.agents.agents[spec.terminal_id]
                row |= {
                    "key": str(agent.key),
                    "public_key": agent.public_key,
                    "key_id": agent.key_id,
                    "spool": str(agent.spool),
                    "agent_log": str(agent.log),
                    "agent_pid": agent.pid,
                }
            rows.append(row)
        return rows

    def _write_manifest(self) -> None:
        manifest = {
            "started": self.options.start.isoformat(timespec="seconds"),
            "speed": self.options.speed,
            "control_port": self.control_port,
            "service": None if self.options.agents is None else self.options.agents.service_url,
            "atms": self.rows(),
        }
        path = self.options.out / "fleet.json"
        path.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    # --- serving a person ------------------------------------------------------------

    def announce(self) -> None:
        rows = self.rows()
        if len(rows) == 1 and self.agents is None:
            row = rows[0]
            self.echo(f"{row['terminal_id']} serves on {row['port']} at {row['baud']} baud")
            self.echo(
                f"connect its agent: atm-agent run --port {row['port']} --baud {row['baud']} "
                "--service URL --key KEY --spool SPOOL"
            )
        else:
            header = f"{'terminal':<10} {'dialect':<8} port"
            if self.agents is not None:
                header += "  (agent pid, key id)"
            self.echo(header)
            for row in rows:
                line = f"{row['terminal_id']:<10} {row['dialect']:<8} {row['port']}"
                if self.agents is not None:
                    line += f"  ({row['agent_pid']}, {row['key_id']})"
                self.echo(line)
        if self.control_port is not None:
            self.echo(f"control: 127.0.0.1:{self.control_port}")
        self.echo(
            f"ready: {len(rows)} ATM{'s' if len(rows) != 1 else ''} writing to "
            f"{self.options.out}; type `help` for commands, Ctrl-C stops"
        )

    def run(self, stdin: IO[str] | None = None) -> None:
        """Start, announce, take console commands until quit, Ctrl-C or SIGTERM; stop."""
        previous = signal.signal(signal.SIGTERM, lambda *_: self.stopping.set())
        try:
            self.start()
            self.announce()
            if stdin is not None:
                threading.Thread(
                    target=self._read_console, args=(stdin,), name="console", daemon=True
                ).start()
            while not self.stopping.wait(0.5):
                failed = [tid for tid, d in self.devices.items() if d.device.error is not None]
                if failed:
                    self.echo(f"error: the serial device of {', '.join(failed)} stopped")
                    break
        except KeyboardInterrupt:
            pass
        finally:
            self.echo("stopping")
            self.stop()
            signal.signal(signal.SIGTERM, previous)

    def _read_console(self, stdin: IO[str]) -> None:
        interactive = stdin.isatty()
        while not self.stopping.is_set():
            if interactive:
                sys.stdout.write("atm-sim> ")
                sys.stdout.flush()
            line = stdin.readline()
            if not line:
                return  # end of input: keep serving until stopped
            answer = self.console.execute(line)
            if answer != "ok":
                self.echo(answer)


def free_port() -> int:
    """A free loopback TCP port (for tests and examples)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])
