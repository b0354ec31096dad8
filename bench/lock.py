"""Lock-control benchmarks: one function per figure, each printing one JSON line.

- ``audit_verify_entries_per_s``: offline verification (``lockctl.verify_export``, what
  ``atm-lock verify-export`` runs) of an export of 1,000,000 entries read from a file;
  target >= 200,000 entries/s.
- ``otc_issue_p99_ms``: a code through the service's API, as an engineer's phone asks
  for it: ``atm-service`` (uvicorn, one worker process) on a loopback port over a
  database (SQLite file by default, ``--database-url`` for PostgreSQL), engineers
  logged in and on site at their tasks, each asking for a code, keying it into a
  simulated lock and reporting the seal (only the code request is timed), two
  engineers at once by default (``--api-concurrency``); target < 50 ms. Bounded by
  ``--api-requests`` and ``--api-seconds``.
- ``otc_issue_library_p99_ms``: issuing a code in the library alone: decrypt the lock
  key from the vault, derive the code, append the ``code-issued`` entry to the log and
  serialise the lock's chain state.
- ``seal_verify_library_p99_ms``: verifying a close seal and logging it.

Run: ``.venv/bin/python bench/lock.py [--entries N]``. Figures are wall-clock on this
machine and drop when other work shares its cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lockctl import (
    AuditLog,
    CheckpointSigner,
    EntryKind,
    FileLogStore,
    KeyVault,
    LockChain,
    LockControl,
    LockFirmware,
    LockPolicy,
    MasterKey,
    MemoryKeyStore,
    MemoryLogStore,
    Operation,
    PublicKeys,
    verify_export,
)

T0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 3), "unit": unit}), flush=True)


def _entry(n: int) -> tuple[EntryKind, dict[str, object]]:
    """Entries shaped like the service's: issuances, seal reports, imported failures."""
    lock = f"CX-{n % 5000:06d}"
    window = 498_560 + n // 2000
    if n % 3 == 0:
        return EntryKind.CODE_ISSUED, {
            "lock": lock,
            "purpose": "opening",
            "user": 1000 + n % 777,
            "operation": "route",
            "window": window,
            "valid_from": "2026-11-16T08:00:00Z",
            "valid_until": "2026-11-16T10:00:00Z",
            "key_version": 1,
            "code_tag": f"{n:032x}",
            "chain": f"{n * 7:032x}",
            "issued_by": "dispatch-7",
            "task": 100_000 + n,
        }
    if n % 3 == 1:
        return EntryKind.SEAL_REPORTED, {
            "lock": lock,
            "purpose": "opening",
            "users": [1000 + n % 777],
            "window": window,
            "matched": True,
            "duress": False,
            "seal": f"{n % 10**8:08d}",
            "previous_chain": f"{n * 7:032x}",
            "chain": f"{n * 11:032x}",
            "sequence": n // 3,
            "reported_by": "engineer-42",
        }
    return EntryKind.FAILURE, {
        "lock": lock,
        "source": "lock",
        "event": "wrong-code",
        "lock_seq": n,
        "lock_at": "2026-11-16T08:24:00Z",
        "users": [42],
    }


