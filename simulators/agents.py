"""Device agents for simulated ATMs: one ``atm-agent run`` process per ATM, each with its own
key and spool, restarted if it dies.

The simulators do not import the agent: they run it as a separate program
(``python -m device_agent``, the same as the ``atm-agent`` command), exactly as
an ATM's controller would, and read its key through its own ``keygen`` and
``public-key`` commands. Each agent's output goes to ``<log>/<TID>.log``.

The keys must be enrolled at the service for their ATMs (the public key of each
is in :attr:`AgentProcess.public_key`); until they are, an agent retries and
its heartbeats are refused.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from simulators.errors import ConfigurationError

logger = logging.getLogger(__name__)

AGENT = [sys.executable, "-m", "device_agent"]
RESTART_DELAY_S = 2.0
RESTART_DELAY_MAX_S = 30.0


@dataclass(frozen=True)
class AgentOptions:
    """What every agent of the fleet is told."""

    service_url: str
    keys: Path
    spools: Path
    logs: Path
    baudrate: int = 115200
    heartbeat_interval_s: float = 30.0
    retry_max_s: float = 30.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        if not self.service_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"--service must be an http:// or https:// URL, not {self.service_url!r}"
            )


def _agent_output(*args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our own agent program, arguments we built
        [*AGENT, *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise ConfigurationError(
            f"atm-agent {' '.join(args)} failed: {(done.stderr or done.stdout).strip()}"
        )
    return done.stdout


def ensure_key(path: Path) -> tuple[str, str]:
    """The (public key, key id) of the agent key at ``path``, creating the key if missing."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        _agent_output("keygen", "--key", str(path))
    text = _agent_output("public-key", "--key", str(path))
    found = dict(re.findall(r"^(public key|key id):\s*(\S+)$", text, re.MULTILINE))
    if "public key" not in found or "key id" not in found:
        raise ConfigurationError(f"atm-agent public-key printed no key for {path}")
    return found["public key"], found["key id"]


@dataclass
class AgentProcess:
    """One ATM's agent process, started again after ``RESTART_DELAY_S`` if it exits."""

    terminal_id: str
    port: str
    options: AgentOptions
    key: Path
    spool: Path
    log: Path
    public_key: str = ""
    key_id: str = ""
    restarts: int = 0
    process: subprocess.Popen[bytes] | None = None
    _stopping: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _log_file: IO[bytes] | None = None

    def command(self) -> list[str]:
        o = self.options
        return [
            *AGENT,
            "run",
            "--port",
            self.port,
            "--service",
            o.service_url,
            "--key",
            str(self.key),
            "--spool",
            str(self.spool),
            "--terminal-id",
            self.terminal_id,
            "--baud",
            str(o.baudrate),
            "--heartbeat-interval",
            f"{o.heartbeat_interval_s:g}",
            "--retry-max",
            f"{o.retry_max_s:g}",
            "--log-level",
            o.log_level,
        ]

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self) -> None:
        with self._lock:
            if self._stopping:
                return
            if self._log_file is None:
                self.log.parent.mkdir(parents=True, exist_ok=True)
                self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
            self.process = subprocess.Popen(  # noqa: S603 - our own agent program
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                # its own process group: a Ctrl-C at the terminal reaches the fleet, which
                # stops the agents in order, not every process at once
                start_new_session=True,
            )

    def exited(self) -> int | None:
        """The exit code if the process has ended (and was not stopped on purpose)."""
        with self._lock:
            if self._stopping or self.process is None:
                return None
            return self.process.poll()

    def stop(self, timeout: float = 10.0) -> None:
        with self._lock:
            self._stopping = True
            process = self.process
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                logger.warning("agent of %s did not stop; killing it", self.terminal_id)
                process.kill()
                process.wait()
        if self._log_file is not None:
            self._log_file.close()


class AgentSupervisor:
    """Starts an agent per ATM and keeps them running until :meth:`stop`."""

    def __init__(self, options: AgentOptions, ports: dict[str, str]) -> None:
        self.options = options
        self.agents: dict[str, AgentProcess] = {}
        # each key is read (or made) by a run of the agent program: a few at once
        with ThreadPoolExecutor(max_workers=4) as pool:
            found = dict(
                zip(
                    ports,
                    pool.map(lambda tid: ensure_key(options.keys / f"{tid}.key"), ports),
                    strict=True,
                )
            )
        for terminal_id, port in ports.items():
            key = options.keys / f"{terminal_id}.key"
            public_key, key_id = found[terminal_id]
            self.agents[terminal_id] = AgentProcess(
                terminal_id=terminal_id,
                port=port,
                options=options,
                key=key,
                spool=options.spools / f"{terminal_id}.db",
                log=options.logs / f"{terminal_id}.log",
                public_key=public_key,
                key_id=key_id,
            )
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name="agent-watch", daemon=True)

    def start(self) -> None:
        self.options.spools.mkdir(parents=True, exist_ok=True)
        for agent in self.agents.values():
            agent.start()
        self._watcher.start()

    def _watch(self) -> None:
        due: dict[str, float] = {}
        delays: dict[str, float] = {}
        while not self._stop.wait(0.5):
            now = time.monotonic()
            for tid, agent in self.agents.items():
                code = agent.exited()
                if code is None:
                    continue
                if tid not in due:
                    delay = min(delays.get(tid, RESTART_DELAY_S / 2) * 2, RESTART_DELAY_MAX_S)
                    delays[tid] = delay
                    due[tid] = now + delay
                    logger.warning(
                        "agent of %s exited with %s; restarting in %.0f s (see %s)",
                        tid,
                        code,
                        delay,
                        agent.log,
                    )
                elif now >= due.pop(tid):
                    agent.restarts += 1
                    agent.start()

    def stop(self) -> None:
        self._stop.set()
        if self._watcher.is_alive():
            self._watcher.join(5)
        threads = [threading.Thread(target=agent.stop) for agent in self.agents.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
