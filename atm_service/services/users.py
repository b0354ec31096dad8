"""Managing user accounts."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, func, select

from atm_service.errors import Conflict, InvalidInput, NotFound
from atm_service.models.users import Role, User, UserCreate, UserSession, UserUpdate
from atm_service.security.passwords import Passwords


def get_user(session: Session, *, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def find_user(session: Session, *, username: str) -> User | None:
    return session.exec(select(User).where(col(User.username) == username.lower())).first()


def list_users(
    session: Session, *, role: Role | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[User], int]:
    query = select(User)
    count = select(func.count()).select_from(User)
    if role is not None:
        query = query.where(col(User.role) == role)
        count = count.where(col(User.role) == role)
    users = list(session.exec(query.order_by(col(User.username)).offset(offset).limit(limit)))
    return users, session.exec(count).one()


def create_user(session: Session, *, data: UserCreate, passwords: Passwords, now: datetime) -> User:
    if find_user(session, username=data.username) is not None:
        raise Conflict(f"User name {data.username!r} is taken.", field="username")
    user = User(
        username=data.username.lower(),
        full_name=data.full_name,
        email=data.email,
        role=data.role,
        password_hash=passwords.hash(data.password),
        created_at=now,
        password_changed_at=now,
    )
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def update_user(
    session: Session, *, user_id: int, data: UserUpdate, passwords: Passwords, now: datetime
) -> User:
    user = get_user(session, user_id=user_id)
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name != "email":  # only the e-mail address may be removed
            raise InvalidInput(f"{name} may not be null.", field=name)
    password = changes.pop("password", None)
    for name, value in changes.items():
        setattr(user, name, value)
    ends_sessions = password is not None or changes.get("is_active") is False
    if password is not None:
        user.password_hash = passwords.hash(password)
        user.password_changed_at = now
    session.add(user)
    if ends_sessions or "role" in changes:
        session.exec(delete(UserSession).where(col(UserSession.user_id) == user_id))
    session.commit()
    session.refresh(user)
    return user


def unlock_user(session: Session, *, user_id: int) -> User:
    user = get_user(session, user_id=user_id)
    user.locked_until = None
    user.failed_logins = 0
    session.add(user)
    session.commit()
    session.refresh(user)
    return user


def set_password(
    session: Session, *, username: str, password: str, passwords: Passwords, now: datetime
) -> User:
    user = find_user(session, username=username)
    if user is None:
        raise NotFound(f"No user named {username!r}.")
    user.password_hash = passwords.hash(password)
    user.password_changed_at = now
    user.locked_until = None
    user.failed_logins = 0
    session.add(user)
    session.exec(delete(UserSession).where(col(UserSession.user_id) == user.id))
    session.commit()
    return user
