"""The fault test: a long journal transfer through agent kills, service restarts and line noise.

Real processes: the service (``atm-service serve`` on a loopback port, over a migrated
SQLite file or a PostgreSQL schema of its own), a live ATM (``atm-sim atm`` on a
pseudo-terminal that corrupts one byte in 10,000 each way, at 921,600 baud, its clock
running thousands of times faster than real time so it writes several hundred KB of
journal), and its agent (``atm-agent run``). While the ATM writes, the agent is killed
with SIGKILL at seeded-random moments and started again, and the service is killed once
and stopped once and started again. Then the ATM's clock is paused and, once the agent
has caught up, the service must hold exactly the journal the ATM wrote, day by day (the
same bytes, the same SHA-256), every event the ATM reported exactly once, and every
record of the agent's stream once, in sequence, with the dispatch rules applied to each.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import pytest
import sqlalchemy as sa

from atm_service.models.devices import DeviceEvent, RecordStream
from atm_service.models.journals import JournalChunk, JournalFile
from atm_service.models.tasks import Task
from atm_service.services.ingest import streams_behind_rules
from atm_service.services.journals import get_journal
from atm_service.services.sql import table
from device_agent.signing import DeviceKey, write_key_file
from tests.system.support import (
    BACKENDS,
    CommittedDatabase,
    ServiceProcess,
    build_place,
    committed_database,
    enrol,
    tool,
    wait_for,
)

pytestmark = pytest.mark.slow

SEED = int(os.environ.get("ATM_FAULT_SEED", "20261116"))
BAUD = 921_600
NOISE = 1e-4
SPEED = 7000.0  # simulated seconds per real second: about two business days in the run
WRITING_S = 22.0  # how long the ATM writes while the faults happen
CATCH_UP_S = 60.0


@dataclass
class Simulator:
    """``atm-sim atm`` with its console on a pipe."""

    out: Path
    log: Path
    process: subprocess.Popen[str] | None = None
    port: str = ""
    answers: list[str] = field(default_factory=list)
    _log_file: IO[bytes] | None = None

    def start(self) -> None:
        self._log_file = open(self.log, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [
                tool("atm-sim"),
                "atm",
                "--terminal-id",
                "T1000001",
                "--out",
                str(self.out),
                "--pty",
                "--baud",
                str(BAUD),
                "--noise",
                str(NOISE),
                "--speed",
                str(SPEED),
                "--seed",
                str(SEED),
                "--start",
                "2026-11-16T00:00:00",
                "--mean-transactions",
                "1500",
                "--discrepancy-rate",
                "0.05",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._log_file,
            text=True,
            bufsize=1,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if " serves on " in line:
                self.port = line.split(" serves on ")[1].split()[0]
            if line.startswith("ready:"):
                break
        assert self.port, "atm-sim atm printed no device path"
        threading.Thread(target=self._answers, args=(self.process.stdout,), daemon=True).start()

    def _answers(self, stdout: IO[str]) -> None:
        for line in stdout:
            self.answers.append(line.strip())

    def say(self, line: str) -> None:
        assert self.process is not None
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stop(self) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()
        if self._log_file is not None:
            self._log_file.close()
        return self.process.returncode


@dataclass
class AgentProcess:
    """``atm-agent run``, killed and started again at will."""

    arguments: list[str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    kills: int = 0

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [tool("atm-agent"), "run", *self.arguments],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.kills += 1

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(params=BACKENDS)
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[CommittedDatabase]:
    with committed_database(request.param, tmp_path) as committed:
        yield committed


def _journals(out: Path) -> dict[str, bytes]:
    return {
        path.stem.split("_")[1]: path.read_bytes() for path in sorted((out / "ej").glob("*.txt"))
    }


def _canonical(event: dict[str, Any]) -> str:
    return json.dumps(event, sort_keys=True, separators=(",", ":"))


def test_the_service_holds_exactly_what_the_atm_wrote_through_kills_restarts_and_noise(
    database: CommittedDatabase, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    now = datetime.now(UTC)
    place = build_place(database.database, now)
    key = DeviceKey.generate()
    write_key_file(tmp_path / "device.key", key)
    enrol(database.database, place.atm_id, key.public_key_b64, now)

    service = ServiceProcess(database_url=database.url, log=tmp_path / "service.log")
    simulator = Simulator(out=tmp_path / "atm", log=tmp_path / "atm-sim.log")
    agent: AgentProcess | None = None
    began = time.monotonic()
    service_restarts = 0
    try:
        service.start()
        simulator.start()
        agent = AgentProcess(
            [
                "--port",
                simulator.port,
                "--service",
                service.url,
                "--key",
                str(tmp_path / "device.key"),
                "--spool",
                str(tmp_path / "spool.db"),
                "--terminal-id",
                place.terminal_id,
                "--baud",
                str(BAUD),
                "--heartbeat-interval",
                "1",
                "--retry-max",
                "1",
            ],
            log=tmp_path / "agent.log",
        )
        agent.start()

        # The schedule of faults, all drawn from the seed.
        plan: list[tuple[float, str]] = []
        moment = rng.uniform(1.0, 2.5)
        while moment < WRITING_S - 1:
            plan.append((moment, "kill agent"))
            moment += rng.uniform(2.0, 4.0)
        plan += [
            (rng.uniform(6.0, 8.0), "kill service"),
            (rng.uniform(14.0, 16.0), "stop service"),
            (4.0, "inject card_reader_fault"),
            (9.0, "clear card_reader"),
            (11.0, "door open"),
            (12.5, "replenish"),
            (13.0, "door close"),
        ]
        plan.sort()
        start = time.monotonic()
        for at, action in plan:
            time.sleep(max(0.0, start + at - time.monotonic()))
            if action == "kill agent":
                agent.kill()
                time.sleep(rng.uniform(0.1, 0.8))
                agent.start()
            elif action in ("kill service", "stop service"):
                service.stop(signal.SIGKILL if action == "kill service" else signal.SIGTERM)
                time.sleep(rng.uniform(0.5, 2.0))
                service.start()
                service_restarts += 1
            else:
                simulator.say(action)
        time.sleep(max(0.0, start + WRITING_S - time.monotonic()))
        simulator.say("pause")
        wait_for(lambda: any(a.startswith("ok paused") for a in simulator.answers), 5, "pause")
        written = _journals(simulator.out)
        events_file = simulator.out / "events" / f"{place.terminal_id}.jsonl"

        def sim_events() -> set[str]:
            return {_canonical(json.loads(line)) for line in events_file.read_text().splitlines()}

        def service_journal(session: Any, name: str) -> bytes:
            try:
                return get_journal(session, place.atm_id, name)
            except Exception:
                return b""

        def caught_up() -> bool:
            with database.database.session() as session:
                if any(service_journal(session, n) != d for n, d in written.items()):
                    return False
                held = session.exec(
                    sa.select(sa.func.count()).select_from(table(DeviceEvent))  # type: ignore[call-overload]
                ).one()[0]
            return bool(held >= len(sim_events()))

        try:
            wait_for(caught_up, CATCH_UP_S, "the service catching up with the ATM", step=0.5)
        except AssertionError as exc:
            with database.database.session() as session:
                held = {name: len(service_journal(session, name)) for name in written}
            sizes = {name: len(data) for name, data in written.items()}
            tail = (tmp_path / "agent.log").read_text(errors="replace").splitlines()[-15:]
            raise AssertionError(
                f"{exc}; the ATM wrote {sizes}, the service holds {held}; "
                f"{len(sim_events())} events written; the agent's log ends:\n" + "\n".join(tail)
            ) from None

        def rules_caught_up() -> bool:
            with database.database.session() as session:
                return streams_behind_rules(session) == 0

        # The dispatch rules run after each upload's answer (and a heartbeat applies what a
        # restart left behind): they follow the stored records by a moment.
        wait_for(rules_caught_up, 30, "the dispatch rules seeing every stored record")
        duration = time.monotonic() - began
        assert _journals(simulator.out) == written  # the paused ATM wrote nothing more
        # the first business day closed: its switch log, paper journal and counters are written
        first_day = min(written)
        assert (simulator.out / "host" / f"{first_day}.iso").stat().st_size > 0
        assert (simulator.out / "paper" / f"{place.terminal_id}_{first_day}.txt").exists()

        # The journal, day by day: the same bytes, the same hash, stored once.
        total = 0
        with database.database.session() as session:
            for name, data in written.items():
                held = get_journal(session, place.atm_id, name)
                assert hashlib.sha256(held).hexdigest() == hashlib.sha256(data).hexdigest(), name
                assert held == data
                total += len(data)
                chunks = session.exec(
                    sa.select(table(JournalChunk).c.start, table(JournalChunk).c.length)  # type: ignore[call-overload]
                    .join(
                        table(JournalFile),
                        table(JournalFile).c.id == table(JournalChunk).c.journal_id,
                    )
                    .where(
                        table(JournalFile).c.atm_id == place.atm_id,
                        table(JournalFile).c.name == name,
                    )
                    .order_by(table(JournalChunk).c.start)
                ).all()
                position = 0
                for chunk_start, length in chunks:
                    assert chunk_start == position, (
                        f"journal {name}: a chunk overlaps or leaves a hole"
                    )
                    position += length
                assert position == len(data)

            # Every event the ATM reported, exactly once.
            stored = [
                _canonical(row[0])
                for row in session.exec(sa.select(table(DeviceEvent).c.data))  # type: ignore[call-overload]
            ]
            assert Counter(stored) == Counter(sim_events())

            # Every record of the agent's stream once, in sequence, seen by the rules once.
            streams = session.exec(sa.select(RecordStream)).all()  # type: ignore[call-overload]
            assert len(streams) == 1
            (stream,) = (row[0] for row in streams)
            numbers = sorted(
                seq
                for model in ("device_status", "device_event", "counters_snapshot")
                for (seq,) in session.exec(
                    sa.text(f"SELECT seq FROM {model} WHERE stream_id = :id").bindparams(  # noqa: S608
                        id=stream.id
                    )
                )
            )
            assert numbers == list(range(1, stream.last_seq + 1))
            assert stream.rules_seq == stream.last_seq
            # the card reader fault became a task (or joined the open first-line one)
            facts = [row[0].facts for row in session.exec(sa.select(Task))]  # type: ignore[call-overload]
            assert any("card_reader" in fact.get("devices", {}) for fact in facts)

        assert agent.kills >= 5
        assert service_restarts == 2
        assert total > 300_000, f"only {total} bytes of journal moved"
        print(
            json.dumps(
                {
                    "backend": database.backend,
                    "journal_bytes": total,
                    "days": len(written),
                    "events": len(stored),
                    "records": stream.last_seq,
                    "agent_kills": agent.kills,
                    "service_restarts": service_restarts,
                    "seconds": round(duration, 1),
                    "seed": SEED,
                }
            )
        )
    finally:
        if agent is not None:
            agent.stop()
        simulator.stop()
        service.close()
