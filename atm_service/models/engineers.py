"""Field engineers: the dispatch profile of a user with the engineer role.

A profile holds what assignment needs to know: skills (first-line, second-line,
cash), home region, working hours in the engineer's time zone, and the current
location. The engineer's load is not stored; it is the tasks they hold.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import field_validator, model_validator
from sqlmodel import Field, SQLModel

from atm_service.models.base import MAX_ID, UTCDateTime
from atm_service.models.fleet import (
    HOUR_MINUTE_PATTERN,
    WEEKDAYS_PATTERN,
    _check_timezone,
    _check_weekdays,
    minutes_of_day,
)


class Skill(StrEnum):
    """What an engineer may be sent to do."""

    FLM = "flm"  # first line: jams, cassette errors, bins; no parts, needs the safe
    SLM = "slm"  # second line: replaces modules and parts
    CASH = "cash"  # replenishment: loads and counts cassettes


SKILLS_PATTERN = r"^(cash|flm|slm)(,(cash|flm|slm)){0,2}$"


def normalise_skills(value: str | list[str] | set[str]) -> str:
    """``"slm, flm"`` or ``["slm", "flm"]`` → ``"flm,slm"``; refuses unknown skills."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | set | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ValueError("skills are text such as 'flm,cash' or a list of skill names")
    skills = {item.strip().lower() for item in items if item.strip()}
    if not skills:
        raise ValueError("at least one skill is needed (flm, slm, cash)")
    unknown = sorted(skills - {skill.value for skill in Skill})
    if unknown:
        raise ValueError(f"unknown skill(s) {unknown}; use flm, slm or cash")
    return ",".join(sorted(skills))


def _check_shift(start: str, end: str) -> None:
    if start == end or (start, end) == ("24:00", "24:00"):
        raise ValueError("shift_start and shift_end must differ (use 00:00-24:00 for all day)")
    if start == "24:00":
        raise ValueError("shift_start may not be 24:00")


class EngineerBase(SQLModel):
    skills: str = Field(
        max_length=16,
        schema_extra={"pattern": SKILLS_PATTERN},
        description="Comma-separated skills: flm, slm, cash",
    )
    home_region: str = Field(min_length=1, max_length=64, description="Region they cover")
    shift_days: str = Field(
        default="12345",
        max_length=7,
        schema_extra={"pattern": WEEKDAYS_PATTERN},
        description="ISO weekdays (1 = Monday) on which a shift starts",
    )
    shift_start: str = Field(
        default="08:00", max_length=5, schema_extra={"pattern": HOUR_MINUTE_PATTERN}
    )
    shift_end: str = Field(
        default="17:00",
        max_length=5,
        schema_extra={"pattern": HOUR_MINUTE_PATTERN},
        description="Before shift_start for a shift that runs past midnight",
    )
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone of the shift")
    latitude: float = Field(ge=-90, le=90, description="Current (or base) location")
    longitude: float = Field(ge=-180, le=180)
    phone: str = Field(default="", max_length=32)
    active: bool = True

    @field_validator("skills", mode="before")
    @classmethod
    def _valid_skills(cls, value: str | list[str]) -> str:
        return normalise_skills(value)

    @field_validator("shift_days")
    @classmethod
    def _valid_days(cls, value: str) -> str:
        return _check_weekdays(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return _check_timezone(value)

    @model_validator(mode="after")
    def _valid_shift(self) -> EngineerBase:
        _check_shift(self.shift_start, self.shift_end)
        return self

    def has_skill(self, skill: Skill) -> bool:
        return skill.value in self.skills.split(",")


class Engineer(EngineerBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("app_user.id", ondelete="CASCADE"),
            nullable=False,
            unique=True,
            index=True,
        )
    )
    home_region: str = Field(max_length=64, index=True)
    location_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class EngineerCreate(EngineerBase):
    user_id: int = Field(gt=0, le=MAX_ID, description="A user with the engineer role")


class EngineerUpdate(SQLModel):
    skills: str | None = Field(default=None, max_length=16)
    home_region: str | None = Field(default=None, min_length=1, max_length=64)
    shift_days: str | None = Field(
        default=None, max_length=7, schema_extra={"pattern": WEEKDAYS_PATTERN}
    )
    shift_start: str | None = Field(
        default=None, max_length=5, schema_extra={"pattern": HOUR_MINUTE_PATTERN}
    )
    shift_end: str | None = Field(
        default=None, max_length=5, schema_extra={"pattern": HOUR_MINUTE_PATTERN}
    )
    timezone: str | None = Field(default=None, max_length=64)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    phone: str | None = Field(default=None, max_length=32)
    active: bool | None = None

    @field_validator("skills", mode="before")
    @classmethod
    def _valid_skills(cls, value: str | list[str] | None) -> str | None:
        return None if value is None else normalise_skills(value)

    @field_validator("shift_days")
    @classmethod
    def _valid_days(cls, value: str | None) -> str | None:
        return None if value is None else _check_weekdays(value)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class LocationIn(SQLModel):
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class EngineerPublic(EngineerBase):
    id: int
    user_id: int
    username: str
    full_name: str
    location_at: datetime | None
    open_tasks: int = Field(description="Tasks assigned to them and not yet resolved")


def check_shift(start: str, end: str) -> None:
    """Raise ``ValueError`` for a shift that cannot be worked (used on partial updates)."""
    _check_shift(start, end)
    minutes_of_day(start)
    minutes_of_day(end)
