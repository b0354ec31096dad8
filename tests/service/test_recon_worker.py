"""The worker threads of two instances over one database: every queued run is claimed once,
executed once, and ends done; a stopped worker stops."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from atm_service.models.reconciliation import ReconRun, RunState
from atm_service.models.users import Role, UserCreate
from atm_service.recon_worker import ReconWorker
from atm_service.security.passwords import Passwords
from atm_service.services.recon_runs import start_run
from atm_service.services.recon_uploads import Upload, receive
from atm_service.services.users import create_user
from tests.conftest import postgres_url
from tests.samples import sample_dir
from tests.service.live_servers import shared_database

TERMINALS = tuple(f"T100000{n}" for n in range(1, 7))


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_two_instances_share_the_queue_without_running_a_run_twice(
    backend: str, tmp_path: Path
) -> None:
    if backend == "postgresql" and postgres_url() is None:
        pytest.skip("PostgreSQL tests need ATM_TEST_DATABASE_URL")
    sample = sample_dir()
    now = datetime.now(UTC)
    with shared_database(backend, tmp_path) as shared:
        database = shared.database()
        with database.session() as session:
            user = create_user(
                session,
                data=UserCreate(
                    username="rita",
                    full_name="Rita",
                    role=Role.RECONCILER,
                    password="correct horse battery",
                ),
                passwords=Passwords(time_cost=1, memory_kib=1024, parallelism=1),
                now=now,
            )
            for terminal in TERMINALS:
                uploads = [
                    Upload(
                        "ej",
                        f"{terminal}_20261116.txt",
                        (sample / "ej" / f"{terminal}_20261116.txt").read_bytes(),
                    ),
                    Upload("host", "20261116.csv", (sample / "host" / "20261116.csv").read_bytes()),
                ]
                start_run(
                    session,
                    by=user,
                    now=now,
                    received=receive(uploads, max_bytes=1 << 24),
                    selection=None,
                )
        workers = [
            ReconWorker(
                shared.database(),
                clock=lambda: datetime.now(UTC),
                interval=0.05,
                stale_after=timedelta(minutes=10),
                name=f"instance-{index}",
            )
            for index in range(2)
        ]
        for worker in workers:
            worker.start()
        try:
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                with database.session() as session:
                    runs = session.exec(select(ReconRun).order_by(col(ReconRun.id))).all()
                if all(run.state.finished for run in runs):
                    break
                time.sleep(0.05)
        finally:
            for worker in workers:
                worker.stop()
        assert not any(worker.running for worker in workers)
        assert len(runs) == len(TERMINALS)
        for run in runs:
            assert run.state is RunState.DONE, run.error
            assert run.attempts == 1, (run.id, run.worker)
            assert run.worker in {"instance-0", "instance-1"}
            assert run.discrepancy_count > 0
            assert {source["terminal_id"] for source in run.sources} == {
                run.sources[0]["terminal_id"],
                "",
            }
