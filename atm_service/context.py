"""What every request handler needs, built once by :func:`atm_service.app.create_app`."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.templating import Jinja2Templates

from atm_service.clock import Clock
from atm_service.config import Settings
from atm_service.db import Database
from atm_service.live import LiveUpdates
from atm_service.metrics import Metrics
from atm_service.recon_worker import ReconWorker
from atm_service.security.passwords import Passwords
from atm_service.services.lock_secrets import LockSecrets
from atm_service.services.locks import Timing


@dataclass
class AppContext:
    settings: Settings
    database: Database
    clock: Clock
    passwords: Passwords
    templates: Jinja2Templates
    live: LiveUpdates
    locks: LockSecrets

    @property
    def lock_timing(self) -> Timing:
        return Timing(
            access_minutes=self.settings.lock_access_minutes,
            seal_grace_minutes=self.settings.lock_seal_grace_minutes,
        )

    recon: ReconWorker
    metrics: Metrics
    # The schema revision this code needs; /readyz compares the database's with it.
    schema_head: str

    @property
    def secret(self) -> bytes:
        return self.settings.secret_key.get_secret_value().encode()
