"""Users, their roles, and login sessions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime, enum_column_type


class Role(StrEnum):
    """What a user does; every route names the roles that may use it."""

    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    ENGINEER = "engineer"
    RECONCILER = "reconciler"
    AUDITOR = "auditor"


USERNAME_PATTERN = r"^[a-z][a-z0-9._-]{1,63}$"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
MIN_PASSWORD_LENGTH = 12


class UserBase(SQLModel):
    username: str = Field(max_length=64, schema_extra={"pattern": USERNAME_PATTERN})
    full_name: str = Field(min_length=1, max_length=120)
    email: str | None = Field(default=None, max_length=254, schema_extra={"pattern": EMAIL_PATTERN})
    role: Role = Field(sa_type=enum_column_type(Role))


class User(UserBase, table=True):
    __tablename__ = "app_user"

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=64, unique=True, index=True)
    email: str | None = Field(default=None, max_length=254)
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    password_changed_at: datetime = Field(sa_type=UTCDateTime)


class UserCreate(UserBase):
    password: str = Field(min_length=MIN_PASSWORD_LENGTH, max_length=256)


class UserUpdate(SQLModel):
    full_name: str | None = Field(default=None, min_length=1, max_length=120)
    email: str | None = Field(default=None, max_length=254, schema_extra={"pattern": EMAIL_PATTERN})
    role: Role | None = None
    is_active: bool | None = None
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=256)


class UserPublic(SQLModel):
    id: int
    username: str
    full_name: str
    email: str | None
    role: Role
    is_active: bool
    locked_until: datetime | None


class UserSession(SQLModel, table=True):
    """A login: the browser holds a signed random token, we keep only its hash."""

    __tablename__ = "user_session"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("app_user.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    csrf_token: str = Field(max_length=64)
    created_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    last_seen_at: datetime = Field(sa_type=UTCDateTime)
