"""Device ingest through the real HTTP API: journal lines a second, and heartbeat latency.

Starts the service over a fresh database (SQLite file, or a new PostgreSQL
schema): ``--instances`` uvicorn processes, each on a loopback port of its own
(two on PostgreSQL, one for each core, as docs/operations.md deploys them behind
a proxy; the agents are spread over them as a proxy would). It migrates the
database, registers ``--agents`` ATMs and enrols one Ed25519 key each through
the admin API, then runs that many agents in this process, each with its own
spool and HTTP connection, using the agent's real ``Uploader`` (signed requests,
batches, acknowledgements):

1. catch-up: every agent's spool holds ``--days`` business days of journal (the
   sample EJ files of ``shared/formats/sample/ej``, each replicated
   ``--replicas`` times) and a few records; all agents upload at once, as after
   a service outage. ``ingest_lines_per_s`` is the journal lines stored by the
   service divided by the wall time until every agent is done; the figure is
   checked against the service's own line count and sizes.
2. steady state: the agents run live for ``--seconds``: each runs the agent's
   own heartbeat loop, a heartbeat every ``--heartbeat-interval`` seconds ±10 %
   (2 s by default: fifteen times the agent's default rate) from a random phase,
   and stores new journal lines (from a thread, as the link does) and uploads
   them every ``--journal-interval`` seconds (10 s).
   ``heartbeat_p99_ms`` is the 99th percentile of the heartbeats' HTTP round
   trip as the agents see it (signed request sent to answer received).
   ``agents_loop_lag_max_ms`` is the worst lateness of this process's event
   loop meanwhile: 200 agents share it here, where each ATM has its own, so a
   high figure there means the round trips above were lengthened on this side.
   ``heartbeat_service_p99_ms`` is the 99th percentile of the service's own
   time (its ``Server-Timing`` header: request received to answer's headers).

Everything stops at the end, or after ``--timeout`` seconds, and the database is
dropped. Traffic goes to 127.0.0.1 only. Figures are JSON lines on stdout;
progress goes to stderr.

    .venv/bin/python bench/ingest.py --db sqlite
    .venv/bin/python bench/ingest.py --db postgresql   # ATM_BENCH_DATABASE_URL or the test server
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import sqlalchemy as sa
from service_process import cpu_seconds, free_port, start_service, stop_service, wait_ready

from atm_service.config import Settings
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from atm_service.models.fleet import AtmCreate, SiteCreate
from atm_service.models.users import Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services.fleet import create_atm, create_site
from atm_service.services.ingest import streams_behind_rules
from atm_service.services.users import create_user
from device_agent.signing import DeviceKey, RequestSigner
from device_agent.spool import Spool
from device_agent.uploader import Uploader, UploadPolicy

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_EJ = ROOT / "shared" / "formats" / "sample" / "ej"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
ADMIN_PASSWORD = "bench admin password"  # a throw-away database, dropped at the end
SAMPLE_TERMINALS = [f"T100000{n}" for n in range(1, 7)]
SAMPLE_DAYS = ["20261116", "20261117"]


def log(message: str) -> None:
    print(f"[ingest] {message}", file=sys.stderr, flush=True)


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 2), "unit": unit}), flush=True)


def service_cpu(processes: list[subprocess.Popen[bytes]]) -> float:
    """CPU time of every service instance so far."""
    return sum(cpu_seconds(process.pid) for process in processes)


class Backend:
    """A fresh database for the run, and its removal afterwards."""

    def __init__(self, kind: str, directory: Path) -> None:
        self.kind = kind
        self.schema: str | None = None
        if kind == "sqlite":
            self.url = f"sqlite:///{directory / 'bench.db'}"
            self.admin_url = None
        else:
            base = os.environ.get(
                "ATM_BENCH_DATABASE_URL", os.environ.get("ATM_TEST_DATABASE_URL", DEFAULT_POSTGRES)
            )
            self.admin_url = base
            self.schema = f"bench_ingest_{secrets.token_hex(4)}"
            engine = create_engine(base)
            with engine.begin() as connection:
                connection.execute(sa.text(f'CREATE SCHEMA "{self.schema}"'))
            engine.dispose()
            separator = "&" if "?" in base else "?"
            self.url = f"{base}{separator}options={quote(f'-csearch_path={self.schema}')}"

    def drop(self) -> None:
        if self.schema is not None and self.admin_url is not None:
            engine = create_engine(self.admin_url)
            with engine.begin() as connection:
                connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
            engine.dispose()


def journal_content(index: int, day: str, replicas: int) -> bytes:
    terminal = SAMPLE_TERMINALS[index % len(SAMPLE_TERMINALS)]
    return (SAMPLE_EJ / f"{terminal}_{day}.txt").read_bytes() * replicas


def seed(database: Database, settings: Settings, agents: int) -> list[tuple[str, int]]:
    """A site, the ATMs and an administrator; returns (terminal id, ATM id) pairs."""
    now = datetime.now(UTC)
    atms = []
    with database.session() as session:
        site = create_site(
            session,
            data=SiteCreate(
                code="BENCH",
                name="Benchmark site",
                address_line="1 Loopback Road",
                city="Localhost",
                country="US",
                region="Bench",
                latitude=0.0,
                longitude=0.0,
            ),
            now=now,
        )
        assert site.id is not None
        for n in range(agents):
            terminal_id = f"B{n:07d}"
            atm = create_atm(
                session,
                data=AtmCreate.model_validate(
                    {
                        "terminal_id": terminal_id,
                        "site_id": site.id,
                        "vendor": "NCR",
                        "model": "SelfServ 84",
                        "ej_dialect": "ndc",
                        "cassettes": [
                            {"number": c, "denomination": d, "currency": "USD"}
                            for c, d in enumerate((20, 50, 100, 100), start=1)
                        ],
                    }
                ),
                now=now,
            )
            atms.append((terminal_id, atm.id))
        create_user(
            session,
            data=UserCreate(
                username="bench-admin",
                full_name="Benchmark administrator",
                role=Role.ADMIN,
                password=ADMIN_PASSWORD,
            ),
            passwords=Passwords.from_settings(settings),
            now=now,
        )
    return atms


async def enrol(base_url: str, atms: list[tuple[str, int]]) -> dict[str, DeviceKey]:
    keys = {}
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as admin:
        login = await admin.post(
            "/api/v1/session", json={"username": "bench-admin", "password": ADMIN_PASSWORD}
        )
        login.raise_for_status()
        csrf = login.json()["csrf_token"]
        for terminal_id, atm_id in atms:
            key = DeviceKey.generate()
            response = await admin.post(
                f"/api/v1/atms/{atm_id}/device-keys",
                json={"public_key": key.public_key_b64, "label": "bench agent"},
                headers={"X-CSRF-Token": csrf},
            )
            response.raise_for_status()
            keys[terminal_id] = key
    return keys


class BenchAgent:
    def __init__(
        self,
        index: int,
        terminal_id: str,
        key: DeviceKey,
        spool: Spool,
        base_url: str,
        heartbeat_interval: float,
    ) -> None:
        self.index = index
        self.terminal_id = terminal_id
        self.spool = spool
        self.heartbeat_round_trips: list[tuple[float, float]] = []  # (sent at, round trip)
        self.heartbeat_service_ms: list[float] = []  # the service's Server-Timing
        self.client = httpx.AsyncClient(
            base_url=base_url,
            auth=RequestSigner(key),
            timeout=60,
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2),
            event_hooks={"request": [self._sent], "response": [self._answered]},
        )
        self.uploader: Uploader = Uploader(
            spool=spool,
            client=self.client,
            policy=UploadPolicy(max_batch_bytes=64 * 1024, heartbeat_interval_s=heartbeat_interval),
            terminal_id=terminal_id,
            rng=random.Random(index),
        )

    async def _sent(self, request: httpx.Request) -> None:
        request.extensions["bench_sent"] = time.perf_counter()

    async def _answered(self, response: httpx.Response) -> None:
        """The round trip of each heartbeat: from sending (signed) to the answer's headers."""
        if response.request.url.path.endswith("/heartbeat") and response.status_code == 200:
            sent = response.request.extensions["bench_sent"]
            self.heartbeat_round_trips.append((sent, time.perf_counter() - sent))
            timing = response.headers.get("server-timing", "")
            if timing.startswith("app;dur="):
                self.heartbeat_service_ms.append(float(timing.removeprefix("app;dur=")))