def audit_verify_entries_per_s(entries: int) -> None:
    signer = CheckpointSigner.generate()
    with tempfile.TemporaryDirectory(prefix="lock-bench-") as directory:
        store = FileLogStore(Path(directory) / "log")
        log = AuditLog(store, signer, log_id="bench:locks", checkpoint_every=1000)
        now = T0
        for n in range(entries - 1):  # the export adds its own entry
            kind, fields = _entry(n)
            log.append(kind, fields, now=now)
            if n % 100 == 0:
                now += timedelta(seconds=7)
        export = Path(directory) / "export.jsonl"
        with export.open("wb") as out:
            log.export(out, now=now, by="bench")
        store.close()
        keys = PublicKeys([signer.public_key])
        runs = []
        for _ in range(3):
            with export.open("rb") as handle:
                started = time.perf_counter()
                summary = verify_export(handle, keys)
                runs.append(time.perf_counter() - started)
        assert summary.entries == entries, summary
    emit("audit_verify_entries_per_s", entries / statistics.median(runs), "entries/s")


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def otc_issue_and_seal_latency(rounds: int) -> None:
    policy = LockPolicy()
    control = LockControl(policy)
    vault = KeyVault(MemoryKeyStore(), MasterKey.generate())
    log = AuditLog(MemoryLogStore(), CheckpointSigner.generate(), log_id="bench:locks")
    locks = [f"CX-{n:04d}" for n in range(100)]
    chains = {}
    firmware = {}
    states = {}
    for lock in locks:
        key = vault.create(lock, now=T0)
        chains[lock] = control.provision(key).to_dict()
        firmware[lock] = LockFirmware(key, policy)
        states[lock] = firmware[lock].initial_state()
    issue_ms: list[float] = []
    seal_ms: list[float] = []
    now = T0
    for n in range(rounds):
        lock = locks[n % len(locks)]
        now += timedelta(seconds=3)
        started = time.perf_counter()
        key = vault.active(lock)
        issuance = control.issue(
            LockChain.from_dict(chains[lock]), key, user=42, operation=Operation.OPEN, now=now
        )
        log.append(EntryKind.CODE_ISSUED, issuance.codes[0].audit_fields(), now=now)
        chains[lock] = issuance.chain.to_dict()
        issue_ms.append((time.perf_counter() - started) * 1000)

        # the engineer at the lock (not timed)
        entry = firmware[lock].enter(states[lock], user=42, code=issuance.codes[0].code, now=now)
        relocked = firmware[lock].relock(entry.state, now=now)
        states[lock] = relocked.state

        started = time.perf_counter()
        key = vault.active(lock)
        confirmed = control.verify_seal(
            LockChain.from_dict(chains[lock]), key, relocked.seal, now=now
        )
        log.append(EntryKind.SEAL_REPORTED, confirmed.audit_fields(), now=now)
        chains[lock] = confirmed.chain.to_dict()
        seal_ms.append((time.perf_counter() - started) * 1000)
    emit("otc_issue_library_p99_ms", _percentile(issue_ms, 0.99), "ms")
    emit("seal_verify_library_p99_ms", _percentile(seal_ms, 0.99), "ms")


