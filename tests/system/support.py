"""Helpers for the whole-system tests: committed databases, the installed commands as
processes, a service process that can be killed and restarted, and a small world to dispatch in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from atm_service.db import Database, create_engine
from atm_service.errors import NotFound
from atm_service.migrate import upgrade
from atm_service.models.devices import DeviceKeyCreate
from atm_service.models.fleet import AtmCreate, ServiceContractCreate, SiteCreate
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import fleet, users
from atm_service.services.device_keys import enrol_key
from atm_service.services.journals import get_journal
from simulators.live_device import GuardedAtm
from tests.conftest import drop_postgres_schema, new_postgres_schema, postgres_url
from tests.service.dispatch_world import World, add_engineer
from tests.support import PASSWORD, SITE, atm_payload, make_settings

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def tool(name: str) -> str:
    """The installed command ``name`` (atm-service, atm-agent, atm-sim) of this environment."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"the {name} command is not installed")
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], bool], timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(step)
    if not condition():
        raise AssertionError(f"{what}: not within {timeout:.0f} s")


def journal_files(atm: GuardedAtm) -> dict[str, bytes]:
    """A live ATM's EJ files by business day (``YYYYMMDD``), once its clock is paused.

    The ATM appends the lines whose time has come whenever it is called (the link
    polls it every quarter second), so right after a pause its files may still lack
    what came due since the last poll, and a poll in progress may be writing; the
    next poll would add those lines after a copy taken now. Settling it first (under
    its lock, up to the paused clock) leaves files that no longer change.
    """
    atm.settle()
    prefix = f"{atm.terminal_id}_"
    return {
        path.stem.removeprefix(prefix): path.read_bytes()
        for path in sorted((atm.atm.directory / "ej").glob(f"{prefix}*.txt"))
    }


def journal_at_service(session: Session, atm_id: int, name: str) -> bytes:
    """The bytes of the ATM's journal ``name`` the service holds: none if it has no such journal.

    A live ATM creates a day's file, empty, when its clock enters the day. Until the
    first line there is nothing for the agent to send, so the service has no journal
    of that name; a run whose clock is paused just after midnight stops there.
    """
    try:
        return get_journal(session, atm_id, name)
    except NotFound:
        return b""


@dataclass
class CommittedDatabase:
    """A migrated database of its own whose transactions commit, and its URL for processes."""

    backend: str
    url: str
    database: Database


@contextlib.contextmanager
def committed_database(backend: str, tmp_path: Path) -> Iterator[CommittedDatabase]:
    schema: str | None = None
    base: str | None = None
    engine: Engine
    if backend == "sqlite":
        url = f"sqlite:///{tmp_path / 'service.db'}"
        engine = create_engine(url)
    else:
        base = postgres_url()
        if base is None:
            pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
        engine, schema = new_postgres_schema(base)
        url = (
            make_url(base)
            .update_query_dict({"options": f"-csearch_path={schema}"})
            .render_as_string(hide_password=False)
        )
    database = Database(engine)
    upgrade(database)
    try:
        yield CommittedDatabase(backend=backend, url=url, database=database)
    finally:
        engine.dispose()
        if base is not None and schema is not None:
            drop_postgres_schema(base, schema)


@dataclass
class Place:
    """The world of a system test: one ATM at a site, an engineer and a dispatcher."""

    atm_id: int
    terminal_id: str
    engineer: str = "eli"
    dispatcher: str = "dispatch"


def build_place(database: Database, now: datetime, terminal_id: str = "T1000001") -> Place:
    passwords = Passwords.from_settings(make_settings())
    with database.session() as session:
        contract = fleet.create_contract(
            session,
            data=ServiceContractCreate(
                code="GOLD",
                customer="First Bank",
                name="Gold 24x7",
                response_minutes=120,
                restore_minutes=240,
            ),
            now=now,
        )
        site = fleet.create_site(session, data=SiteCreate.model_validate(SITE), now=now)
        assert site.id is not None
        assert contract.id is not None
        atm = fleet.create_atm(
            session,
            data=AtmCreate.model_validate(
                atm_payload(site.id, terminal_id, contract_id=contract.id)
            ),
            now=now,
        )
        world = World(atms={terminal_id: atm.id}, sites={"NORTH": site.id}, engineers={}, users={})
        add_engineer(
            session,
            world,
            "eli",
            passwords=passwords,
            now=now,
            site="NORTH",
            skills="flm,cash",
            home_region="North",
        )
        users.create_user(
            session,
            data=UserCreate(
                username="dispatch",
                full_name="Dana Dispatch",
                role=Role.DISPATCHER,
                password=PASSWORD,
            ),
            passwords=passwords,
            now=now,
        )
    return Place(atm_id=atm.id, terminal_id=terminal_id)


def enrol(database: Database, atm_id: int, public_key: str, now: datetime) -> None:
    with database.session() as session:
        enrol_key(session, atm_id=atm_id, data=DeviceKeyCreate(public_key=public_key), now=now)


@dataclass
class ServiceProcess:
    """``atm-service serve`` on a fixed loopback port, which can be killed and started again."""

    database_url: str
    log: Path
    environment: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    _log_file: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> None:
        if self._log_file is None:
            self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in close()
        environment = {
            **os.environ,
            "ATM_ENVIRONMENT": "test",
            "ATM_SECRET_KEY": "system-test-secret-" + "x" * 32,
            "ATM_DISPATCH_SWEEP_SECONDS": "0",
            "ATM_ARGON2_TIME_COST": "1",
            "ATM_ARGON2_MEMORY_KIB": "1024",
            "ATM_ARGON2_PARALLELISM": "1",
            # test crews log in and ask for lock codes far faster than people: limits
            # that never refuse them, still counted
            "ATM_LOGIN_ATTEMPTS_PER_USER": "1000000",
            "ATM_LOGIN_ATTEMPTS_PER_ADDRESS": "1000000",
            "ATM_CODE_REQUESTS_PER_USER": "1000000",
            "ATM_CODE_REQUESTS_PER_ADDRESS": "1000000",
            **self.environment,
        }
        self.process = subprocess.Popen(
            [
                tool("atm-service"),
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--database-url",
                self.database_url,
            ],
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=environment,
        )
        self.starts += 1
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(
                    f"the service exited with {self.process.returncode}; see {self.log}"
                )
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"the service did not start within {timeout:.0f} s; see {self.log}")

    def stop(self, how: signal.Signals = signal.SIGTERM) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(how)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def close(self) -> None:
        self.stop(signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
