"""Fleet load: 1,000 agents against two service instances on PostgreSQL, for a bounded time.

Creates a PostgreSQL database of its own (a unique name on the server of
``ATM_BENCH_DATABASE_URL``, else ``postgresql://postgres@127.0.0.1:5432``),
migrates it, seeds a fleet (``--agents`` ATMs at ten sites under one contract,
a device key enrolled for each, thirty engineers), starts two service
instances (uvicorn, one process each, on loopback ports) over it, and runs the
fleet's agents in this process against both, request by request in turn, as
behind a round-robin load balancer.

Each agent speaks the agent's protocol (``docs/ingest-api.md``), every request
signed with its own Ed25519 key as ``device_agent.signing`` signs:

- a heartbeat every ``--heartbeat-interval`` seconds (10; agents send one every
  30 s by default, so this is three times the usual rate);
- journal uploads every ``--journal-interval`` seconds (20): the one to three
  transactions the ATM wrote since, appended at the journal's offset;
- device events at random, on average one every ``--event-interval`` seconds
  (120) per ATM: cash units running low, hardware faults and recoveries, the
  safe door. They go up as records in sequence; the dispatch rules turn faults
  and low cash into tasks, assigned to an engineer in the same transaction.

Every activity of every agent starts at a random phase, so the load is even
from the first second. The agents keep their state in memory (offsets,
sequence numbers) rather than in a spool each, and talk over a small
keep-alive HTTP/1.1 client (``--connections`` per instance) rather than a
general-purpose one, so the generator costs a few percent of a core; the
agent's own uploader and spool are exercised by the fault test
(``tests/system/test_fault_restarts.py``). A request that fails is sent again
at the agent's next turn, as the agent would.

Measured after ``--warm-up`` seconds (5), for ``--seconds`` (60): the latency
of each request as the agent sees it, from before it is signed to the answer's
last byte. It includes any wait for a pooled connection and the generator's
own event-loop delay (printed as ``load_generator_lag_p99_ms``), so it is an
upper bound on the service's time.

Prints JSON lines: ``load_requests_per_s`` (requests answered in the measured
window, per second), ``load_p99_ms`` and ``load_errors`` (requests that failed
or were refused, over the whole run; target: none, and p99 < 100 ms), then
``load_p50_ms``, ``load_heartbeat_p99_ms``, ``load_journal_p99_ms``,
``load_records_p99_ms``, ``load_tasks_opened``,
``load_service_cpu_ms_per_request`` (both instances' CPU time over the run, per
request: what the figures cost), ``load_generator_lag_p99_ms`` and
``load_average_1m`` (the machine's, at the end: figures taken on a busy machine
read high). Then it checks that the service holds every journal byte
and record the ATMs wrote, and fails when it does not. The database is dropped
at the end; ``ATM_BENCH_DEBUG=1`` prints the latencies second by second.

    .venv/bin/python bench/load.py [--agents 1000] [--seconds 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from service_process import cpu_seconds, free_port, start_service, stop_service, wait_ready
from sqlalchemy.engine import make_url

from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from atm_service.models.devices import DeviceKey as DeviceKeyRow
from atm_service.models.engineers import Engineer
from atm_service.models.fleet import Atm, Cassette, EjDialect, ServiceContract, Site
from atm_service.models.users import Role, User
from atm_service.security.passwords import Passwords
from device_agent.signing import DeviceKey, new_nonce

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
REGIONS = 10
ENGINEERS = 30
ZONE = "America/New_York"
AGENT_VERSION = "0.1.0"


def say(message: str) -> None:
    print(f"[load] {message}", file=sys.stderr, flush=True)


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 2), "unit": unit}), flush=True)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


# --- the database ----------------------------------------------------------------------


class BenchDatabase:
    """A PostgreSQL database of the run's own, created on the server and dropped after."""

    def __init__(self, server_url: str) -> None:
        self.server = make_url(server_url)
        self.name = f"atm_load_{secrets.token_hex(4)}"
        self.url = self.server.set(database=self.name).render_as_string(hide_password=False)
        self._admin = create_engine(
            self.server.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
        )

    def create(self) -> None:
        try:
            with self._admin.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{self.name}"'))
        except sa.exc.OperationalError as exc:
            raise SystemExit(
                f"the load benchmark needs PostgreSQL at {self.server.host}:{self.server.port} "
                f"(ATM_BENCH_DATABASE_URL): {exc.orig}"
            ) from None
        except sa.exc.ProgrammingError as exc:
            raise SystemExit(
                f"cannot create a database on {self.server.host}:{self.server.port}: {exc.orig}"
            ) from None

    def drop(self) -> None:
        with self._admin.connect() as connection:
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self._admin.dispose()