def _seed_service(url: str, engineers: int, master: str, signing: str) -> dict[str, object]:
    """A fleet of ``engineers`` ATMs with a lock each and one engineer on site at each."""
    from atm_service.config import Settings
    from atm_service.db import Database
    from atm_service.migrate import upgrade
    from atm_service.models.engineers import EngineerCreate
    from atm_service.models.fleet import AtmCreate, CassetteIn, EjDialect, SiteCreate
    from atm_service.models.locks import LockCreate
    from atm_service.models.tasks import TaskKind, TaskSource
    from atm_service.models.users import Role, UserCreate
    from atm_service.security.passwords import Passwords
    from atm_service.services import (
        assignment,
        dispatch,
        fleet,
        locks,
        tasks,
        users,
    )
    from atm_service.services import (
        engineers as engineer_service,
    )
    from atm_service.services.lock_secrets import LockSecrets
    from atm_service.services.task_states import Actor
    from atm_service.services.tasks import Doer

    settings = Settings(database_url=url, lock_master_key=master, lock_log_signing_key=signing)  # type: ignore[call-arg]
    database = Database.from_settings(settings)
    upgrade(database)
    passwords = Passwords(time_cost=1, memory_kib=8192, parallelism=1)
    secrets = LockSecrets(settings)
    now = datetime.now(UTC)
    plan: dict[str, object] = {"engineers": []}
    with database.session() as session:
        site = fleet.create_site(
            session,
            data=SiteCreate(
                code="BENCH", name="Bench", region="Bench", country="US", city="Springfield",
                address_line="1 Bench Road", latitude=40.75, longitude=-73.99,
                timezone="America/New_York",
            ),
            now=now,
        )  # fmt: skip
        admin = users.create_user(
            session,
            data=UserCreate(username="bench-admin", full_name="Bench", role=Role.ADMIN,
                            password="bench-password-1"),
            passwords=passwords,
            now=now,
        )  # fmt: skip
        for n in range(engineers):
            assert site.id is not None
            atm = fleet.create_atm(
                session,
                data=AtmCreate(
                    terminal_id=f"B{n:07d}", site_id=site.id, vendor="NCR", model="SelfServ 84",
                    ej_dialect=EjDialect.NDC,
                    cassettes=[CassetteIn(number=1, denomination=20, currency="USD",
                                          capacity=3000, minimum=200)],
                ),
                now=now,
            )  # fmt: skip
            locks.provision(
                session, secrets=secrets, atm_id=atm.id, data=LockCreate(lock_id=f"CX-B{n:05d}"),
                by=admin, now=now,
            )  # fmt: skip
            user = users.create_user(
                session,
                data=UserCreate(username=f"bench-eng-{n}", full_name=f"Engineer {n}",
                                role=Role.ENGINEER, password="bench-password-1"),
                passwords=passwords,
                now=now,
            )  # fmt: skip
            engineer = engineer_service.create_engineer(
                session,
                data=EngineerCreate(user_id=user.id or 0, skills="flm", home_region="Bench",
                                    shift_days="1234567", shift_start="00:00", shift_end="24:00",
                                    latitude=40.75, longitude=-73.99),
                now=now,
            )  # fmt: skip
            task = dispatch.new_task(
                session, tasks.place_of(session, atm_id=atm.id), kind=TaskKind.FLM,
                source=TaskSource.DISPATCHER, priority=2, title="bench", description="",
                opened_at=now, now=now, by=Doer.system(), announce=False,
            )  # fmt: skip
            session.commit()
            assert task.id is not None
            assert engineer.id is not None
            assignment.assign(
                session, task_id=task.id, engineer_id=engineer.id,
                by=Doer(name="bench", actor=Actor.DISPATCHER), now=now, speed_kmh=40,
            )  # fmt: skip
            by = Doer.of(user)
            for step in (dispatch.accept, dispatch.depart, dispatch.arrive):
                step(session, task_id=task.id, engineer=engineer, by=by, now=now)
            _, record = locks.provisioning_record(
                session, secrets=secrets, atm_id=atm.id, by=admin, reason="bench", now=now
            )
            plan["engineers"].append(  # type: ignore[attr-defined]
                {"user": user.username, "atm": atm.id, "task": task.id, "record": record}
            )
    database.dispose()
    return plan


def otc_issue_through_api(
    requests: int, seconds: float, engineers: int, url: str | None, concurrency: int = 2
) -> None:
    master = MasterKey.generate().to_text()
    signing = CheckpointSigner.generate().private_pem().decode()
    schema = None
    with tempfile.TemporaryDirectory(prefix="lock-api-bench-") as directory:
        database_url = url or f"sqlite:///{Path(directory) / 'bench.db'}"
        if url is not None and url.startswith("postgres"):
            schema, database_url = _new_schema(url)
        try:
            plan = _seed_service(database_url, engineers, master, signing)
            samples = _serve_and_measure(
                plan, database_url, master, signing, requests, seconds, engineers, concurrency
            )
        finally:
            if schema is not None and url is not None:
                _drop_schema(url, schema)
    emit("otc_issue_p99_ms", _percentile(samples, 0.99), "ms")
    emit("otc_issue_p50_ms", _percentile(samples, 0.50), "ms")
    emit("otc_issue_api_requests", float(len(samples)), "requests")


def _new_schema(url: str) -> tuple[str, str]:
    """A schema of its own in the PostgreSQL database, and a URL whose connections use it."""
    import secrets as random_names

    import sqlalchemy as sa

    from atm_service.db import create_engine

    schema = f"lock_bench_{random_names.token_hex(4)}"
    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    joiner = "&" if "?" in url else "?"
    return schema, f"{url}{joiner}options=-csearch_path%3D{schema}"


def _drop_schema(url: str, schema: str) -> None:
    import sqlalchemy as sa

    from atm_service.db import create_engine

    engine = create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


