"""Dispatch latency: from a device event reaching the service to the task on the engineer's page.

Two service instances (``atm-service serve`` processes on loopback ports) run
over one fresh PostgreSQL schema holding a fleet of 500 ATMs in ten regions
and 60 engineers. Every engineer's "My dispatches" page is held open as a
server-sent-events client, half on each instance. A simulated fleet then
sends device traffic through the service for a fixed time, alternating
between the instances: status heartbeats, hardware faults, low-cash reports
and recoveries. Faults and low cash open tasks, which the service assigns and
pushes to the chosen engineer's page.

Measured for each new task: from just before the event's HTTP request is
sent to the moment the engineer's open stream delivers the task (both clocks
are this process's). The first seconds of traffic (``--warm-up``, default 3)
are not measured: they fill the instances' connection pools and caches, as
any service that has been up for a while has them. Events enter through the
dispatcher's event-injection routes (``POST /api/v1/atms/{id}/device-events``,
``.../device-status``, ``.../cash-units``), which call the same rules device
ingest calls.

Prints JSON lines: ``dispatch_latency_p99_ms`` (target < 1,000 ms),
``dispatch_latency_p50_ms``, ``dispatch_tasks_measured``,
``dispatch_tasks_undelivered`` and ``dispatch_events_per_s``.

The database is ``ATM_BENCH_DATABASE_URL``, else ``ATM_TEST_DATABASE_URL``,
else ``postgresql://postgres@127.0.0.1:5432/test``; the schema is dropped at
the end. Run: ``.venv/bin/python bench/dispatch.py [--seconds 20] [--rate 25]``;
``ATM_BENCH_DEBUG=1`` also lists the slowest deliveries on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import sqlalchemy as sa
from service_process import free_port
from sqlalchemy.engine import make_url

from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from atm_service.models.engineers import Engineer
from atm_service.models.fleet import Atm, Cassette, EjDialect, ServiceContract, Site
from atm_service.models.users import Role, User
from atm_service.security.passwords import Passwords

ATMS = 500
REGIONS = 10
ENGINEERS_PER_REGION = 6
ZONE = "America/New_York"
ARGON2 = {
    "ATM_ARGON2_TIME_COST": "1",
    "ATM_ARGON2_MEMORY_KIB": "1024",
    "ATM_ARGON2_PARALLELISM": "1",
}


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": value, "unit": unit}), flush=True)


def say(message: str) -> None:
    print(f"[dispatch bench] {message}", file=sys.stderr, flush=True)


def database_url() -> str:
    return (
        os.environ.get("ATM_BENCH_DATABASE_URL")
        or os.environ.get("ATM_TEST_DATABASE_URL")
        or "postgresql://postgres@127.0.0.1:5432/test"
    )


def with_schema(url: str, schema: str) -> str:
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


# --- the fleet -------------------------------------------------------------------------


@dataclass
class Fleet:
    atm_ids: list[int]
    engineers: list[str]
    password: str


def seed(url: str, now: datetime, rng: random.Random) -> Fleet:
    database = Database(create_engine(url))
    upgrade(database)
    password = secrets.token_urlsafe(12)
    hashed = Passwords(time_cost=1, memory_kib=1024, parallelism=1).hash(password)
    with database.session() as session:
        contract = ServiceContract(
            code="GOLD",
            customer="Bench Bank",
            name="Gold 24x7",
            response_minutes=120,
            restore_minutes=240,
            created_at=now,
            updated_at=now,
        )
        session.add(contract)
        session.flush()
        centres = [(40.2 + 0.25 * r, -74.6 + 0.2 * r) for r in range(REGIONS)]
        atms = []
        for n in range(ATMS):
            region = n % REGIONS
            lat, lon = centres[region]
            site = Site(
                code=f"S{n:04d}",
                name=f"Site {n}",
                address_line=f"{n} Main Street",
                city="Benchville",
                country="US",
                region=f"R{region:02d}",
                latitude=lat + rng.uniform(-0.08, 0.08),
                longitude=lon + rng.uniform(-0.08, 0.08),
                timezone=ZONE,
                created_at=now,
                updated_at=now,
            )
            session.add(site)
            session.flush()
            assert site.id is not None
            assert contract.id is not None
            atm = Atm(
                terminal_id=f"B{n:07d}",
                site_id=site.id,
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
        names = []
        users = [("dana", Role.DISPATCHER)] + [
            (f"eng{n:02d}", Role.ENGINEER) for n in range(REGIONS * ENGINEERS_PER_REGION)
        ]
        for username, role in users:
            user = User(
                username=username,
                full_name=username.capitalize(),
                role=role,
                password_hash=hashed,
                created_at=now,
                password_changed_at=now,
            )
            session.add(user)
            session.flush()
            if role is Role.ENGINEER:
                assert user.id is not None
                region = len(names) % REGIONS
                lat, lon = centres[region]
                session.add(
                    Engineer(
                        user_id=user.id,
                        skills="cash,flm,slm",
                        home_region=f"R{region:02d}",
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
                names.append(username)
        session.commit()
        atm_ids = [atm.id for atm in atms if atm.id is not None]
    database.dispose()
    return Fleet(atm_ids=atm_ids, engineers=names, password=password)


# --- the service instances -------------------------------------------------------------


def start_instance(url: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    script = Path(sys.executable).parent / "atm-service"
    env = {
        **os.environ,
        **ARGON2,
        "ATM_DATABASE_URL": url,
        "ATM_DATABASE_POOL_SIZE": "20",
        # warnings only: stderr is a pipe read only if the instance fails to start
        "ATM_LOG_LEVEL": "WARNING",
    }
    process = subprocess.Popen(
        [str(script), "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    return process, f"http://127.0.0.1:{port}"


def wait_ready(process: subprocess.Popen[bytes], base_url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            error = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"a service instance failed to start:\n{error}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise SystemExit(f"the service at {base_url} was not ready within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


# --- the clients -----------------------------------------------------------------------


@dataclass
class Observed:
    arrivals: dict[int, float] = field(default_factory=dict)  # task id → first delivery
    sends: dict[int, float] = field(default_factory=dict)  # task id → request sent
    answered: dict[int, float] = field(default_factory=dict)  # task id → response received
    unassigned: set[int] = field(default_factory=set)
    ready: int = 0
    events_sent: int = 0
    events_per_s: float = 0.0
    errors: list[str] = field(default_factory=list)


async def log_in(base_url: str, username: str, password: str) -> httpx.AsyncClient:
    client = httpx.AsyncClient(base_url=base_url, timeout=httpx.Timeout(30, read=None))
    response = await client.post(
        "/api/v1/session", json={"username": username, "password": password}
    )
    response.raise_for_status()
    client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
    return client


async def listen(client: httpx.AsyncClient, seen: Observed) -> None:
    """Hold an engineer's page open: record when each of their tasks first arrives."""
    async with client.stream("GET", "/my/stream", headers={"Accept": "text/event-stream"}) as r:
        r.raise_for_status()
        event = ""
        async for line in r.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: "):
                now = time.perf_counter()
                if event == "hello":
                    seen.ready += 1
                elif event == "task":
                    data = json.loads(line.removeprefix("data: "))
                    if not data.get("removed"):
                        seen.arrivals.setdefault(int(data["id"]), now)