def server_url() -> str:
    given = os.environ.get("ATM_BENCH_DATABASE_URL")
    if not given:
        return DEFAULT_SERVER
    # Any database of that server will do to create ours from.
    return make_url(given).set(database="postgres").render_as_string(hide_password=False)


# --- the fleet -------------------------------------------------------------------------


@dataclass
class Seeded:
    terminals: list[str]
    keys: dict[str, DeviceKey]


def seed(url: str, agents: int, rng: random.Random) -> Seeded:
    """ATMs at ten sites under one around-the-clock contract, a key each, thirty engineers."""
    database = Database(create_engine(url))
    upgrade(database)
    now = datetime.now(UTC)
    password_hash = Passwords(time_cost=1, memory_kib=1024, parallelism=1).hash(
        secrets.token_urlsafe(12)
    )
    terminals: list[str] = []
    keys: dict[str, DeviceKey] = {}
    with database.session() as session:
        contract = ServiceContract(
            code="LOAD",
            customer="Load Bank",
            name="Around the clock",
            response_minutes=120,
            restore_minutes=240,
            created_at=now,
            updated_at=now,
        )
        session.add(contract)
        centres = [(40.2 + 0.25 * r, -74.6 + 0.2 * r) for r in range(REGIONS)]
        sites = []
        for region, (lat, lon) in enumerate(centres):
            site = Site(
                code=f"L{region:02d}",
                name=f"Load site {region}",
                address_line=f"{region} Loopback Road",
                city="Localhost",
                country="US",
                region=f"R{region:02d}",
                latitude=lat,
                longitude=lon,
                timezone=ZONE,
                created_at=now,
                updated_at=now,
            )
            session.add(site)
            sites.append(site)
        session.flush()
        atms = []
        site_ids = [site.id for site in sites if site.id is not None]
        for n in range(agents):
            assert contract.id is not None
            atm = Atm(
                terminal_id=f"L{n:07d}",
                site_id=site_ids[n % REGIONS],
                contract_id=contract.id,
                vendor="NCR",
                model="SelfServ 84",
                ej_dialect=EjDialect.NDC,
                created_at=now,
                updated_at=now,
            )
            session.add(atm)
            atms.append(atm)
        session.flush()
        for atm in atms:
            assert atm.id is not None
            for number, denomination in enumerate((20, 20, 50, 100), start=1):
                session.add(
                    Cassette(
                        atm_id=atm.id,
                        number=number,
                        denomination=denomination,
                        currency="USD",
                        capacity=3000,
                        minimum=300,
                    )
                )
            key = DeviceKey.generate()
            session.add(
                DeviceKeyRow(
                    atm_id=atm.id,
                    key_id=key.key_id,
                    public_key=key.public_key_b64,
                    label="load benchmark",
                    created_at=now,
                )
            )
            terminals.append(atm.terminal_id)
            keys[atm.terminal_id] = key
        for n in range(ENGINEERS):
            user = User(
                username=f"eng{n:02d}",
                full_name=f"Engineer {n}",
                role=Role.ENGINEER,
                password_hash=password_hash,
                created_at=now,
                password_changed_at=now,
            )
            session.add(user)
            session.flush()
            assert user.id is not None
            lat, lon = centres[n % REGIONS]
            session.add(
                Engineer(
                    user_id=user.id,
                    skills="cash,flm,slm",
                    home_region=f"R{n % REGIONS:02d}",
                    shift_days="1234567",
                    shift_start="00:00",
                    shift_end="24:00",
                    timezone=ZONE,
                    latitude=lat + rng.uniform(-0.05, 0.05),
                    longitude=lon + rng.uniform(-0.05, 0.05),
                    location_at=now,
                    created_at=now,
                    updated_at=now,
                )
            )
        session.commit()
    database.dispose()
    return Seeded(terminals=terminals, keys=keys)


