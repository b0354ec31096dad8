"""A private PostgreSQL cluster for the tests that stop and restart the database itself.

Restarting the shared test server would disturb everyone else's tests, so these
tests make a cluster of their own: ``initdb`` into a new temporary directory and
``pg_ctl`` on a free loopback port, TCP only (no Unix socket), trust
authentication on 127.0.0.1, removed at the end.

PostgreSQL refuses to run as root. When the tests run as root, the cluster's
commands run as the ``postgres`` system user (through ``runuser``), which owns
the directory. The server's programs are found through ``ATM_TEST_PG_BIN``,
``pg_config --bindir``, ``pg_ctl`` on the ``PATH``, or Debian's
``/usr/lib/postgresql/<version>/bin``.

:func:`private_cluster` yields a started :class:`PrivateCluster`, or raises
:class:`ClusterUnavailable` with the reason it cannot make one here.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from atm_service.db import create_engine

SERVICE_USER = "postgres"


class ClusterUnavailable(Exception):
    """This machine cannot run a private PostgreSQL cluster; the message says why."""


def _bin_directory() -> Path:
    given = os.environ.get("ATM_TEST_PG_BIN")
    candidates: list[str] = [given] if given else []
    pg_config = shutil.which("pg_config")
    if pg_config is not None:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            candidates.append(
                subprocess.run(
                    [pg_config, "--bindir"], capture_output=True, text=True, check=True, timeout=10
                ).stdout.strip()
            )
    on_path = shutil.which("pg_ctl")
    if on_path is not None:
        candidates.append(str(Path(on_path).parent))
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    candidates.extend(reversed(debian))
    for candidate in candidates:
        directory = Path(candidate)
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    raise ClusterUnavailable(
        "no PostgreSQL server programs (initdb, pg_ctl) found; set ATM_TEST_PG_BIN"
    )


def _run_as() -> list[str]:
    """The command prefix that runs the server's programs as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        raise ClusterUnavailable(
            f"running as root, and there is no {SERVICE_USER!r} user to run PostgreSQL as "
            "(initdb refuses root)"
        ) from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable(
            "running as root without runuser to start PostgreSQL as another user"
        )
    return [runuser, "-u", SERVICE_USER, "--"]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PrivateCluster:
    """A PostgreSQL cluster in ``directory``, listening on 127.0.0.1:``port``."""

    bin: Path
    directory: Path
    port: int
    prefix: list[str]

    @property
    def data(self) -> Path:
        return self.directory / "data"

    @property
    def log(self) -> Path:
        return self.directory / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _pg_ctl(self, *arguments: str, timeout: float = 60) -> None:
        command = [*self.prefix, str(self.bin / "pg_ctl"), "-D", str(self.data), *arguments]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        if result.returncode != 0:
            raise ClusterUnavailable(
                f"pg_ctl {' '.join(arguments)} failed: {result.stdout}{result.stderr}"
                f"{self.log.read_text(errors='replace')[-2000:] if self.log.exists() else ''}"
            )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c max_connections=200"
        )
        self._pg_ctl("start", "-w", "-l", str(self.log), "-o", options)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` (disconnect everyone, shut down cleanly) or
        ``immediate`` (quit at once; the next start recovers from the WAL)."""
        self._pg_ctl("stop", "-w", "-m", mode)

    def restart(self, mode: str = "fast", *, down_for: float = 0.0) -> None:
        self.stop(mode)
        time.sleep(down_for)
        self.start()

    def create_database(self, name: str) -> str:
        engine = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)


@contextlib.contextmanager
def private_cluster() -> Iterator[PrivateCluster]:
    """A new cluster, started; stopped and removed afterwards."""
    binaries = _bin_directory()
    prefix = _run_as()
    directory = Path(tempfile.mkdtemp(prefix="atm-pg-"))
    try:
        if prefix:
            account = pwd.getpwnam(SERVICE_USER)
            os.chown(directory, account.pw_uid, account.pw_gid)
        initdb = subprocess.run(
            [
                *prefix,
                str(binaries / "initdb"),
                "-D",
                str(directory / "data"),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if initdb.returncode != 0:
            raise ClusterUnavailable(f"initdb failed: {initdb.stderr.strip()[-1000:]}")
        cluster = PrivateCluster(
            bin=binaries, directory=directory, port=_free_port(), prefix=prefix
        )
        cluster.start()
        try:
            yield cluster
        finally:
            with contextlib.suppress(ClusterUnavailable, subprocess.SubprocessError):
                cluster.stop("immediate")
    finally:
        shutil.rmtree(directory, ignore_errors=True)
