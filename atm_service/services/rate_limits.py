"""Sliding-window rate limits on logging in and on asking for lock codes.

Each attempt is a row (:class:`~atm_service.models.rate_limits.RateLimitHit`)
in the database, so every service instance over one database counts the same
attempts: a limit holds for the whole service, not per instance. An attempt is
admitted when, for each of its checks, fewer than ``max_hits`` attempts were
admitted in the last ``window``; then it is counted in all of them. A refused
attempt is not counted (hammering does not extend the wait) and gets
:class:`~atm_service.errors.TooManyRequests` with the seconds until the oldest
counted attempt leaves the window (the ``Retry-After`` header).

The limits (settings, 0 turns one off):

- logging in: per user name (``ATM_LOGIN_ATTEMPTS_PER_USER``) and per client
  address (``ATM_LOGIN_ATTEMPTS_PER_ADDRESS``) in ``ATM_LOGIN_ATTEMPTS_WINDOW_S``;
  this comes before the password is checked, so a flood costs no Argon2 work,
  and beside the account lockout after repeated failures;
- lock codes (asking for a code, revealing one, reporting a seal): per user
  (``ATM_CODE_REQUESTS_PER_USER``) and per client address
  (``ATM_CODE_REQUESTS_PER_ADDRESS``) in ``ATM_CODE_REQUESTS_WINDOW_S``.

On PostgreSQL, a transaction-level advisory lock per (limit, subject) makes
counting and inserting atomic across instances, and the transaction commits
without waiting for the disk (``synchronous_commit`` off for it alone: a count
lost in a crash only lets one more attempt through); SQLite has one writer at a
time anyway. Each admission also removes up to :data:`PRUNE_BATCH` rows older
than :data:`RETENTION` (the longest window there can be), skipping rows another
transaction holds, so the table stays small without a sweeper.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlmodel import Session, col, delete, func, select

from atm_service.config import Settings
from atm_service.errors import TooManyRequests
from atm_service.models.rate_limits import RateLimitHit

PRUNE_BATCH = 100
# Rows are kept this long: the longest window the settings allow.
RETENTION = timedelta(days=1)


@dataclass(frozen=True)
class Limit:
    """At most ``max_hits`` attempts per subject in any ``window`` (0: no limit)."""

    name: str
    max_hits: int
    window: timedelta
    what: str  # "login attempts", for the refusal's message


@dataclass(frozen=True)
class Check:
    limit: Limit
    subject: str


def login_checks(settings: Settings, *, username: str, address: str) -> list[Check]:
    window = timedelta(seconds=settings.login_attempts_window_s)
    per_user = Limit("login-user", settings.login_attempts_per_user, window, "login attempts")
    per_address = Limit(
        "login-address", settings.login_attempts_per_address, window, "login attempts"
    )
    return [Check(per_user, username.strip().lower()), Check(per_address, address)]


def code_checks(settings: Settings, *, user_id: int, address: str) -> list[Check]:
    window = timedelta(seconds=settings.code_requests_window_s)
    what = "lock code requests"
    per_user = Limit("code-user", settings.code_requests_per_user, window, what)
    per_address = Limit("code-address", settings.code_requests_per_address, window, what)
    return [Check(per_user, str(user_id)), Check(per_address, address)]


def _digest(subject: str) -> str:
    return hashlib.sha256(subject.encode()).hexdigest()


def _advisory_key(limit: str, subject: str) -> int:
    raw = hashlib.sha256(f"rate-limit\x00{limit}\x00{subject}".encode()).digest()[:8]
    return int.from_bytes(raw, "big", signed=True)


def _prune(session: Session, now: datetime) -> None:
    """Remove up to :data:`PRUNE_BATCH` rows older than any window, skipping locked ones."""
    expired = (
        select(RateLimitHit.id)
        .where(col(RateLimitHit.at) <= now - RETENTION)
        .order_by(col(RateLimitHit.at))
        .limit(PRUNE_BATCH)
        .with_for_update(skip_locked=True)
    )
    session.exec(delete(RateLimitHit).where(col(RateLimitHit.id).in_(expired.scalar_subquery())))


def admit(session: Session, checks: Sequence[Check], *, now: datetime) -> None:
    """Count one attempt against every check, or raise ``TooManyRequests`` (counting none).

    Commits: the attempt is counted whatever the caller does next. A few round trips
    whatever the number of checks: the advisory locks, one count, one prune, one insert.
    """
    active = sorted(
        ((check.limit, _digest(check.subject)) for check in checks if check.limit.max_hits > 0),
        key=lambda pair: (pair[0].name, pair[1]),
    )
    if not active:
        return
    if session.get_bind().dialect.name == "postgresql":
        keys = {
            f"k{n}": _advisory_key(limit.name, subject) for n, (limit, subject) in enumerate(active)
        }
        locks = ", ".join(f"pg_advisory_xact_lock(:{name})" for name in keys)
        # A count lost in a crash is harmless: this commit need not wait for the disk.
        quick = "set_config('synchronous_commit', 'off', true)"
        session.execute(sa.text(f"SELECT {quick}, {locks}"), keys)
    counted = session.exec(
        select(
            RateLimitHit.limit_name, RateLimitHit.subject, func.count(), func.min(RateLimitHit.at)
        )
        .where(
            sa.or_(
                *(
                    sa.and_(
                        col(RateLimitHit.limit_name) == limit.name,
                        col(RateLimitHit.subject) == subject,
                        col(RateLimitHit.at) > now - limit.window,
                    )
                    for limit, subject in active
                )
            )
        )
        .group_by(col(RateLimitHit.limit_name), col(RateLimitHit.subject))
    ).all()
    found = {(name, subject): (count, oldest) for name, subject, count, oldest in counted}
    waits: list[tuple[int, Limit]] = []
    for limit, subject in active:
        count, oldest = found.get((limit.name, subject), (0, None))
        if count >= limit.max_hits and oldest is not None:
            wait = math.ceil((oldest + limit.window - now).total_seconds())
            waits.append((max(1, wait), limit))
    if waits:
        session.rollback()
        seconds, limit = max(waits, key=lambda pair: pair[0])
        raise TooManyRequests(
            f"Too many {limit.what}; try again in {seconds} s.", retry_after_s=seconds
        )
    _prune(session, now)
    session.execute(
        sa.insert(RateLimitHit),
        [{"limit_name": limit.name, "subject": subject, "at": now} for limit, subject in active],
    )
    session.commit()