def local_time(now: datetime) -> str:
    return now.astimezone(ZoneInfo(ZONE)).strftime("%Y-%m-%dT%H:%M:%S")


FAULTS = (
    ("dispenser", "M-05", "note jam in presenter"),
    ("dispenser", "", "dispenser module failure"),
    ("card_reader", "C-02", "card jammed"),
    ("receipt_printer", "P-01", "paper out"),
)


async def send(
    client: httpx.AsyncClient,
    path: str,
    body: Any,
    seen: Observed,
    measure: bool,
    limit: asyncio.Semaphore,
) -> None:
    async with limit:
        started = time.perf_counter()
        try:
            response = await client.post(path, json=body)
        except httpx.HTTPError as exc:
            seen.errors.append(f"{path}: {exc!r}")
            return
        seen.events_sent += 1
        if response.status_code != 200:
            seen.errors.append(f"{path}: {response.status_code} {response.text[:200]}")
            return
        if not measure:
            return
        for task in response.json()["tasks"]:
            if task["occurrences"] == 1 and task["id"] not in seen.sends:
                seen.sends[task["id"]] = started
                seen.answered[task["id"]] = time.perf_counter()
                if task["engineer_id"] is None:
                    seen.unassigned.add(task["id"])


class Traffic:
    """The simulated fleet: which ATM reports what next."""

    def __init__(self, fleet: Fleet, rng: random.Random) -> None:
        self.fleet = fleet
        self.rng = rng
        self.untouched = list(fleet.atm_ids)
        rng.shuffle(self.untouched)
        self.faulted: list[int] = []

    def next(self) -> tuple[str, Any, bool]:
        """(path, body, opens a task) for the next device report."""
        now = datetime.now(UTC)
        roll = self.rng.random()
        if roll < 0.25 and self.untouched:
            atm = self.untouched.pop()
            self.faulted.append(atm)
            device, code, description = self.rng.choice(FAULTS)
            event = {
                "kind": "hardware_error",
                "time": local_time(now),
                "device": device,
                "severity": "fatal",
                "code": code,
                "description": description,
            }
            return f"/api/v1/atms/{atm}/device-events", event, True
        if roll < 0.35 and self.untouched:
            atm = self.untouched.pop()
            units = [
                {"usNumber": 1, "usType": 3, "usStatus": 3, "ulCount": 250},
                {"usNumber": 2, "usType": 3, "usStatus": 0, "ulCount": 1800},
                {"usNumber": 3, "usType": 3, "usStatus": 0, "ulCount": 1200},
                {"usNumber": 4, "usType": 3, "usStatus": 0, "ulCount": 900},
                {"usNumber": 5, "usType": 2, "usStatus": 0, "ulCount": 20},
                {"usNumber": 6, "usType": 6, "usStatus": 0, "ulCount": 2},
            ]
            return f"/api/v1/atms/{atm}/cash-units", units, True
        if roll < 0.40 and self.faulted:
            atm = self.faulted.pop(0)
            event = {"kind": "hardware_recovered", "time": local_time(now), "device": "dispenser"}
            return f"/api/v1/atms/{atm}/device-events", event, False
        atm = self.rng.choice(self.fleet.atm_ids)
        status = {
            "time": local_time(now),
            "in_service": True,
            "safe_door": "closed",
            "devices": {"dispenser": "ok", "card_reader": "ok", "receipt_printer": "ok"},
        }
        return f"/api/v1/atms/{atm}/device-status", status, False


