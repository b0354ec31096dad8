"""The one-command demo (``atm-service demo``): a whole field system on this computer.

:class:`DemoRunner` makes a fresh demo in its data folder and runs it until
Ctrl-C or SIGTERM:

1. the embedded SQLite database, migrated, with the demo fleet, a user per role
   (new passwords every start), engineers, and a safe lock per ATM
   (:mod:`atm_service.demo`);
2. a device key per ATM, made by the agent's own ``keygen`` and enrolled for
   its ATM, so the agents are trusted from their first request;
3. the service, ``atm-service serve`` in a child process;
4. the simulated world, ``atm-sim world`` in a child process, from a spec this
   module writes (``world.json``): the ATMs, each on a pseudo-terminal with its
   ``atm-agent run`` process, starting the day before so a closed business day
   and its switch files exist at once; each ATM's safe lock; and the panel, a
   web page to inject faults, key codes, open the safe and replenish.

The service does not import the simulators or the agent: it starts them as
programs, as an operator would. The children stay in this process group, so a
Ctrl-C at the terminal reaches each; this process then waits for them, asks
those still running to stop (SIGTERM: the world first, which stops its agents,
then the service), and kills only what has not stopped in time. A child that
dies on its own stops the demo with its log's last lines.

Each start is fresh: the database, the simulated ATMs' files and spools and the
locks' records and memories are made anew (agent keys and the lock secrets are
kept). Logs go to ``logs/`` in the data folder.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import httpx

from atm_service.clock import Clock, system_clock
from atm_service.config import Settings
from atm_service.db import Database
from atm_service.demo import (
    MAX_ATMS,
    DemoAtm,
    DemoLogin,
    demo_atms,
    lock_settings,
    seed,
    seed_locks,
    site_name,
    site_timezone,
)
from atm_service.errors import Conflict, DemoFailed, ServiceError
from atm_service.migrate import upgrade
from atm_service.models.devices import DeviceKeyCreate
from atm_service.security.passwords import Passwords
from atm_service.services import fleet
from atm_service.services.device_keys import enrol_key
from atm_service.services.lock_secrets import LockSecrets

DEFAULT_PORT = 8000
PORT_TRIES = 20
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0
SIGNAL_GRACE_S = 3.0
DISCREPANCY_RATE = 0.03
# the faults the world starts with, where the demo has that ATM
STARTING_FAULTS = (("T1000005", "card_reader_fault"),)

WILDCARDS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - the addresses meaning "all"

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoOptions:
    """What ``atm-service demo`` is asked for."""

    data_dir: Path = Path("var/demo")
    host: str = "127.0.0.1"
    port: int | None = None  # None: 8000, or the next free port
    panel_port: int | None = None  # None: the port after the service's, or the next free
    atms: int = 6
    speed: float = 1.0
    mean_transactions: float = 240.0
    baud: int = 115200
    seed: int = 0
    history_days: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.atms <= MAX_ATMS:
            raise DemoFailed(f"--atms must be 1 to {MAX_ATMS}, not {self.atms}")
        if not self.speed > 0 or self.speed > 3600:
            raise DemoFailed(f"--speed must be above 0 and at most 3600, not {self.speed:g}")
        if not 300 <= self.baud <= 4_000_000:
            raise DemoFailed(f"--baud must be 300 to 4000000, not {self.baud}")
        if not 0 <= self.mean_transactions <= 5000:
            raise DemoFailed("--mean-transactions must be 0 to 5000")
        if not 0 <= self.history_days <= 7:
            raise DemoFailed("--history-days must be 0 to 7")
        for name, port in (("--port", self.port), ("--panel-port", self.panel_port)):
            if port is not None and not 1 <= port <= 65535:
                raise DemoFailed(f"{name} must be 1 to 65535, not {port}")


def port_free(host: str, port: int) -> bool:
    """Whether ``host:port`` can be listened on now (as uvicorn would, reusing the address)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise DemoFailed(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return True


def choose_port(
    host: str, wanted: int | None, default: int, *, option: str, taken: frozenset[int]
) -> tuple[int, str | None]:
    """The port to use and, if it is not the one asked for, a sentence saying why.

    A port given explicitly must be free; the default falls back to the next free one."""
    if wanted is not None:
        if wanted in taken or not port_free(host, wanted):
            raise DemoFailed(
                f"port {wanted} on {host} is in use (another demo still running?); "
                f"choose another with {option}"
            )
        return wanted, None
    for port in range(default, min(default + PORT_TRIES, 65536)):
        if port not in taken and port_free(host, port):
            note = None if port == default else f"port {default} is in use; using {port}"
            return port, note
    raise DemoFailed(
        f"ports {default} to {default + PORT_TRIES - 1} on {host} are all in use; "
        f"choose one with {option}"
    )


def _ignore_interrupts() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@dataclass
class Child:
    """One program the demo runs, with its log file."""

    name: str
    command: list[str]
    log: Path
    environment: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    _log_file: IO[bytes] | None = None

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log, "wb")  # noqa: SIM115 - closed in close()
        self.process = subprocess.Popen(  # noqa: S603 - our own programs, arguments we built
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=self.environment,
            # deaf to a Ctrl-C until the program sets up its own handling (uvicorn's, the
            # world's), so one during its start-up cannot leave a half-made process
            preexec_fn=_ignore_interrupts,
        )

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def exited(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def wait(self, timeout: float) -> bool:
        if self.process is None:
            return True
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self) -> None:
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