def add_records(spool: Spool) -> None:
    """What a link delivers besides the journal: a status, counters, an event."""
    spool.store_status(
        {
            "time": "2026-11-16T08:00:00",
            "in_service": True,
            "safe_door": "closed",
            "devices": {"dispenser": "ok", "card_reader": "ok"},
        }
    )
    spool.store_cash_units(
        [
            {"usNumber": n, "usType": 3, "ulValues": 20, "ulCount": 1000, "usStatus": 0}
            for n in range(1, 5)
        ],
        "start_of_day",
    )
    spool.store_event({"kind": "safe_door", "time": "2026-11-16T08:00:05", "state": "closed"})


async def steady_state(
    agents: list[BenchAgent],
    seconds: float,
    interval: float,
    journal_interval: float,
    live_day: str,
) -> tuple[list[float], int]:
    failures = 0
    reasons: Counter[str] = Counter()
    end = time.monotonic() + seconds
    line = b"08:00:00 CARD INSERTED\n"

    stop = asyncio.Event()

    async def heartbeats(agent: BenchAgent) -> None:
        """The agent's own heartbeat loop (every interval ±10 %), from a random phase."""
        await asyncio.sleep(agent.uploader.rng.uniform(0, interval))
        await agent.uploader.heartbeat_loop(stop)

    async def stop_at_end() -> None:
        await asyncio.sleep(max(0.0, end - time.monotonic()))
        stop.set()

    async def live_journal(agent: BenchAgent) -> None:
        """New lines as the link would store them (from its own thread), then an upload."""
        nonlocal failures
        await asyncio.sleep(agent.uploader.rng.uniform(0, journal_interval))
        while time.monotonic() < end:
            offset = await asyncio.to_thread(agent.spool.journal_offset, live_day)
            await asyncio.to_thread(agent.spool.store_journal, live_day, offset, line * 3)
            try:
                await agent.uploader.upload_pending()
            except Exception as exc:
                failures += 1
                reasons[f"upload: {exc}"[:160]] += 1
            await asyncio.sleep(journal_interval)

    async def loop_lag() -> None:
        """How late this process's event loop wakes: a late wake-up here lengthens every
        round trip measured meanwhile, and is the agents' side, not the service's."""
        while time.monotonic() < end:
            asked = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append((asked - started, time.perf_counter() - asked - 0.005))

    lags: list[tuple[float, float]] = []
    started = time.perf_counter()
    for agent in agents:
        agent.heartbeat_round_trips.clear()
        agent.heartbeat_service_ms.clear()
    heartbeat_failures = sum(agent.uploader.state.heartbeat_failures for agent in agents)
    await asyncio.gather(
        loop_lag(),
        stop_at_end(),
        *(heartbeats(agent) for agent in agents),
        *(live_journal(agent) for agent in agents),
    )
    heartbeat_failures = (
        sum(agent.uploader.state.heartbeat_failures for agent in agents) - heartbeat_failures
    )
    if heartbeat_failures:
        reasons["heartbeat failed"] += heartbeat_failures
        failures += heartbeat_failures
    timeline = [item for agent in agents for item in agent.heartbeat_round_trips]
    latencies = [round_trip for _, round_trip in timeline]
    for reason, count in reasons.most_common(5):
        log(f"{count} x {reason}")
    slow = Counter(int(at - started) for at, round_trip in timeline if round_trip > 0.05)
    if slow:
        log(
            "heartbeats over 50 ms by second of the steady state: "
            + ", ".join(f"{second}s: {count}" for second, count in sorted(slow.items()))
        )
    service_ms = [value for agent in agents for value in agent.heartbeat_service_ms]
    if service_ms:
        emit("heartbeat_service_p99_ms", percentile(service_ms, 0.99), "ms")
    worst = max(lags, key=lambda item: item[1], default=(0.0, 0.0))
    log(f"agents' event loop: worst lag {worst[1] * 1000:.1f} ms at {worst[0]:.1f} s")
    emit("agents_loop_lag_max_ms", worst[1] * 1000, "ms")
    return latencies, failures