def _serve_and_measure(
    plan: dict[str, object],
    database_url: str,
    master: str,
    signing: str,
    requests: int,
    seconds: float,
    engineers: int,
    concurrency: int,
) -> list[float]:
    import os
    import socket
    import subprocess
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    from lockctl import Provisioning
    from simulators.lock import SimulatedLock

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "ATM_DATABASE_URL": database_url,
        "ATM_LOCK_MASTER_KEY": master,
        "ATM_LOCK_LOG_SIGNING_KEY": signing,
        "ATM_DISPATCH_SWEEP_SECONDS": "0",
        "ATM_LOG_LEVEL": "WARNING",  # no line per request, as --log-level below
        # engineers here ask far faster than people: limits high enough never to refuse,
        # still counted, so the figure includes the rate limit's cost
        "ATM_CODE_REQUESTS_PER_USER": "1000000",
        "ATM_CODE_REQUESTS_PER_ADDRESS": "1000000",
        "ATM_LOGIN_ATTEMPTS_PER_ADDRESS": "1000000",
        "ATM_ARGON2_TIME_COST": "1",
        "ATM_ARGON2_MEMORY_KIB": "8192",
        "ATM_ARGON2_PARALLELISM": "1",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory",
         "atm_service.app:create_app_from_environment", "--host", "127.0.0.1",
         "--port", str(port), "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("the service did not start")
            time.sleep(0.1)
        samples: list[float] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + seconds
        per = max(1, requests // engineers)

        def work(item: dict[str, object]) -> None:
            login = httpx.post(
                base + "/api/v1/session",
                json={"username": item["user"], "password": "bench-password-1"},
            )
            login.raise_for_status()
            client = httpx.Client(
                base_url=base,
                cookies=login.cookies,
                headers={"X-CSRF-Token": login.json()["csrf_token"]},
                timeout=30,
            )
            simulated = SimulatedLock(
                Provisioning.from_json(str(item["record"])), clock=lambda: datetime.now(UTC)
            )
            path = f"/api/v1/atms/{item['atm']}/lock"
            with client:
                for _ in range(per):
                    if time.monotonic() > stop_at:
                        return
                    started = time.perf_counter()
                    response = client.post(path + "/codes", json={"task_id": item["task"]})
                    elapsed = (time.perf_counter() - started) * 1000
                    if response.status_code != 201:
                        raise RuntimeError(f"code request failed: {response.text}")
                    with lock:
                        samples.append(elapsed)
                    out = response.json()
                    simulated.enter_code(out["user_number"], out["code"])
                    seal = simulated.relock()
                    done = client.post(path + "/seal", json={"task_id": item["task"], "seal": seal})
                    if done.status_code != 200:
                        raise RuntimeError(f"seal report failed: {done.text}")

        with ThreadPoolExecutor(min(concurrency, engineers)) as pool:
            list(pool.map(work, plan["engineers"]))  # type: ignore[arg-type]
    finally:
        server.terminate()
        server.wait(timeout=10)
    return samples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="export size")
    parser.add_argument("--rounds", type=int, default=5_000, help="issue/seal cycles")
    parser.add_argument("--api-requests", type=int, default=1_000, help="codes through the API")
    parser.add_argument("--api-seconds", type=float, default=120.0, help="API time limit")
    parser.add_argument("--api-engineers", type=int, default=8, help="engineers (and locks)")
    parser.add_argument("--api-concurrency", type=int, default=2, help="engineers asking at once")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("ATM_BENCH_DATABASE_URL"),
        help="API run's database: PostgreSQL (a schema of its own, dropped after) or, "
        "by default, a SQLite file",
    )
    args = parser.parse_args(argv)
    if args.entries < 2 or args.rounds < 1 or args.api_requests < 1 or args.api_engineers < 1:
        parser.error("--entries must be at least 2; --rounds, --api-* at least 1")
    otc_issue_through_api(
        args.api_requests,
        args.api_seconds,
        args.api_engineers,
        args.database_url,
        concurrency=max(1, args.api_concurrency),
    )
    audit_verify_entries_per_s(args.entries)
    otc_issue_and_seal_latency(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
