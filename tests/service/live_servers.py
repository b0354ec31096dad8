"""Real service instances for the multi-instance tests: committed databases and uvicorn threads.

The usual ``database`` fixture rolls every test back inside one connection,
which cannot show two instances racing. These helpers give each test a fresh
database whose transactions really commit (a SQLite file, or a PostgreSQL
schema of its own), and run several ``create_app()`` instances over it on
loopback ports, each with its own engine and connection pool, like separate
processes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from atm_service.app import create_app
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from tests.conftest import drop_postgres_schema, new_postgres_schema, postgres_url
from tests.support import PASSWORD, FakeClock, make_settings


@dataclass
class SharedDatabase:
    """One migrated database, and a way to open more engines onto it."""

    backend: str
    new_engine: Callable[[], Engine]
    engines: list[Engine]

    def database(self) -> Database:
        engine = self.new_engine()
        self.engines.append(engine)
        return Database(engine)


@contextmanager
def shared_database(backend: str, tmp_path: Path) -> Iterator[SharedDatabase]:
    schema: str | None = None
    url: str | None = None
    if backend == "sqlite":
        path = tmp_path / "shared.db"

        def new_engine() -> Engine:
            return create_engine(f"sqlite:///{path}")

    else:
        url = postgres_url()
        if url is None:
            pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
        first, schema = new_postgres_schema(url)
        first.dispose()
        options = {"options": f"-c search_path={schema}"}

        def new_engine() -> Engine:
            assert url is not None
            return create_engine(url, pool_size=20, connect_args=options)

    shared = SharedDatabase(backend=backend, new_engine=new_engine, engines=[])
    upgrade(shared.database())
    try:
        yield shared
    finally:
        for engine in shared.engines:
            engine.dispose()
        if url is not None and schema is not None:
            drop_postgres_schema(url, schema)


@contextmanager
def running(app: FastAPI) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", timeout_graceful_shutdown=2
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the service instance did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    base_url = f"http://127.0.0.1:{port}"
    # FastAPI builds its routes on the first request, inside warnings.catch_warnings(),
    # which is not thread-safe: two instances in one process building at once can
    # turn a suppressed warning into an error. A request that matches nothing builds
    # every route now, before any test traffic (separate processes never race).
    assert httpx.get(f"{base_url}/warm-up-every-route").status_code == 404
    try:
        yield base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def instance(shared: SharedDatabase, clock: FakeClock | None = None, **settings: object) -> FastAPI:
    """A service instance with its own engine over the shared database."""
    configured = make_settings(**settings)
    if clock is None:
        return create_app(configured, database=shared.database())
    return create_app(configured, database=shared.database(), clock=clock)


@dataclass(frozen=True)
class Login:
    cookies: dict[str, str]
    csrf_token: str

    def client(self, base_url: str, *, timeout: httpx.Timeout | float = 30) -> httpx.Client:
        return httpx.Client(
            base_url=base_url,
            cookies=self.cookies,
            headers={"X-CSRF-Token": self.csrf_token},
            timeout=timeout,
        )


def log_in(base_url: str, username: str) -> Login:
    response = httpx.post(
        f"{base_url}/api/v1/session", json={"username": username, "password": PASSWORD}
    )
    response.raise_for_status()
    return Login(cookies=dict(response.cookies), csrf_token=response.json()["csrf_token"])


@dataclass
class SseEvent:
    event: str
    data: dict[str, object]
    received: float  # time.monotonic()
    id: str | None = None


class EventReader:
    """Reads a server-sent-event stream on a thread of its own until the server ends it."""

    def __init__(
        self, login: Login, base_url: str, path: str, *, last_event_id: str | None = None
    ) -> None:
        self.events: list[SseEvent] = []
        self._headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            self._headers["Last-Event-ID"] = last_event_id
        self.status: int | None = None
        self._client = login.client(base_url, timeout=httpx.Timeout(30, read=60))
        self._path = path
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._connected.wait(10):
            raise RuntimeError("the event stream did not start")

    def _read(self) -> None:
        try:
            with self._client.stream("GET", self._path, headers=self._headers) as response:
                self.status = response.status_code
                event, data, event_id = "message", "", None
                for line in response.iter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("id: "):
                        event_id = line.removeprefix("id: ")
                    elif line.startswith("data: "):
                        data = line.removeprefix("data: ")
                    elif line == "" and data:
                        self.events.append(
                            SseEvent(event, json.loads(data), time.monotonic(), event_id)
                        )
                        if event == "hello":
                            self._connected.set()
                        event, data, event_id = "message", "", None
        finally:
            self._connected.set()
            self._client.close()

    def wait_for(self, predicate: Callable[[SseEvent], bool], timeout: float = 10) -> SseEvent:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in list(self.events):
                if predicate(event):
                    return event
            time.sleep(0.01)
        raise AssertionError(f"no matching event within {timeout} s; got {self.events}")

    def join(self, timeout: float = 30) -> None:
        self._thread.join(timeout)
