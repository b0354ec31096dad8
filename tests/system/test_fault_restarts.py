"""The fault test across restarts: a service instance killed and PostgreSQL restarted under load.

On a private PostgreSQL cluster (``tests/system/pg_cluster.py``; restarting the
shared test server would disturb other tests), two service instances
(``atm-service serve``) take the load of

- simulated ATMs whose agents run the agent's real uploader and durable spools
  (``tests/system/fleet_load.py``): journals of two business days, a status,
  and events that the dispatch rules turn into tasks;
- engineers at safe locks (``tests/system/lock_load.py``): code, open, close,
  seal, over and over, every step written to the hash-chained lock-access log.

Mid-load, one instance is killed with SIGKILL and started again; then the
cluster is stopped with ``pg_ctl -m fast`` and started again; then stopped with
``-m immediate`` (no shutdown checkpoint: the next start recovers from the WAL)
and started again. Afterwards the devices stop writing, the agents drain their
spools, and the service must hold:

- each ATM's journals byte for byte (SHA-256 per day), in chunks without holes
  or overlaps;
- each event the devices reported exactly once, each record of each stream once
  and in sequence, the rules applied to each (``rules_seq`` at the end);
- one task per ATM and kind the events called for, with as many occurrences as
  events of that kind, and no other;
- a lock-access log that verifies from entry 0, with one code-issued entry per
  code cycle, one seal-reported per sealed cycle, one force-close per
  force-closed cycle, and every seal an engineer saw confirmed in it once.

No request may be answered 500: while the database is away the service answers
503 with ``Retry-After``, and agents and engineers send again.

PostgreSQL only: skipped without ``ATM_TEST_DATABASE_URL`` (a failure with
``ATM_REQUIRE_POSTGRES=1``), and when this machine cannot run a private cluster
(a failure with ``ATM_REQUIRE_POSTGRES=1`` too).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlmodel import Session

from atm_service.config import Settings
from atm_service.db import Database, create_engine
from atm_service.migrate import upgrade
from atm_service.models.device_signals import DeviceName
from atm_service.models.devices import DeviceKeyCreate
from atm_service.models.engineers import EngineerCreate
from atm_service.models.fleet import AtmCreate, ServiceContractCreate, SiteCreate
from atm_service.models.locks import LockCreate
from atm_service.models.tasks import TaskKind, TaskSource
from atm_service.models.users import Role, User, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services import assignment, dispatch, engineers, fleet, locks, tasks, users
from atm_service.services.device_keys import enrol_key
from atm_service.services.dispatch_rules import classify
from atm_service.services.journals import get_journal
from atm_service.services.lock_log import verify_stored
from atm_service.services.lock_secrets import LockSecrets
from atm_service.services.task_states import Actor
from atm_service.services.tasks import Doer
from device_agent.signing import DeviceKey
from device_agent.uploader import UploadPolicy
from lockctl import CheckpointSigner, MasterKey
from tests.conftest import postgres_url
from tests.support import PASSWORD, SITE, atm_payload
from tests.system.fleet_load import Agents, Device, DeviceWriters, open_spools
from tests.system.lock_load import LockCrew, LockEngineer
from tests.system.pg_cluster import ClusterUnavailable, PrivateCluster, private_cluster
from tests.system.support import ServiceProcess, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

SEED = int(os.environ.get("ATM_FAULT_SEED", "20261116"))
ATMS = 16  # ATMs with an agent each
LOCKS = 3  # ATMs with a safe lock and an engineer on site at each
JOURNAL_EVERY_S = 0.25  # each device writes a transaction this often
EVENT_EVERY_S = 1.5  # and reports an event this often, on average
LOAD_S = 22.0  # how long the devices write
DRAIN_S = 30.0  # how long the agents may take to catch up afterwards
# What happens when, in seconds into the load.
KILL_INSTANCE_AT = 4.0
RESTART_DATABASE_FAST_AT = 9.0
RESTART_DATABASE_IMMEDIATE_AT = 15.0
DATABASE_DOWN_S = 1.5  # how long the database stays stopped at each restart


def _required() -> bool:
    return os.environ.get("ATM_REQUIRE_POSTGRES", "") not in ("", "0", "false", "no")


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    if postgres_url() is None:
        pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
    try:
        with private_cluster() as started:
            yield started
    except ClusterUnavailable as exc:
        message = f"cannot run a private PostgreSQL cluster here: {exc}"
        if _required():
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class World:
    """What the test seeded: ATMs with device keys, locks with engineers on site."""

    atm_ids: dict[str, int]
    keys: dict[str, DeviceKey]
    crew: list[LockEngineer]
    lock_atms: list[int]


def _seed(database: Database, settings: Settings, now: datetime) -> World:
    passwords = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    secrets = LockSecrets(settings)
    atm_ids: dict[str, int] = {}
    keys: dict[str, DeviceKey] = {}
    crew: list[LockEngineer] = []
    lock_atms: list[int] = []
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

        def new_user(name: str, role: Role) -> User:
            return users.create_user(
                session,
                data=UserCreate(
                    username=name, full_name=name.title(), role=role, password=PASSWORD
                ),
                passwords=passwords,
                now=now,
            )

        admin = new_user("ada", Role.ADMIN)
        new_user("dana", Role.DISPATCHER)
        for n in range(ATMS + LOCKS):
            terminal = f"T{2000000 + n}"
            atm = fleet.create_atm(
                session,
                data=AtmCreate.model_validate(
                    atm_payload(site.id, terminal, contract_id=contract.id)
                ),
                now=now,
            )
            if n < ATMS:
                key = DeviceKey.generate()
                enrol_key(
                    session,
                    atm_id=atm.id,
                    data=DeviceKeyCreate(public_key=key.public_key_b64),
                    now=now,
                )
                atm_ids[terminal] = atm.id
                keys[terminal] = key
                continue
            # A lock, and an engineer on site at a task there.
            locks.provision(
                session,
                secrets=secrets,
                atm_id=atm.id,
                data=LockCreate(lock_id=f"CX-{terminal[1:]}"),
                by=admin,
                now=now,
            )
            name = f"eng{n}"
            user = new_user(name, Role.ENGINEER)
            assert user.id is not None
            engineer = engineers.create_engineer(
                session,
                data=EngineerCreate.model_validate(
                    {
                        "user_id": user.id,
                        "skills": "flm,slm,cash",
                        "home_region": SITE["region"],
                        "shift_days": "1234567",
                        "shift_start": "00:00",
                        "shift_end": "24:00",
                        "latitude": SITE["latitude"],
                        "longitude": SITE["longitude"],
                    }
                ),
                now=now,
            )
            task = dispatch.new_task(
                session,
                tasks.place_of(session, atm_id=atm.id),
                kind=TaskKind.FLM,
                source=TaskSource.DISPATCHER,
                priority=2,
                title="Check the safe",
                description="",
                opened_at=now,
                now=now,
                by=Doer.system(),
                announce=False,
            )
            session.commit()
            assert task.id is not None
            assert engineer.id is not None
            assignment.assign(
                session,
                task_id=task.id,
                engineer_id=engineer.id,
                by=Doer(name="dana", actor=Actor.DISPATCHER),
                now=now,
                speed_kmh=40,
            )
            for step in (dispatch.accept, dispatch.depart, dispatch.arrive):
                step(session, task_id=task.id, engineer=engineer, by=Doer.of(user), now=now)
            _, record = locks.provisioning_record(
                session, secrets=secrets, atm_id=atm.id, by=admin, reason="the test's lock", now=now
            )
            crew.append(LockEngineer(username=name, atm_id=atm.id, task_id=task.id, record=record))
            lock_atms.append(atm.id)
    return World(atm_ids=atm_ids, keys=keys, crew=crew, lock_atms=lock_atms)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _expected_kind(event: dict[str, Any]) -> TaskKind | None:
    if event["kind"] == "cash_unit_threshold":
        return TaskKind.REPLENISHMENT
    if event["kind"] == "hardware_error":
        return classify(DeviceName(event["device"]), event["code"], event["description"])
    return None


def _rows(session: Session, sql: str, **params: Any) -> list[Any]:
    return list(session.connection().execute(sa.text(sql), params))


def test_nothing_is_lost_or_doubled_when_an_instance_and_the_database_restart(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    began = time.monotonic()
    now = datetime.now(UTC)
    url = cluster.create_database("atm_fault")
    master = MasterKey.generate().to_text()
    signing = CheckpointSigner.generate().private_pem().decode()
    settings = Settings.model_validate(
        {"database_url": url, "lock_master_key": master, "lock_log_signing_key": signing}
    )
    database = Database(create_engine(url))
    try:
        _run_and_check(cluster, database, url, settings, master, signing, tmp_path, began, now)
    finally:
        database.dispose()


def _run_and_check(
    cluster: PrivateCluster,
    database: Database,
    url: str,
    settings: Settings,
    master: str,
    signing: str,
    tmp_path: Path,
    began: float,
    now: datetime,
) -> None:
    rng = random.Random(SEED)
    upgrade(database)
    world = _seed(database, settings, now)
    with database.session() as session:
        log_before = _rows(session, "SELECT count(*) FROM lock_log_entry")[0][0]

    lock_keys = {"ATM_LOCK_MASTER_KEY": master, "ATM_LOCK_LOG_SIGNING_KEY": signing}
    instances = [
        ServiceProcess(database_url=url, log=tmp_path / f"service-{n}.log", environment=lock_keys)
        for n in (1, 2)
    ]
    terminals = sorted(world.atm_ids)
    spools = open_spools(tmp_path / "spools", terminals)
    devices = [Device(t, spools[t], random.Random(rng.random())) for t in terminals]
    writers = DeviceWriters(
        devices, journal_every=JOURNAL_EVERY_S, event_every=EVENT_EVERY_S, switch_at=LOAD_S / 2
    )
    policy = UploadPolicy(
        max_batch_bytes=16 * 1024,
        poll_interval_s=0.2,
        heartbeat_interval_s=1.0,
        backoff_base_s=0.2,
        backoff_cap_s=2.0,
    )
    agents: Agents | None = None
    crew: LockCrew | None = None
    try:
        for instance in instances:
            instance.start()
        bases = [instance.url for instance in instances]
        agents = Agents(spools, world.keys, bases, policy)
        crew = LockCrew(world.crew, bases, PASSWORD, "dana")
        writers.start()
        agents.start()
        crew.start()

        load_began = time.monotonic()

        def at(moment: float) -> None:
            time.sleep(max(0.0, load_began + moment - time.monotonic()))

        at(KILL_INSTANCE_AT)
        instances[0].stop(signal.SIGKILL)
        instances[0].start()
        at(RESTART_DATABASE_FAST_AT)
        cluster.restart("fast", down_for=DATABASE_DOWN_S)
        at(RESTART_DATABASE_IMMEDIATE_AT)
        cluster.restart("immediate", down_for=DATABASE_DOWN_S)
        at(LOAD_S)
        writers.join()
        crew.join()

        # The agents drain their spools.
        def drained() -> bool:
            return all(
                spool.backlog().journal_bytes == 0 and spool.backlog().records == 0
                for spool in spools.values()
            )

        wait_for(drained, DRAIN_S, "the agents draining their spools", step=0.25)
        # A last heartbeat round lets the rules catch up on anything a restart left behind.
        time.sleep(policy.heartbeat_interval_s * 1.5)
        agents.stop()
        agent_answers = agents.seen
        agents = None
    finally:
        if crew is not None:
            crew.stop.set()
        if agents is not None:
            agents.stop()
        for instance in instances:
            instance.close()
        for spool in spools.values():
            spool.close()
    load_seconds = time.monotonic() - began

    journal_bytes = events_total = 0
    with database.session() as session:
        for device in devices:
            atm_id = world.atm_ids[device.terminal_id]
            # The journals, day by day: the same bytes, in chunks without holes or overlaps.
            for name, written in device.journals.items():
                held = get_journal(session, atm_id, name)
                assert hashlib.sha256(held).hexdigest() == hashlib.sha256(written).hexdigest(), (
                    f"{device.terminal_id} journal {name}: {len(held)} bytes held, "
                    f"{len(written)} written"
                )
                chunks = _rows(
                    session,
                    "SELECT c.start, c.length FROM journal_chunk c JOIN journal_file f "
                    "ON f.id = c.journal_id WHERE f.atm_id = :atm AND f.name = :name "
                    "ORDER BY c.start",
                    atm=atm_id,
                    name=name,
                )
                position = 0
                for start, length in chunks:
                    assert start == position, f"{device.terminal_id} {name}: a hole or overlap"
                    position += length
                assert position == len(written)
                journal_bytes += len(written)
            held_journals = _rows(
                session, "SELECT name FROM journal_file WHERE atm_id = :atm", atm=atm_id
            )
            assert sorted(row[0] for row in held_journals) == sorted(device.journals)

            # Every event once; every record of the stream once, in sequence, seen by the rules.
            stored = _rows(session, "SELECT data FROM device_event WHERE atm_id = :atm", atm=atm_id)
            assert Counter(_canonical(row[0]) for row in stored) == Counter(
                _canonical(event) for event in device.events
            ), f"{device.terminal_id}: events stored differ from those reported"
            events_total += len(stored)
            (stream,) = _rows(
                session,
                "SELECT id, last_seq, rules_seq FROM device_record_stream WHERE atm_id = :atm",
                atm=atm_id,
            )
            numbers = sorted(
                row[0]
                for table in ("device_status", "device_event", "counters_snapshot")
                for row in _rows(
                    session,
                    f"SELECT seq FROM {table} WHERE stream_id = :id",  # noqa: S608 - fixed names
                    id=stream.id,
                )
            )
            assert numbers == list(range(1, stream.last_seq + 1))
            assert stream.last_seq == len(device.events) + 1  # the status, then the events
            assert stream.rules_seq == stream.last_seq, f"{device.terminal_id}: rules behind"

            # One task per kind the events called for, each signal counted once.
            expected = Counter(
                kind for kind in map(_expected_kind, device.events) if kind is not None
            )
            held_tasks = _rows(
                session,
                "SELECT kind, occurrences, open_key FROM task WHERE atm_id = :atm",
                atm=atm_id,
            )
            assert len(held_tasks) == len(expected), f"{device.terminal_id}: {held_tasks}"
            for kind, occurrences, open_key in held_tasks:
                assert open_key == tasks.open_key(atm_id, TaskKind(kind))
                assert occurrences == expected[TaskKind(kind)], (
                    f"{device.terminal_id} {kind}: {occurrences} occurrences, "
                    f"{expected[TaskKind(kind)]} events"
                )

        # The lock-access log: intact, and one entry per step that happened.
        verification = verify_stored(session, secrets=LockSecrets(settings))
        assert verification.valid, verification.summary
        kinds = Counter(
            row[0]
            for row in _rows(
                session, "SELECT kind FROM lock_log_entry WHERE position >= :p", p=log_before
            )
        )
        cycles = Counter(
            row[0]
            for row in _rows(
                session,
                "SELECT state FROM lock_issuance WHERE lock_pk IN "
                "(SELECT id FROM lock WHERE atm_id = ANY(:atms))",
                atms=world.lock_atms,
            )
        )
        seal_lines = [
            json.loads(row[0])
            for row in _rows(
                session, "SELECT line FROM lock_log_entry WHERE kind = 'seal-reported'"
            )
        ]
    assert crew is not None
    ledger = crew.ledger
    assert set(cycles) <= {"sealed", "force_closed"}, cycles
    assert kinds["code-issued"] == cycles["sealed"] + cycles["force_closed"]
    assert kinds["seal-reported"] == cycles["sealed"]
    assert kinds["force-close"] == cycles["force_closed"] == ledger.force_closed
    assert set(kinds) == {"code-issued", "seal-reported", "force-close"} - (
        set() if ledger.force_closed else {"force-close"}
    ), kinds
    assert ledger.codes_received == cycles["sealed"]
    assert len(ledger.seals_confirmed) + ledger.seals_answer_lost == cycles["sealed"]
    logged_seals = Counter((line["lock"], line["sequence"]) for line in seal_lines)
    assert all(count == 1 for count in logged_seals.values()), logged_seals
    assert Counter(ledger.seals_confirmed) - logged_seals == Counter()

    # Through it all, no request was answered 500, and the faults did reach the traffic.
    answers = crew.ledger.seen + agent_answers
    for instance in instances:
        text = instance.log.read_text(errors="replace")
        assert "unhandled error" not in text, text[-3000:]
    assert not any(status.startswith("5") and status != "503" for status in answers), answers
    assert sum(n for status, n in answers.items() if not status.startswith("2")) > 0, answers
    print(
        json.dumps(
            {
                "journal_bytes": journal_bytes,
                "events": events_total,
                "lock_cycles": cycles["sealed"],
                "force_closed": cycles["force_closed"],
                "seals_answer_lost": ledger.seals_answer_lost,
                "answers": dict(answers),
                "seconds": round(load_seconds, 1),
            }
        )
    )
    assert journal_bytes > 100_000
    assert cycles["sealed"] >= 10
