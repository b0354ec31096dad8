"""Logging in and out, sessions, and locking accounts after repeated failures."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, delete, select

from atm_service.config import Settings
from atm_service.errors import AccountLocked, LoginFailed
from atm_service.models.users import User, UserSession
from atm_service.security import tokens
from atm_service.security.passwords import Passwords
from atm_service.services import rate_limits

# Write last_seen_at at most this often, not on every request.
_TOUCH_INTERVAL = timedelta(minutes=1)


@dataclass(frozen=True)
class LoginGrant:
    """What a successful login gives the browser: the raw token is never stored."""

    user: User
    token: str
    csrf_token: str
    expires_at: datetime


def _lock_message(until: datetime) -> str:
    return (
        "This account is locked after repeated failed logins until "
        f"{until:%Y-%m-%d %H:%M} UTC; try again then or ask an administrator."
    )


def login(
    session: Session,
    *,
    settings: Settings,
    passwords: Passwords,
    username: str,
    password: str,
    address: str,
    now: datetime,
) -> LoginGrant:
    """Check the credentials and open a session, or raise ``LoginFailed``/``AccountLocked``,
    or ``TooManyRequests`` when the user name or the client ``address`` tried too often."""
    username = username.strip().lower()
    rate_limits.admit(
        session, rate_limits.login_checks(settings, username=username, address=address), now=now
    )
    user = session.exec(
        select(User).where(col(User.username) == username).with_for_update()
    ).first()
    if user is not None and user.locked_until is not None and user.locked_until > now:
        raise AccountLocked(_lock_message(user.locked_until), until=user.locked_until)
    matches = passwords.verify(user.password_hash if user else None, password)
    if user is None or not matches:
        if user is not None:
            user.failed_logins += 1
            if user.failed_logins >= settings.login_max_failures:
                user.failed_logins = 0
                user.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
                session.add(user)
                session.commit()
                raise AccountLocked(_lock_message(user.locked_until), until=user.locked_until)
            session.add(user)
            session.commit()
        raise LoginFailed("Wrong user name or password.")
    if not user.is_active:
        raise LoginFailed("This account is disabled; ask an administrator.")
    if passwords.needs_rehash(user.password_hash):
        user.password_hash = passwords.hash(password)
    user.failed_logins = 0
    user.locked_until = None
    token = tokens.new_token()
    csrf = tokens.new_token()
    expires = now + timedelta(minutes=settings.session_lifetime_minutes)
    assert user.id is not None
    session.add(user)
    session.add(
        UserSession(
            token_hash=tokens.digest(token),
            user_id=user.id,
            csrf_token=csrf,
            created_at=now,
            expires_at=expires,
            last_seen_at=now,
        )
    )
    # Sessions that ended long ago are removed as their owner logs in again.
    session.exec(
        delete(UserSession).where(
            col(UserSession.user_id) == user.id, col(UserSession.expires_at) < now
        )
    )
    session.commit()
    return LoginGrant(user=user, token=token, csrf_token=csrf, expires_at=expires)


def resolve_session(
    session: Session, *, settings: Settings, token: str, now: datetime
) -> tuple[User, UserSession] | None:
    """The user and session behind a token, if the session is still alive."""
    row = session.exec(
        select(UserSession, User)
        .join(User, col(User.id) == col(UserSession.user_id))
        .where(col(UserSession.token_hash) == tokens.digest(token))
    ).first()
    if row is None:
        return None
    user_session, user = row
    idle_limit = user_session.last_seen_at + timedelta(minutes=settings.session_idle_minutes)
    if user_session.expires_at <= now or idle_limit <= now or not user.is_active:
        session.delete(user_session)
        session.commit()
        return None
    if now - user_session.last_seen_at >= _TOUCH_INTERVAL:
        user_session.last_seen_at = now
        session.add(user_session)
        session.commit()
    return user, user_session


def logout(session: Session, *, token: str) -> None:
    session.exec(delete(UserSession).where(col(UserSession.token_hash) == tokens.digest(token)))
    session.commit()