@dataclass
class DemoRunner:
    """See the module docstring: :meth:`run` does it all and returns the exit code."""

    options: DemoOptions
    settings: Settings
    echo: Echo = field(default=lambda text: print(text, flush=True))
    clock: Clock = system_clock
    python: str = sys.executable
    stopping: threading.Event = field(default_factory=threading.Event)
    interrupted: bool = False  # a Ctrl-C (SIGINT), which the children got too
    children: list[Child] = field(default_factory=list)
    port: int = 0
    panel_port: int = 0
    atms: tuple[DemoAtm, ...] = ()
    _hold: IO[str] | None = None  # the data folder's lock file, held while the demo runs

    @property
    def data_dir(self) -> Path:
        return self.options.data_dir

    @property
    def local_host(self) -> str:
        """Where this computer reaches the service; the panel listens only there."""
        return "127.0.0.1" if self.options.host in WILDCARDS else self.options.host

    @property
    def service_url(self) -> str:
        return f"http://{self.local_host}:{self.port}"

    @property
    def panel_url(self) -> str:
        return f"http://{self.local_host}:{self.panel_port}/"

    # --- steps ----------------------------------------------------------------------------

    def choose_ports(self) -> list[str]:
        o = self.options
        self.port, note = choose_port(
            o.host, o.port, DEFAULT_PORT, option="--port", taken=frozenset()
        )
        self.panel_port, panel_note = choose_port(
            self.local_host,
            o.panel_port,
            self.port + 1,
            option="--panel-port",
            taken=frozenset({self.port}),
        )
        return [n for n in (note, panel_note) if n]

    def hold_data_dir(self) -> None:
        """Take the data folder for this demo; refuse if another demo runs in it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._hold = open(self.data_dir / "demo.lock", "a")  # noqa: SIM115 - held until exit
        try:
            fcntl.flock(self._hold, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._hold.close()
            raise DemoFailed(
                f"another demo is running in {self.data_dir}/; stop it first, or give this "
                "one its own folder with --data-dir"
            ) from None

    def release_data_dir(self) -> None:
        if self._hold is not None:
            self._hold.close()
            self._hold = None

    def reset(self) -> None:
        """Remove what the last demo in this folder made (keys and lock secrets stay)."""
        data = self.data_dir
        data.mkdir(parents=True, exist_ok=True)
        for name in ("atm_service.db", "atm_service.db-wal", "atm_service.db-shm", "world.json"):
            (data / name).unlink(missing_ok=True)
        for name in ("sim", "locks"):
            shutil.rmtree(data / name, ignore_errors=True)

    def prepare(self) -> list[DemoLogin]:
        """Database, fleet, users, locks and enrolled agent keys; returns the logins."""
        self.atms = demo_atms(self.options.atms)
        settings = self.demo_settings()
        database = Database.from_settings(settings)
        try:
            upgrade(database)
            with database.session() as session:
                logins = seed(
                    session,
                    passwords=Passwords.from_settings(settings),
                    now=self.clock(),
                    atms=self.atms,
                    faults=False,
                )
                seed_locks(
                    session,
                    secrets=LockSecrets(settings),
                    now=self.clock(),
                    records_dir=self.data_dir / "locks",
                    atms=self.atms,
                )
            keys = self.agent_keys()
            with database.session() as session:
                for atm in self.atms:
                    found = fleet.get_atm_by_terminal(session, terminal_id=atm.terminal_id)
                    assert found.id is not None
                    with contextlib.suppress(Conflict):  # enrolled already
                        enrol_key(
                            session,
                            atm_id=found.id,
                            data=DeviceKeyCreate(
                                public_key=keys[atm.terminal_id], label="demo agent"
                            ),
                            now=self.clock(),
                        )
        except ServiceError as exc:
            raise DemoFailed(f"the demo data could not be made: {exc.detail}") from None
        finally:
            database.dispose()
        return logins

    def demo_settings(self) -> Settings:
        database_url = f"sqlite:///{self.data_dir / 'atm_service.db'}"
        return lock_settings(
            self.settings.model_copy(update={"database_url": database_url}), self.data_dir
        )

    def agent_keys(self) -> dict[str, str]:
        """The public key of each ATM's agent, made with ``atm-agent keygen`` when missing."""
        keys_dir = self.data_dir / "keys"
        keys_dir.mkdir(parents=True, exist_ok=True)

        def public_key(terminal_id: str) -> str:
            path = keys_dir / f"{terminal_id}.key"
            if not path.exists():
                self._agent("keygen", "--key", str(path))
            found = re.search(
                r"^public key:\s*(\S+)$", self._agent("public-key", "--key", str(path)), re.M
            )
            if found is None:
                raise DemoFailed(f"atm-agent public-key printed no key for {path}")
            return found.group(1)

        terminals = [atm.terminal_id for atm in self.atms]
        with ThreadPoolExecutor(max_workers=4) as pool:
            return dict(zip(terminals, pool.map(public_key, terminals), strict=True))

    def _agent(self, *args: str) -> str:
        done = subprocess.run(  # noqa: S603 - the agent program, arguments we built
            [self.python, "-m", "device_agent", *args],
            capture_output=True,
            text=True,
            check=False,
            env=self._environment(),
        )
        if done.returncode != 0:
            raise DemoFailed(
                f"atm-agent {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def write_world_spec(self) -> Path:
        o = self.options
        first_site = self.atms[0].site
        spec: dict[str, Any] = {
            "format": "atm-sim-world",
            "version": 1,
            "out": "sim",
            "service": self.service_url,
            "keys": "keys",
            "timezone": site_timezone(first_site),
            "speed": o.speed,
            "seed": o.seed,
            "mean_transactions": o.mean_transactions,
            "discrepancy_rate": DISCREPANCY_RATE,
            "baud": o.baud,
            "history_days": o.history_days,
            "heartbeat_interval_s": 15,
            "panel": {"host": self.local_host, "port": self.panel_port},
            "atms": [
                {
                    "terminal_id": atm.terminal_id,
                    "dialect": atm.dialect.value,
                    "denominations": [note for note, _ in atm.cassettes],
                    "loads": [load for _, load in atm.cassettes],
                    "site": site_name(atm.site),
                    "lock": f"locks/{atm.lock_id}.json",
                }
                for atm in self.atms
            ],
            "faults": [
                {"terminal_id": terminal, "fault": fault}
                for terminal, fault in STARTING_FAULTS
                if any(atm.terminal_id == terminal for atm in self.atms)
            ],
        }
        path = self.data_dir / "world.json"
        path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
        return path

    def _environment(self) -> dict[str, str]:
        settings = self.demo_settings()
        environment = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith("ATM_LOCK_") and key != "ATM_DATABASE_URL"
        }
        environment["ATM_DATABASE_URL"] = settings.database_url
        if settings.lock_master_key_file is not None:
            environment["ATM_LOCK_MASTER_KEY_FILE"] = str(settings.lock_master_key_file)
        if settings.lock_log_signing_key_file is not None:
            environment["ATM_LOCK_LOG_SIGNING_KEY_FILE"] = str(settings.lock_log_signing_key_file)
        for name in ("lock_master_key", "lock_log_signing_key"):
            secret = getattr(settings, name)
            if secret is not None:
                environment[f"ATM_{name.upper()}"] = secret.get_secret_value()
        environment["PYTHONUNBUFFERED"] = "1"
        return environment

    def start_service(self) -> Child:
        child = Child(
            name="service",
            command=[
                self.python,
                "-m",
                "atm_service",
                "serve",
                "--host",
                self.options.host,
                "--port",
                str(self.port),
            ],
            log=self.data_dir / "logs" / "service.log",
            environment=self._environment(),
        )
        self._launch(child)
        self._wait_ready(child, f"{self.service_url}/readyz")
        return child

    def start_world(self, spec: Path) -> Child:
        child = Child(
            name="simulated world",
            command=[self.python, "-m", "simulators", "world", "--spec", str(spec)],
            log=self.data_dir / "logs" / "world.log",
            environment=self._environment(),
        )
        self._launch(child)
        self._wait_ready(child, f"{self.panel_url}healthz")
        return child

    def _launch(self, child: Child) -> None:
        self.children.append(child)
        child.start()

    def _wait_ready(self, child: Child, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.stopping.is_set():
                    return
                code = child.exited()
                if code is not None:
                    raise DemoFailed(
                        f"the {child.name} exited with {code} while starting; "
                        f"the end of {child.log}:\n{child.tail()}"
                    )
                with contextlib.suppress(httpx.TransportError):
                    if client.get(url).status_code == 200:
                        return
                self.stopping.wait(0.2)
        raise DemoFailed(
            f"the {child.name} did not start within {READY_TIMEOUT_S:.0f} s; see {child.log}"
        )

    def announce(self, logins: list[DemoLogin], notes: list[str]) -> None:
        echo = self.echo
        for note in notes:
            echo(note)
        echo("")
        echo("The ATM field service demo is running.")
        echo("")
        echo(f"  Service  {self.service_url}/login")
        echo(f"  Panel    {self.panel_url}   (the simulated ATMs and their safe locks)")
        echo("")
        echo("  Logins (new passwords on every start):")
        for login in logins:
            echo(f"    {login.username:<10} {login.role.value:<11} {login.password}")
        echo("")
        count = len(self.atms)
        echo(
            f"  {count} ATM{'s' if count != 1 else ''}, each on a pseudo-terminal with its agent; "
            f"simulated time x{self.options.speed:g}; files and logs in {self.data_dir}/"
        )
        echo("  Ctrl-C stops everything.")

    def supervise(self) -> int:
        """Wait for a stop signal (0) or a child that dies on its own (1)."""
        while not self.stopping.wait(0.5):
            for child in self.children:
                code = child.exited()
                if code is not None:
                    self.echo(
                        f"error: the {child.name} stopped (exit {code}); "
                        f"the end of {child.log}:\n{child.tail()}"
                    )
                    return 1
        return 0

    def stop(self) -> None:
        """Stop the children: the world first (it stops its agents), then the service."""
        if not self.children:
            return
        if self.interrupted:
            # a Ctrl-C at the terminal reached every child already: give them a moment
            deadline = time.monotonic() + SIGNAL_GRACE_S
            while time.monotonic() < deadline and any(c.exited() is None for c in self.children):
                time.sleep(0.1)
        for child in reversed(self.children):
            child.terminate()
            if not child.wait(STOP_TIMEOUT_S):
                self.echo(f"the {child.name} did not stop within {STOP_TIMEOUT_S:.0f} s; killed")
                child.kill()
            child.close()
        self.children.clear()

    # --- all of it ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _signals(self) -> Iterator[None]:
        def handler(number: int, _frame: object) -> None:
            if number == signal.SIGINT:
                self.interrupted = True
            self.stopping.set()

        previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, old in previous.items():
                signal.signal(sig, old)

    def run(self) -> int:
        """Prepare, start, announce, serve until Ctrl-C or SIGTERM, stop; the exit code."""
        with self._signals():
            try:
                notes = self.choose_ports()
                self.hold_data_dir()
                self.echo(f"Preparing a fresh demo in {self.data_dir}/ ...")
                self.reset()
                logins = self.prepare()
                spec = self.write_world_spec()
                if not self.stopping.is_set():
                    self.start_service()
                if not self.stopping.is_set():
                    self.echo("Starting the simulated ATMs, their agents and safe locks ...")
                    self.start_world(spec)
                if self.stopping.is_set():
                    code = 0
                else:
                    self.announce(logins, notes)
                    code = self.supervise()
            except DemoFailed as exc:
                self.echo(f"error: {exc}")
                code = 1
            finally:
                if self.children:
                    self.echo("Stopping ...")
                self.stop()
                self.release_data_dir()
            if code == 0:
                self.echo("Stopped.")
            return code