async def rules_caught_up(database: Database, timeout: float) -> float:
    """Wait until the dispatch rules have seen every stored record (the service runs them
    after answering each upload): the steady state starts once the catch-up is digested."""
    started = time.perf_counter()
    while True:
        with database.session() as session:
            behind = streams_behind_rules(session)
        waited = time.perf_counter() - started
        if not behind:
            return waited
        if waited > timeout:
            raise RuntimeError(f"the dispatch rules are still behind on {behind} streams")
        await asyncio.sleep(0.1)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def run(arguments: argparse.Namespace, directory: Path, backend: Backend) -> None:
    settings = Settings.model_validate(
        {
            "environment": "test",
            "argon2_time_cost": 1,
            "argon2_memory_kib": 1024,
            "argon2_parallelism": 1,
        }
    )
    database = Database(create_engine(backend.url))
    upgrade(database)
    atms = seed(database, settings, arguments.agents)
    log(f"{backend.kind}: migrated and seeded {len(atms)} ATMs")
    instances = arguments.instances or (2 if backend.kind == "postgresql" else 1)
    ports = [free_port() for _ in range(instances)]
    base_urls = [f"http://127.0.0.1:{port}" for port in ports]
    service_logs = [directory / f"service-{port}.log" for port in ports]
    processes = [
        start_service(backend.url, port, service_log, pool_size=6)
        for port, service_log in zip(ports, service_logs, strict=True)
    ]
    agents: list[BenchAgent] = []
    try:
        for base_url, process, service_log in zip(base_urls, processes, service_logs, strict=True):
            await wait_ready(base_url, process, service_log)
        keys = await enrol(base_urls[0], atms)
        log(f"{instances} service instance(s) on {', '.join(base_urls)}; {len(keys)} keys enrolled")
        days = (
            SAMPLE_DAYS[: arguments.days]
            if arguments.days <= 2
            else [f"202611{16 + d:02d}" for d in range(arguments.days)]
        )
        expected_lines = 0
        for index, (terminal_id, _atm_id) in enumerate(atms):
            spool = Spool(directory / f"spool-{terminal_id}.db", synchronous="NORMAL")
            sample_days = [SAMPLE_DAYS[d % 2] for d in range(len(days))]
            lines = 0
            for day, sample_day in zip(days, sample_days, strict=True):
                data = journal_content(index, sample_day, arguments.replicas)
                for start in range(0, len(data), 16 * 1024):
                    spool.store_journal(day, start, data[start : start + 16 * 1024])
                lines += data.count(b"\n")
            add_records(spool)
            expected_lines += lines
            agents.append(
                BenchAgent(
                    index,
                    terminal_id,
                    keys[terminal_id],
                    spool,
                    base_urls[index % instances],  # as a proxy spreads them
                    arguments.heartbeat_interval,
                )
            )
        backlog = sum(agent.spool.backlog().journal_bytes for agent in agents)
        log(f"{len(agents)} agents hold {backlog / 1e6:.1f} MB, {expected_lines} journal lines")

        server_cpu, client_cpu = service_cpu(processes), time.process_time()
        started = time.perf_counter()
        await asyncio.wait_for(
            asyncio.gather(*(agent.uploader.upload_pending() for agent in agents)),
            arguments.timeout,
        )
        elapsed = time.perf_counter() - started
        log(
            f"catch-up CPU: service {(service_cpu(processes) - server_cpu) / elapsed:.0%} "
            f"of a core, agents {(time.process_time() - client_cpu) / elapsed:.0%}"
        )
        with database.session() as session:
            held_lines, held_bytes = (
                session.connection()
                .execute(
                    sa.text(
                        "SELECT coalesce(sum(line_count), 0), coalesce(sum(size), 0) "
                        "FROM journal_file"
                    )
                )
                .one()
            )
        if held_lines != expected_lines or held_bytes != backlog:
            raise RuntimeError(
                f"the service holds {held_lines} lines / {held_bytes} bytes, "
                f"expected {expected_lines} / {backlog}"
            )
        log(f"catch-up: {expected_lines} lines, {backlog / 1e6:.1f} MB in {elapsed:.2f} s")
        emit("ingest_lines_per_s", expected_lines / elapsed, "lines/s")
        emit("ingest_mb_per_s", backlog / 1e6 / elapsed, "MB/s")
        settled = await rules_caught_up(database, arguments.timeout)
        log(f"dispatch rules caught up with every record {settled:.2f} s after the uploads")
        # This process's own objects (200 agents' clients and spools) out of the
        # collector's way, so that its pauses do not count as the service's latency.
        gc.collect()
        gc.freeze()

        server_cpu, client_cpu = service_cpu(processes), time.process_time()
        steady_started = time.perf_counter()
        latencies, failures = await asyncio.wait_for(
            steady_state(
                agents,
                arguments.seconds,
                arguments.heartbeat_interval,
                arguments.journal_interval,
                "20261201",
            ),
            arguments.timeout,
        )
        wall = time.perf_counter() - steady_started
        log(
            f"steady state CPU: service {(service_cpu(processes) - server_cpu) / wall:.0%} "
            f"of a core, agents {(time.process_time() - client_cpu) / wall:.0%}"
        )
        if not latencies:
            raise RuntimeError("no heartbeat succeeded")
        log(
            f"steady state: {len(latencies)} heartbeats in {arguments.seconds:.0f} s from "
            f"{len(agents)} agents, {failures} failures, "
            f"p50 {statistics.median(latencies) * 1000:.1f} ms"
        )
        emit("heartbeat_p99_ms", percentile(latencies, 0.99) * 1000, "ms")
        emit("heartbeat_p50_ms", statistics.median(latencies) * 1000, "ms")
        if failures:
            raise RuntimeError(f"{failures} requests failed in the steady state")
    finally:
        for agent in agents:
            await agent.client.aclose()
            agent.spool.close()
        for process in processes:
            stop_service(process)
        database.dispose()


def _loop_factory() -> Any:
    """uvloop when installed (as with the service), so the agents' side costs little CPU."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--days", type=int, default=2, help="journal days per agent")
    parser.add_argument("--replicas", type=int, default=2, help="sample file copies per day")
    parser.add_argument(
        "--instances",
        type=int,
        default=0,
        help="service instances, one process and port each (0: 2 on PostgreSQL, 1 on SQLite)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="steady-state duration")
    parser.add_argument("--heartbeat-interval", type=float, default=2.0)
    parser.add_argument("--journal-interval", type=float, default=10.0)
    parser.add_argument("--timeout", type=float, default=300.0, help="bound on each phase")
    arguments = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="atm-bench-ingest-") as name:
        directory = Path(name)
        backend = Backend(arguments.db, directory)
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(run(arguments, directory, backend))
        except Exception as exc:
            for log_path in sorted(directory.glob("service-*.log")):
                sys.stderr.write(log_path.read_text(errors="replace")[-4000:])
            log(f"failed: {exc}")
            raise SystemExit(1) from None
        finally:
            backend.drop()


if __name__ == "__main__":
    main()