# --- the service instances -------------------------------------------------------------


@dataclass
class Instance:
    process: subprocess.Popen[bytes]
    base_url: str
    log: Path


def start_instance(url: str, directory: Path, number: int, pool_size: int) -> Instance:
    port = free_port()
    log = directory / f"service-{number}.log"
    process = start_service(url, port, log, pool_size=pool_size)
    return Instance(process=process, base_url=f"http://127.0.0.1:{port}", log=log)


def stop_instance(instance: Instance) -> None:
    stop_service(instance.process)


# --- the agents ------------------------------------------------------------------------


def local_time(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


def transaction_lines(rng: random.Random, number: int, now: datetime) -> bytes:
    """One cash withdrawal as an NDC journal writes it (as far as ingest cares: bytes)."""
    clock = now.strftime("%H:%M:%S")
    amount = rng.choice((20, 40, 60, 100, 200, 300))
    lines = [
        f"*{number:04d}*{now:%m/%d/%Y}*{clock}*",
        "     *TRANSACTION START*",
        f" CARD INSERTED ({rng.randrange(400000, 499999)}XXXXXX{rng.randrange(1000, 9999)})",
        f" {clock} PIN ENTERED",
        f" {clock} OPCODE = AB  A  ",
        f"  GENAC 1 : ARQC          AMOUNT {amount:>8}.00",
        f" {clock} NOTES PRESENTED 0,{amount // 20},0,0",
        f" {clock} NOTES TAKEN",
        f" {clock} CARD TAKEN",
        " <- TRANSACTION END",
    ]
    return ("\n".join(lines) + "\n").encode("ascii")


FAULTS = (
    ("dispenser", "fatal", "M-05", "note jam in presenter"),
    ("card_reader", "fatal", "C-02", "card jammed"),
    ("receipt_printer", "warning", "P-01", "paper low"),
    ("dispenser", "warning", "M-11", "reject rate high"),
)


def device_event(rng: random.Random, now: datetime, faulted: set[str]) -> dict[str, Any]:
    """An event an ATM reports unasked, in a plausible mix."""
    roll = rng.random()
    at = local_time(now)
    if roll < 0.35:
        return {
            "kind": "cash_unit_threshold",
            "time": at,
            "unit": rng.randint(1, 4),
            "status": "low",
        }
    if roll < 0.60:
        device, severity, code, description = rng.choice(FAULTS)
        faulted.add(device)
        return {
            "kind": "hardware_error",
            "time": at,
            "device": device,
            "severity": severity,
            "code": code,
            "description": description,
        }
    if roll < 0.75 and faulted:
        device = faulted.pop()
        return {"kind": "hardware_recovered", "time": at, "device": device}
    state = rng.choice(("open", "closed"))
    return {"kind": "safe_door", "time": at, "state": state}


@dataclass
class Sample:
    kind: str
    started: float
    seconds: float
    ok: bool


@dataclass
class Observed:
    samples: list[Sample] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    lags: list[float] = field(default_factory=list)
    measured_from: float = 0.0  # perf_counter
    generator_cpu_s: float = 0.0


@dataclass(frozen=True)
class Books:
    """What the ATMs wrote, and what the service acknowledged to their agents."""

    written_bytes: int
    acked_bytes: int
    written_records: int
    acked_records: int


class HttpError(Exception):
    """A request that got no well-formed answer (connection refused, reset, timed out)."""


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


class Pool:
    """Keep-alive HTTP/1.1 connections to one instance, at most ``size`` at once.

    Just what the agents' requests need (a body with Content-Length, an answer with
    Content-Length or chunked), so the generator spends its CPU on the agents, not on
    a general-purpose client.
    """

    def __init__(self, host: str, port: int, size: int, timeout: float) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.slots = asyncio.Semaphore(size)

    async def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        async with self.slots:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
            try:
                answer, keep = await asyncio.wait_for(
                    self._exchange(reader, writer, method, target, headers, body), self.timeout
                )
            except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
                writer.close()
                raise HttpError(f"{type(exc).__name__}: {exc}") from exc
            if keep:
                self.idle.append((reader, writer))
            else:
                writer.close()
            return answer

    async def _exchange(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        method: str,
        target: str,
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[Answer, bool]:
        head = [f"{method} {target} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        head.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        status_line = await reader.readline()
        if not status_line:
            raise asyncio.IncompleteReadError(b"", None)
        status = int(status_line.split(b" ", 2)[1])
        length: int | None = None
        chunked, keep = False, True
        while (line := await reader.readline()) not in (b"\r\n", b"\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value:
                chunked = True
            elif name == "connection" and value == "close":
                keep = False
        if chunked:
            parts = []
            while size := int((await reader.readline()).split(b";")[0], 16):
                parts.append(await reader.readexactly(size))
                await reader.readline()
            await reader.readline()
            content = b"".join(parts)
        elif length is not None:
            content = await reader.readexactly(length)
        else:
            content, keep = await reader.read(), False
        return Answer(status, content), keep

    async def close(self) -> None:
        for _reader, writer in self.idle:
            writer.close()
        self.idle.clear()


class Router:
    """Hands out the instances in turn, as a round-robin load balancer does."""

    def __init__(self, pools: list[Pool]) -> None:
        self.pools = pools
        self.turn = 0

    def next(self) -> Pool:
        self.turn = (self.turn + 1) % len(self.pools)
        return self.pools[self.turn]


class Agent:
    """One ATM's agent: its key, its journal and record stream, kept in memory."""

    def __init__(self, terminal_id: str, key: DeviceKey, rng: random.Random) -> None:
        self.terminal_id = terminal_id
        self.key = key
        self.rng = rng
        self.stream = secrets.token_hex(16)
        self.started_at = datetime.now(UTC)
        self.journal_day = self.started_at.strftime("%Y%m%d")
        self.journal = bytearray()  # what the ATM wrote today
        self.journal_acked = 0
        self.records: list[dict[str, Any]] = []  # seq n is records[n - 1]
        self.records_acked = 0
        self.transactions = 0
        self.faulted: set[str] = set()

    def add_record(self, kind: str, data: dict[str, Any]) -> None:
        self.records.append(
            {
                "seq": len(self.records) + 1,
                "kind": kind,
                "stored_at": datetime.now(UTC).isoformat(),
                "data": data,
            }
        )

    def write_transactions(self, count: int) -> None:
        now = datetime.now(UTC)
        for _ in range(count):
            self.transactions += 1
            self.journal += transaction_lines(self.rng, self.transactions, now)

    async def call(
        self,
        router: Router,
        kind: str,
        method: str,
        target: str,
        observed: Observed,
        *,
        body: bytes,
        content_type: str = "application/json",
    ) -> Answer | None:
        """One signed request (``device_agent.signing``, as the agent signs); None when it
        failed, which is counted."""
        started = time.perf_counter()
        headers = self.key.signature_headers(
            method=method,
            target=target,
            body=body,
            timestamp=int(time.time()),
            nonce=new_nonce(),
        )
        headers["Content-Type"] = content_type
        try:
            answer = await router.next().request(method, target, headers, body)
        except HttpError as exc:
            observed.samples.append(Sample(kind, started, time.perf_counter() - started, False))
            observed.errors[f"{kind}: {exc}"[:160]] += 1
            return None
        elapsed = time.perf_counter() - started
        observed.samples.append(Sample(kind, started, elapsed, answer.ok))
        if not answer.ok:
            detail = answer.body[:120].decode("utf-8", "replace")
            observed.errors[f"{kind}: {answer.status} {detail}"] += 1
            return None
        return answer

    async def heartbeat(self, router: Router, observed: Observed) -> None:
        now = datetime.now(UTC).isoformat()
        payload = {
            "agent_version": AGENT_VERSION,
            "stream": self.stream,
            "started_at": self.started_at.isoformat(),
            "sent_at": now,
            "link": "up",
            "backlog_bytes": len(self.journal) - self.journal_acked,
            "backlog_records": len(self.records) - self.records_acked,
            "oldest_pending_at": None,
            "last_stored_at": now,
            "last_error": None,
        }
        target = f"/api/v1/devices/{self.terminal_id}/heartbeat"
        await self.call(router, "heartbeat", "POST", target, observed, body=_json(payload))

    async def upload_journal(self, router: Router, observed: Observed) -> None:
        if self.journal_acked >= len(self.journal):
            return
        target = (
            f"/api/v1/devices/{self.terminal_id}/journals/{self.journal_day}"
            f"?offset={self.journal_acked}"
        )
        answer = await self.call(
            router,
            "journal",
            "PUT",
            target,
            observed,
            body=bytes(self.journal[self.journal_acked :]),
            content_type="application/octet-stream",
        )
        if answer is not None:
            self.journal_acked = min(int(answer.json()["size"]), len(self.journal))

    async def upload_records(self, router: Router, observed: Observed) -> None:
        batch = self.records[self.records_acked : self.records_acked + 100]
        if not batch:
            return
        target = f"/api/v1/devices/{self.terminal_id}/records"
        body = _json({"stream": self.stream, "records": batch})
        answer = await self.call(router, "records", "POST", target, observed, body=body)
        if answer is not None:
            self.records_acked = int(answer.json()["acked_seq"])


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


@dataclass(frozen=True)
class Plan:
    warm_up: float
    seconds: float
    heartbeat_interval: float
    journal_interval: float
    event_interval: float


async def run_agent(
    agent: Agent, router: Router, observed: Observed, plan: Plan, start: float
) -> None:
    """The agent's routine from ``start``, each activity at a random phase, until the end."""
    rng = agent.rng
    end = start + plan.warm_up + plan.seconds
    next_heartbeat = start + rng.uniform(0, plan.heartbeat_interval)
    next_journal = start + rng.uniform(0, plan.journal_interval)
    next_event = start + rng.expovariate(1 / plan.event_interval)
    while True:
        due = min(next_heartbeat, next_journal, next_event)
        if due >= end:
            return
        await asyncio.sleep(max(0.0, due - time.monotonic()))
        if due == next_heartbeat:
            await agent.heartbeat(router, observed)
            next_heartbeat += plan.heartbeat_interval * rng.uniform(0.9, 1.1)
        elif due == next_journal:
            agent.write_transactions(rng.randint(1, 3))
            await agent.upload_journal(router, observed)
            next_journal += plan.journal_interval
        else:
            event = device_event(rng, datetime.now(UTC), agent.faulted)
            agent.add_record("event", event)
            await agent.upload_records(router, observed)
            next_event += rng.expovariate(1 / plan.event_interval)


async def measure_lag(stop: asyncio.Event, lags: list[float]) -> None:
    """How late the generator's event loop wakes: its own share of the latencies."""
    step = 0.02
    while not stop.is_set():
        planned = time.perf_counter() + step
        await asyncio.sleep(step)
        lags.append(max(0.0, time.perf_counter() - planned))


async def generate(
    bases: list[str], seeded: Seeded, plan: Plan, connections: int, rng: random.Random
) -> tuple[Observed, Books]:
    """Run the fleet; what was observed, and the books to check the service against."""
    pools = []
    for base in bases:
        url = httpx.URL(base)
        assert url.port is not None
        pools.append(Pool(url.host, url.port, connections, timeout=10.0))
    router = Router(pools)
    observed = Observed()
    agents = [
        Agent(terminal, seeded.keys[terminal], random.Random(rng.random()))
        for terminal in seeded.terminals
    ]
    stop = asyncio.Event()
    lag_task = asyncio.create_task(measure_lag(stop, observed.lags))
    cpu_before = time.process_time()
    start = time.monotonic()
    observed.measured_from = time.perf_counter() + plan.warm_up
    try:
        await asyncio.gather(*(run_agent(a, router, observed, plan, start) for a in agents))
        # What failed is sent again, as an agent would, before the books are checked.
        for agent in agents:
            await agent.upload_journal(router, observed)
            await agent.upload_records(router, observed)
    finally:
        stop.set()
        await lag_task
        for pool in pools:
            await pool.close()
    observed.generator_cpu_s = time.process_time() - cpu_before
    books = Books(
        written_bytes=sum(len(agent.journal) for agent in agents),
        acked_bytes=sum(agent.journal_acked for agent in agents),
        written_records=sum(len(agent.records) for agent in agents),
        acked_records=sum(agent.records_acked for agent in agents),
    )
    return observed, books


def check_books(url: str, books: Books) -> tuple[int, int]:
    """What the service holds must be what the agents wrote and were acknowledged; the
    number of tasks the rules opened."""
    database = Database(create_engine(url))
    try:
        with database.connect() as connection:
            held_bytes = connection.execute(
                sa.text("SELECT coalesce(sum(size), 0) FROM journal_file")
            ).scalar_one()
            held_records = connection.execute(
                sa.text("SELECT coalesce(sum(last_seq), 0) FROM device_record_stream")
            ).scalar_one()
            tasks = connection.execute(sa.text("SELECT count(*) FROM task")).scalar_one()
    finally:
        database.dispose()
    problems = []
    if not held_bytes == books.written_bytes == books.acked_bytes:
        problems.append(
            f"the service holds {held_bytes} journal bytes; the ATMs wrote "
            f"{books.written_bytes}, {books.acked_bytes} acknowledged"
        )
    if not held_records == books.written_records == books.acked_records:
        problems.append(
            f"the service holds {held_records} records; the agents made "
            f"{books.written_records}, {books.acked_records} acknowledged"
        )
    if problems:
        raise SystemExit("; ".join(problems))
    return int(held_bytes), int(tasks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration")
    parser.add_argument("--warm-up", type=float, default=5.0)
    parser.add_argument("--heartbeat-interval", type=float, default=10.0)
    parser.add_argument("--journal-interval", type=float, default=20.0)
    parser.add_argument("--event-interval", type=float, default=120.0)
    parser.add_argument(
        "--connections", type=int, default=64, help="the generator's connections per instance"
    )
    parser.add_argument(
        "--pool-size",
        type=int,
        default=6,
        help="ATM_DATABASE_POOL_SIZE of each instance",
    )
    parser.add_argument("--seed", type=int, default=20261116)
    args = parser.parse_args()
    if not 1 <= args.agents <= 5000:
        parser.error("--agents must be 1-5000")
    if not 1 <= args.seconds <= 600 or not 1 <= args.warm_up <= 60:
        parser.error("--seconds must be 1-600 and --warm-up 1-60")
    if min(args.heartbeat_interval, args.journal_interval, args.event_interval) < 0.5:
        parser.error("the intervals must be at least 0.5 s")
    plan = Plan(
        warm_up=args.warm_up,
        seconds=args.seconds,
        heartbeat_interval=args.heartbeat_interval,
        journal_interval=args.journal_interval,
        event_interval=args.event_interval,
    )
    rng = random.Random(args.seed)
    bench = BenchDatabase(server_url())
    bench.create()
    instances: list[Instance] = []
    try:
        with tempfile.TemporaryDirectory(prefix="atm-load-") as name:
            directory = Path(name)
            say(f"seeding {args.agents} ATMs with a key each in database {bench.name}")
            seeded = seed(bench.url, args.agents, rng)
            instances = [start_instance(bench.url, directory, n, args.pool_size) for n in (1, 2)]
            loop = _new_loop()
            try:
                for instance in instances:
                    loop.run_until_complete(
                        wait_ready(instance.base_url, instance.process, instance.log)
                    )
                bases = [instance.base_url for instance in instances]
                say(
                    f"two instances ready; {args.agents} agents for {args.warm_up:g} s warm-up "
                    f"+ {args.seconds:g} s"
                )
                service_cpu = [cpu_seconds(i.process.pid) for i in instances]
                wall = time.perf_counter()
                observed, books = loop.run_until_complete(
                    generate(bases, seeded, plan, args.connections, rng)
                )
                wall = time.perf_counter() - wall
                service_cpu = [
                    cpu_seconds(i.process.pid) - before
                    for i, before in zip(instances, service_cpu, strict=True)
                ]
            finally:
                loop.close()
            load_1m = os.getloadavg()[0]
            for instance in instances:
                stop_instance(instance)
            held_bytes, tasks = check_books(bench.url, books)
            for instance in instances:
                tail = instance.log.read_text(errors="replace").strip()
                if tail:
                    say(f"{instance.base_url} logged:\n{tail[-2000:]}")
    finally:
        for instance in instances:
            stop_instance(instance)
        bench.drop()

    window_end = observed.measured_from + plan.seconds
    measured = [s for s in observed.samples if observed.measured_from <= s.started < window_end]
    answered = [s for s in measured if s.ok]
    errors = sum(observed.errors.values())
    if not answered:
        raise SystemExit("no request was answered in the measured window")
    latencies = [s.seconds * 1000 for s in answered]
    by_kind: dict[str, list[float]] = defaultdict(list)
    for s in answered:
        by_kind[s.kind].append(s.seconds * 1000)
    say(
        f"{len(observed.samples)} requests in {wall:.1f} s ({len(answered)} answered in the "
        f"measured window: {dict(Counter(s.kind for s in answered))}); CPU: service "
        f"{' + '.join(f'{c / wall:.0%}' for c in service_cpu)} of a core, generator "
        f"{observed.generator_cpu_s / wall:.0%}; {held_bytes / 1e6:.1f} MB of journal held; "
        f"load average {load_1m:.2f}"
    )
    for reason, count in observed.errors.most_common(5):
        say(f"{count} x {reason}")
    if os.environ.get("ATM_BENCH_DEBUG"):
        seconds: dict[int, list[float]] = defaultdict(list)
        for s in observed.samples:
            seconds[int(s.started - observed.measured_from)].append(s.seconds * 1000)
        for second, values in sorted(seconds.items()):
            say(
                f"second {second:+d}: {len(values)} requests, p50 {statistics.median(values):.0f}"
                f" ms, max {max(values):.0f} ms"
            )
    emit("load_requests_per_s", len(answered) / plan.seconds, "requests/s")
    emit("load_p99_ms", percentile(latencies, 0.99), "ms")
    emit("load_errors", errors, "requests")
    emit("load_p50_ms", statistics.median(latencies), "ms")
    for kind in ("heartbeat", "journal", "records"):
        if by_kind[kind]:
            emit(f"load_{kind}_p99_ms", percentile(by_kind[kind], 0.99), "ms")
    emit("load_tasks_opened", tasks, "tasks")
    emit("load_service_cpu_ms_per_request", sum(service_cpu) * 1000 / len(observed.samples), "ms")
    lag = percentile(observed.lags, 0.99) * 1000 if observed.lags else 0.0
    emit("load_generator_lag_p99_ms", lag, "ms")
    emit("load_average_1m", load_1m, "")


def _new_loop() -> asyncio.AbstractEventLoop:
    """uvloop when installed (as with the service), so the agents' side costs little CPU."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


if __name__ == "__main__":
    main()
