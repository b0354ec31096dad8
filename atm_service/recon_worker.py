"""Runs queued reconciliation runs on a thread of each instance.

Started by the application's lifespan when ``recon_poll_seconds`` is above
zero; stopped with it. The thread claims one run at a time
(:func:`atm_service.services.recon_runs.claim_next`), executes it
(:func:`atm_service.services.recon_execute.execute_run`) and looks again;
when nothing is queued it waits ``recon_poll_seconds``, or less when a run is
started on this instance (:meth:`ReconWorker.wake`). While a run executes, a
second thread refreshes its heartbeat, so another instance takes it over only
if this one really stopped.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
from datetime import timedelta

from atm_service.clock import Clock
from atm_service.db import Database
from atm_service.services import recon_runs
from atm_service.services.recon_execute import execute_run
from atm_service.services.recon_runs import RunLost

logger = logging.getLogger("atm_service.reconciliation")


def worker_name() -> str:
    """host:pid:random, unique per instance even on one machine."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{random.getrandbits(32):08x}"


class _Heartbeat:
    """Refreshes a running run's heartbeat every ``interval`` seconds until stopped."""

    def __init__(
        self, database: Database, run_id: int, worker: str, clock: Clock, interval: float
    ) -> None:
        self.database = database
        self.run_id = run_id
        self.worker = worker
        self.clock = clock
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="recon-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.database.session() as session:
                    recon_runs.record_progress(
                        session, run_id=self.run_id, worker=self.worker, now=self.clock()
                    )
            except RunLost:
                return
            except Exception:
                logger.exception("reconciliation heartbeat failed", extra={"run_id": self.run_id})


class ReconWorker:
    def __init__(
        self,
        database: Database,
        *,
        clock: Clock,
        interval: float,
        stale_after: timedelta,
        name: str | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.interval = interval
        self.stale_after = stale_after
        self.name = name or worker_name()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="recon-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def wake(self) -> None:
        """A run was queued here: look now rather than at the next poll."""
        self._wake.set()

    def run_once(self, *, heartbeat: bool = False) -> int | None:
        """Claim and execute one run; its id, or ``None`` when nothing was waiting."""
        with self.database.session() as session:
            run_id = recon_runs.claim_next(
                session, now=self.clock(), worker=self.name, stale_after=self.stale_after
            )
        if run_id is None:
            return None
        logger.info("reconciliation run claimed", extra={"run_id": run_id, "worker": self.name})
        if heartbeat:
            interval = max(self.stale_after.total_seconds() / 4, 1.0)
            with _Heartbeat(self.database, run_id, self.name, self.clock, interval):
                execute_run(self.database, run_id, worker=self.name, clock=self.clock)
        else:
            execute_run(self.database, run_id, worker=self.name, clock=self.clock)
        return run_id

    def _run(self) -> None:
        # Instances started together should not poll in step.
        pause = self.interval * random.uniform(0.1, 1.0)
        while not self._stop.is_set():
            self._wake.wait(pause)
            self._wake.clear()
            if self._stop.is_set():
                return
            pause = self.interval
            try:
                while not self._stop.is_set() and self.run_once(heartbeat=True) is not None:
                    pass
            except Exception:
                logger.exception("reconciliation worker failed; trying again next time")