async def generate(
    dispatchers: list[httpx.AsyncClient],
    traffic: Traffic,
    seen: Observed,
    seconds: float,
    rate: float,
    *,
    record: bool,
) -> float:
    """Device traffic at ``rate`` events per second for ``seconds``; returns the time taken."""
    limit = asyncio.Semaphore(64)
    pending = []
    start = time.perf_counter()
    for n in range(int(seconds * rate)):
        delay = start + n / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        path, body, opens = traffic.next()
        client = dispatchers[n % len(dispatchers)]
        sending = send(client, path, body, seen, record and opens, limit)
        pending.append(asyncio.create_task(sending))
    await asyncio.gather(*pending)
    return time.perf_counter() - start


async def measure(
    bases: list[str], fleet: Fleet, *, seconds: float, warm_up: float, rate: float, seed: int
) -> Observed:
    traffic = Traffic(fleet, random.Random(seed))
    seen = Observed()
    dispatchers = [await log_in(base, "dana", fleet.password) for base in bases]
    engineers = [
        await log_in(bases[n % len(bases)], name, fleet.password)
        for n, name in enumerate(fleet.engineers)
    ]
    listeners = [asyncio.create_task(listen(client, seen)) for client in engineers]
    deadline = time.monotonic() + 30
    while seen.ready < len(engineers):
        if time.monotonic() > deadline:
            raise SystemExit(f"only {seen.ready} of {len(engineers)} pages connected")
        await asyncio.sleep(0.05)
    say(f"{len(engineers)} engineers' pages open; warming up for {warm_up:g} s")
    await generate(dispatchers, traffic, seen, warm_up, rate, record=False)
    seen.events_sent = 0
    say(f"measuring: {rate:g} device events/s for {seconds:g} s")
    took = await generate(dispatchers, traffic, seen, seconds, rate, record=True)
    seen.events_per_s = seen.events_sent / took if took else 0.0
    settle = time.monotonic() + 5
    while time.monotonic() < settle and any(
        task_id not in seen.arrivals for task_id in seen.sends if task_id not in seen.unassigned
    ):
        await asyncio.sleep(0.05)
    for listener in listeners:
        listener.cancel()
    await asyncio.gather(*listeners, return_exceptions=True)
    for client in dispatchers + engineers:
        await client.aclose()
    return seen


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="how long the fleet sends")
    parser.add_argument("--rate", type=float, default=25.0, help="device events per second")
    parser.add_argument(
        "--warm-up", type=float, default=3.0, help="seconds of traffic before measuring"
    )
    parser.add_argument("--seed", type=int, default=20261116)
    args = parser.parse_args()
    if not 1 <= args.seconds <= 120 or not 1 <= args.rate <= 200 or not 0 <= args.warm_up <= 30:
        parser.error("--seconds must be 1-120, --rate 1-200 and --warm-up 0-30")

    base = database_url()
    schema = f"atm_bench_{secrets.token_hex(4)}"
    admin = create_engine(base)
    try:
        with admin.begin() as connection:
            connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    except sa.exc.OperationalError as exc:
        raise SystemExit(f"the dispatch benchmark needs PostgreSQL at {base}: {exc.orig}") from None
    url = with_schema(base, schema)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        say(f"seeding {ATMS} ATMs and {REGIONS * ENGINEERS_PER_REGION} engineers")
        fleet = seed(url, datetime.now(UTC), random.Random(args.seed))
        instances = [start_instance(url) for _ in range(2)]
        processes = [process for process, _ in instances]
        for process, base_url in instances:
            wait_ready(process, base_url)
        bases = [base_url for _, base_url in instances]
        seen = asyncio.run(
            measure(
                bases,
                fleet,
                seconds=args.seconds,
                warm_up=args.warm_up,
                rate=args.rate,
                seed=args.seed,
            )
        )
    finally:
        for process in processes:
            stop(process)
        with admin.begin() as connection:
            connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()

    latencies = [
        (seen.arrivals[task_id] - sent) * 1000
        for task_id, sent in seen.sends.items()
        if task_id in seen.arrivals
    ]
    undelivered = [
        task_id
        for task_id in seen.sends
        if task_id not in seen.arrivals and task_id not in seen.unassigned
    ]
    if os.environ.get("ATM_BENCH_DEBUG"):
        first = min(seen.sends.values())
        slow = sorted(
            ((seen.arrivals[t] - s) * 1000, s - first, t)
            for t, s in seen.sends.items()
            if t in seen.arrivals
        )[-12:]
        for latency, offset, task_id in slow:
            answer = (seen.answered[task_id] - seen.sends[task_id]) * 1000
            say(f"task {task_id}: {latency:.0f} ms (response {answer:.0f} ms), at +{offset:.2f} s")
    if seen.errors:
        say(f"{len(seen.errors)} requests failed; first: {seen.errors[0]}")
    if not latencies:
        raise SystemExit("no task reached an engineer's page; nothing to measure")
    emit("dispatch_latency_p99_ms", round(percentile(latencies, 0.99), 1), "ms")
    emit("dispatch_latency_p50_ms", round(statistics.median(latencies), 1), "ms")
    emit("dispatch_tasks_measured", len(latencies), "tasks")
    emit("dispatch_tasks_undelivered", len(undelivered) + len(seen.unassigned), "tasks")
    emit("dispatch_events_per_s", round(seen.events_per_s, 1), "events/s")


if __name__ == "__main__":
    main()
