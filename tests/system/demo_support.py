"""``atm-service demo`` as a process for tests: started in a folder of its own on free ports,
its logins read from what it prints, its process tree, and a stop by signal."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.system.support import free_port

LOGIN = re.compile(r"^\s+(\w+)\s+(admin|dispatcher|engineer|reconciler|auditor)\s+(\S+)$")
READY_LINE = "Ctrl-C stops everything."


def descendants(root: int) -> set[int]:
    """The processes below ``root`` now (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses
        fields = stat[stat.rindex(")") + 2 :].split()
        parents[int(entry.name)] = int(fields[1])
    found: set[int] = set()
    frontier = {root}
    while frontier:
        children = {pid for pid, parent in parents.items() if parent in frontier}
        children -= found
        found |= children
        frontier = children
    return found


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting to be reaped does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return state[state.rindex(")") + 2] != "Z"


@dataclass
class DemoProcess:
    """One ``atm-service demo`` in ``folder``: ``start``, then ``stop`` with a signal."""

    folder: Path
    atms: int = 2
    extra: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    panel_port: int = field(default_factory=free_port)
    process: subprocess.Popen[str] | None = None
    lines: list[str] = field(default_factory=list)
    logins: dict[str, str] = field(default_factory=dict)
    _ready: threading.Event = field(default_factory=threading.Event)
    _reader: threading.Thread = field(init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def panel_url(self) -> str:
        return f"http://127.0.0.1:{self.panel_port}"

    @property
    def data_dir(self) -> Path:
        return self.folder / "var" / "demo"

    def start(self, timeout: float = 90.0) -> None:
        environment = {
            **os.environ,
            "ATM_ARGON2_TIME_COST": "1",
            "ATM_ARGON2_MEMORY_KIB": "1024",
            "ATM_ARGON2_PARALLELISM": "1",
            "PYTHONUNBUFFERED": "1",
        }
        command = [
            sys.executable,
            "-m",
            "atm_service",
            "demo",
            "--atms",
            str(self.atms),
            "--port",
            str(self.port),
            "--panel-port",
            str(self.panel_port),
            *self.extra,
        ]
        # a process group of its own, as a shell gives a foreground job: a Ctrl-C there is
        # SIGINT to the whole group
        self.process = subprocess.Popen(
            command,
            cwd=self.folder,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=environment,
            start_new_session=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            self.kill()
            raise AssertionError("the demo did not start:\n" + "\n".join(self.lines))

    def _read(self) -> None:
        assert self.process is not None
        assert self.process.stdout is not None
        for raw in self.process.stdout:
            line = raw.rstrip("\n")
            self.lines.append(line)
            found = LOGIN.match(line)
            if found:
                self.logins[found.group(1)] = found.group(3)
            if line.strip() == READY_LINE:
                self._ready.set()
        self._ready.set()

    def stop(self, how: signal.Signals, *, group: bool, timeout: float = 45.0) -> int:
        """Send ``how`` to the demo (``group``: to its whole process group, like a Ctrl-C at
        the terminal) and return its exit code."""
        assert self.process is not None
        if group:
            os.killpg(self.process.pid, how)
        else:
            self.process.send_signal(how)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"the demo did not stop within {timeout:.0f} s:\n" + "\n".join(self.lines)
            ) from None
        self._close()
        return code

    def kill(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for pid in descendants(self.process.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.kill()
        self.process.wait()
        self._close()

    def _close(self) -> None:
        if self.process is not None and self.process.stdout is not None:
            self._reader.join(5)
            self.process.stdout.close()


def wait_until(condition: object, timeout: float, what: str, step: float = 0.3) -> None:
    assert callable(condition)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")
