"""Service settings, read from the environment (prefix ``ATM_``) through :func:`get_settings`.

Nothing here runs at import time: callers build a :class:`Settings` (or take the
cached one from :func:`get_settings`) and pass it to :func:`atm_service.create_app`.
"""

from __future__ import annotations

from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SECRET = "development-only-secret-change-me"  # noqa: S105 - refused outside development


class Settings(BaseSettings):
    """Everything the central service can be configured with."""

    model_config = SettingsConfigDict(env_prefix="ATM_", env_file=None, extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///var/atm_service.db"
    database_pool_size: int = Field(default=10, ge=1, le=200)

    secret_key: SecretStr = SecretStr(DEVELOPMENT_SECRET)
    session_cookie_name: str = "atm_session"
    session_lifetime_minutes: int = Field(default=12 * 60, ge=1)
    session_idle_minutes: int = Field(default=120, ge=1)
    cookie_secure: bool = False

    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)

    # Argon2id cost; the defaults follow RFC 9106's second recommended option.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=64 * 1024, ge=8)
    argon2_parallelism: int = Field(default=2, ge=1)

    # Device ingest: how far a signed request's timestamp may be from the service's
    # clock, and how long an ATM may stay silent before it is shown as offline.
    device_clock_skew_s: int = Field(default=300, ge=5, le=3600)
    device_offline_after_s: int = Field(default=180, ge=10)
    # A remote command an ATM's agent has not collected within this time expires.
    device_command_ttl_s: int = Field(default=900, ge=10)
    # How many device requests each server process works on at once, in worker threads.
    device_threads: int = Field(default=4, ge=1, le=64)
    # Dispatch: travel estimates, live updates, and the periodic sweep that assigns
    # waiting tasks and escalates deadlines at risk (0 turns the sweep off).
    dispatch_road_speed_kmh: float = Field(default=40.0, gt=0, le=200)
    dispatch_poll_interval_ms: int = Field(default=200, ge=20, le=5000)
    dispatch_sweep_seconds: float = Field(default=30.0, ge=0)
    dispatch_stream_max_seconds: int = Field(default=600, ge=1)
    # Reconciliation: each instance's worker thread looks for queued runs this often
    # (0 turns it off); the files of one run may hold this many bytes in all (the request
    # body, and an archive once unpacked); a running run whose instance has been silent
    # this long is taken over by another.
    recon_poll_seconds: float = Field(default=2.0, ge=0)
    recon_upload_max_bytes: int = Field(default=256 * 1024 * 1024, ge=1024)
    recon_stale_after_s: int = Field(default=600, ge=30)

    # Lock control: the master key that encrypts the lock keys (a file made by
    # `atm-lock new-master-key`, or its text in ATM_LOCK_MASTER_KEY) and the Ed25519 key
    # that signs the lock-access log's checkpoints (a PEM file made by `atm-lock
    # new-signing-key`, or its text in ATM_LOCK_LOG_SIGNING_KEY). Neither is ever stored
    # in the database. Without them every lock operation is refused with a 503.
    lock_master_key_file: Path | None = None
    lock_master_key: SecretStr | None = None
    lock_log_signing_key_file: Path | None = None
    lock_log_signing_key: SecretStr | None = None
    lock_log_id: str = Field(
        default="atm-service:locks", pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"
    )
    lock_checkpoint_every: int = Field(default=1000, ge=1, le=1_000_000)
    # A code may be issued from the engineer's arrival until the task's restore
    # deadline or this many minutes after arrival, whichever is later.
    lock_access_minutes: int = Field(default=240, ge=10, le=24 * 60)
    # A close seal not reported this long after its code stops opening raises an alarm.
    lock_seal_grace_minutes: int = Field(default=30, ge=0, le=24 * 60)

    # Cash planning (docs/cash-planning.md): costs and limits of a replenishment plan,
    # the days of history the forecast uses, the calendar it knows, how visits are routed,
    # and how many days ahead planned visits become replenishment tasks (0: never by
    # themselves; the plan's page and API can still do it).
    cash_visit_cost: float = Field(default=150.0, ge=0, le=100_000)
    cash_idle_rate: float = Field(default=0.08, ge=0, le=1)
    cash_cashout_target: float = Field(default=0.02, gt=0, lt=0.5)
    cash_horizon_days: int = Field(default=14, ge=1, le=28)
    cash_max_cycle_days: int = Field(default=14, ge=1, le=28)
    cash_history_days: int = Field(default=120, ge=21, le=730)
    cash_bundle_notes: int = Field(default=100, ge=1, le=10_000)
    cash_arrival_fraction: float = Field(default=0.5, ge=0, le=1)
    cash_respect_minimum: bool = True
    cash_paths: int = Field(default=300, ge=20, le=5000)
    cash_holidays: list[date] = Field(default_factory=list)
    cash_payday_days: list[int] = Field(default_factory=lambda: [1, 15])
    cash_payday_last: bool = True
    cash_service_minutes: int = Field(default=45, ge=5, le=600)
    cash_route_days: int = Field(default=3, ge=0, le=28)
    cash_routing_seconds: float = Field(default=1.0, gt=0, le=60)
    cash_task_lead_days: int = Field(default=1, ge=0, le=7)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)

    @model_validator(mode="after")
    def _refuse_development_secret_in_production(self) -> Settings:
        if self.environment == "production":
            secret = self.secret_key.get_secret_value()
            if secret == DEVELOPMENT_SECRET or len(secret) < 32:
                raise ValueError(
                    "ATM_SECRET_KEY must be set to a random value of at least 32 characters "
                    "in production"
                )
        return self


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings()
