"""Runs the dispatch sweep (:mod:`atm_service.services.sweep`), the planned replenishments
(:func:`atm_service.services.cash_planning.dispatch_due`: the newest cash plan's visits
due soon become tasks) and the lock sweep (:mod:`atm_service.services.lock_sweep`: seals
overdue) on a thread of each instance.

Started by the application's lifespan when ``dispatch_sweep_seconds`` is
above zero; stopped with it.
"""

from __future__ import annotations

import logging
import random
import threading

from atm_service.clock import Clock
from atm_service.db import Database
from atm_service.services import cash_planning, lock_sweep, sweep
from atm_service.services.lock_secrets import LockSecrets

logger = logging.getLogger("atm_service.dispatch")


class Sweeper:
    def __init__(
        self,
        database: Database,
        *,
        clock: Clock,
        interval: float,
        speed_kmh: float,
        locks: LockSecrets | None = None,
        cash_lead_days: int = 0,
    ) -> None:
        self.database = database
        self.locks = locks
        self.clock = clock
        self.interval = interval
        self.speed_kmh = speed_kmh
        self.cash_lead_days = cash_lead_days
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self._thread is None and self.interval > 0:
            self._thread = threading.Thread(target=self._run, name="dispatch-sweep", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        # Instances started together should not sweep in step.
        pause = self.interval * random.uniform(0.5, 1.5)
        while not self._stop.wait(pause):
            pause = self.interval
            try:
                result = sweep.run(
                    self.database.session, now=self.clock(), speed_kmh=self.speed_kmh
                )
            except Exception:
                logger.exception("dispatch sweep failed; trying again next time")
                continue
            if self.cash_lead_days > 0:
                try:
                    with self.database.session() as session:
                        opened = cash_planning.dispatch_due(
                            session,
                            now=self.clock(),
                            lead_days=self.cash_lead_days,
                            speed_kmh=self.speed_kmh,
                        )
                    if opened:
                        logger.info("planned replenishments dispatched", extra={"tasks": opened})
                except Exception:
                    logger.exception("planned replenishments failed; trying again next time")
            if self.locks is not None:
                try:
                    lock_sweep.run(self.database.session, secrets=self.locks, now=self.clock())
                except Exception:
                    logger.exception("lock sweep failed; trying again next time")
            if result.assigned or result.escalated:
                logger.info(
                    "dispatch sweep",
                    extra={"assigned": result.assigned, "escalated": result.escalated},
                )
