"""The fleet: sites, service contracts, ATMs and their cassette configuration.

Each entity has a schema family in the style of the FastAPI template:
``XBase`` (shared fields and validation), ``X`` (the table), ``XCreate``,
``XUpdate`` (every field optional) and ``XPublic`` (what the API returns).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from pydantic import field_validator, model_validator
from sqlmodel import Field, SQLModel

from atm_service.models.base import MAX_ID, UTCDateTime, enum_column_type

CODE_PATTERN = r"^[A-Z0-9][A-Z0-9_-]{0,31}$"
TERMINAL_ID_PATTERN = r"^[A-Z0-9]{8}$"
CURRENCY_PATTERN = r"^[A-Z]{3}$"
COUNTRY_PATTERN = r"^[A-Z]{2}$"
HOUR_MINUTE_PATTERN = r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$"
WEEKDAYS_PATTERN = r"^[1-7]{1,7}$"


class EjDialect(StrEnum):
    """Electronic-journal dialects the reconciliation parsers read."""

    NDC = "ndc"
    PROCASH = "procash"


class AtmStatus(StrEnum):
    IN_SERVICE = "in_service"
    OUT_OF_SERVICE = "out_of_service"
    DECOMMISSIONED = "decommissioned"


def _check_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone {value!r}") from exc
    return value


def _check_weekdays(value: str) -> str:
    if len(set(value)) != len(value):
        raise ValueError("each weekday may appear once")
    return "".join(sorted(value))


def minutes_of_day(hour_minute: str) -> int:
    """``"07:30"`` → 450; ``"24:00"`` → 1440."""
    hours, minutes = hour_minute.split(":")
    return int(hours) * 60 + int(minutes)


# --- sites -----------------------------------------------------------------


class SiteBase(SQLModel):
    code: str = Field(
        max_length=32, schema_extra={"pattern": CODE_PATTERN}, description="Short unique site code"
    )
    name: str = Field(min_length=1, max_length=120)
    address_line: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=80)
    postal_code: str = Field(default="", max_length=16)
    country: str = Field(
        max_length=2, schema_extra={"pattern": COUNTRY_PATTERN}, description="ISO 3166-1 alpha-2"
    )
    region: str = Field(min_length=1, max_length=64, description="Service region for dispatch")
    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)
    timezone: str = Field(default="UTC", max_length=64, description="IANA time zone")
    access_notes: str = Field(default="", max_length=500)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str) -> str:
        return _check_timezone(value)


class Site(SiteBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    region: str = Field(max_length=64, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class SiteCreate(SiteBase):
    pass


class SiteUpdate(SQLModel):
    code: str | None = Field(default=None, max_length=32, schema_extra={"pattern": CODE_PATTERN})
    name: str | None = Field(default=None, min_length=1, max_length=120)
    address_line: str | None = Field(default=None, min_length=1, max_length=200)
    city: str | None = Field(default=None, min_length=1, max_length=80)
    postal_code: str | None = Field(default=None, max_length=16)
    country: str | None = Field(
        default=None, max_length=2, schema_extra={"pattern": COUNTRY_PATTERN}
    )
    region: str | None = Field(default=None, min_length=1, max_length=64)
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)
    timezone: str | None = Field(default=None, max_length=64)
    access_notes: str | None = Field(default=None, max_length=500)

    @field_validator("timezone")
    @classmethod
    def _valid_timezone(cls, value: str | None) -> str | None:
        return None if value is None else _check_timezone(value)


class SitePublic(SiteBase):
    id: int
    created_at: datetime
    updated_at: datetime


# --- service contracts ---------------------------------------------------------


class ServiceContractBase(SQLModel):
    code: str = Field(max_length=32, schema_extra={"pattern": CODE_PATTERN})
    customer: str = Field(min_length=1, max_length=120, description="The bank or ATM owner")
    name: str = Field(min_length=1, max_length=120)
    response_minutes: int = Field(
        ge=1, le=7 * 24 * 60, description="Time from fault to engineer on site"
    )
    restore_minutes: int = Field(
        ge=1, le=14 * 24 * 60, description="Time from fault to ATM back in service"
    )
    service_days: str = Field(
        default="1234567",
        max_length=7,
        schema_extra={"pattern": WEEKDAYS_PATTERN},
        description="ISO weekdays (1 = Monday) on which the SLA clock runs",
    )
    service_start: str = Field(
        default="00:00", max_length=5, schema_extra={"pattern": HOUR_MINUTE_PATTERN}
    )
    service_end: str = Field(
        default="24:00", max_length=5, schema_extra={"pattern": HOUR_MINUTE_PATTERN}
    )
    availability_target_pct: float = Field(default=98.0, gt=0, le=100)

    @field_validator("service_days")
    @classmethod
    def _valid_days(cls, value: str) -> str:
        return _check_weekdays(value)

    @model_validator(mode="after")
    def _hours_in_order(self) -> ServiceContractBase:
        if minutes_of_day(self.service_start) >= minutes_of_day(self.service_end):
            raise ValueError("service_start must be before service_end")
        return self


class ServiceContract(ServiceContractBase, table=True):
    __tablename__ = "service_contract"

    id: int | None = Field(default=None, primary_key=True)
    code: str = Field(max_length=32, unique=True, index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class ServiceContractCreate(ServiceContractBase):
    pass


class ServiceContractUpdate(SQLModel):
    code: str | None = Field(default=None, max_length=32, schema_extra={"pattern": CODE_PATTERN})
    customer: str | None = Field(default=None, min_length=1, max_length=120)
    name: str | None = Field(default=None, min_length=1, max_length=120)
    response_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    restore_minutes: int | None = Field(default=None, ge=1, le=14 * 24 * 60)
    service_days: str | None = Field(
        default=None, max_length=7, schema_extra={"pattern": WEEKDAYS_PATTERN}
    )
    service_start: str | None = Field(
        default=None, max_length=5, schema_extra={"pattern": HOUR_MINUTE_PATTERN}
    )
    service_end: str | None = Field(
        default=None, max_length=5, schema_extra={"pattern": HOUR_MINUTE_PATTERN}
    )
    availability_target_pct: float | None = Field(default=None, gt=0, le=100)

    @field_validator("service_days")
    @classmethod
    def _valid_days(cls, value: str | None) -> str | None:
        return None if value is None else _check_weekdays(value)


class ServiceContractPublic(ServiceContractBase):
    id: int
    created_at: datetime
    updated_at: datetime


# --- ATMs and cassettes ------------------------------------------------------


class CassetteBase(SQLModel):
    number: int = Field(ge=1, le=8, description="Cassette (NDC type, XFS usNumber) 1-8")
    denomination: int = Field(gt=0, le=100_000, description="Note value in major units")
    currency: str = Field(max_length=3, schema_extra={"pattern": CURRENCY_PATTERN})
    capacity: int = Field(default=2500, gt=0, le=10_000, description="Notes the cassette holds")
    minimum: int = Field(
        default=0, ge=0, le=10_000, description="Low threshold in notes (XFS ulMinimum)"
    )

    @model_validator(mode="after")
    def _minimum_below_capacity(self) -> CassetteBase:
        if self.minimum >= self.capacity:
            raise ValueError("minimum must be below capacity")
        return self


class Cassette(CassetteBase, table=True):
    __table_args__ = (sa.UniqueConstraint("atm_id", "number"),)

    id: int | None = Field(default=None, primary_key=True)
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )


class CassetteIn(CassetteBase):
    pass


class CassettePublic(CassetteBase):
    pass


def _check_cassettes(cassettes: list[CassetteIn]) -> list[CassetteIn]:
    numbers = [cassette.number for cassette in cassettes]
    duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
    if duplicates:
        raise ValueError(f"cassette numbers must be unique; repeated: {duplicates}")
    return sorted(cassettes, key=lambda cassette: cassette.number)


class AtmBase(SQLModel):
    terminal_id: str = Field(
        max_length=8,
        schema_extra={"pattern": TERMINAL_ID_PATTERN},
        description="8-character terminal id (DE41)",
    )
    site_id: int = Field(gt=0, le=MAX_ID)
    contract_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    vendor: str = Field(min_length=1, max_length=64)
    model: str = Field(min_length=1, max_length=64)
    serial_number: str = Field(default="", max_length=64)
    ej_dialect: EjDialect = Field(sa_type=enum_column_type(EjDialect))
    currency: str = Field(default="USD", max_length=3, schema_extra={"pattern": CURRENCY_PATTERN})
    status: AtmStatus = Field(default=AtmStatus.IN_SERVICE, sa_type=enum_column_type(AtmStatus))
    reject_bin_capacity: int = Field(default=300, gt=0, le=10_000)
    retract_bin_capacity: int = Field(default=100, gt=0, le=10_000)


class Atm(AtmBase, table=True):
    id: int | None = Field(default=None, primary_key=True)
    terminal_id: str = Field(max_length=8, unique=True, index=True)
    site_id: int = Field(foreign_key="site.id", index=True)
    contract_id: int | None = Field(default=None, foreign_key="service_contract.id", index=True)
    created_at: datetime = Field(sa_type=UTCDateTime)
    updated_at: datetime = Field(sa_type=UTCDateTime)


class AtmCreate(AtmBase):
    cassettes: list[CassetteIn] = Field(min_length=1, max_length=8)

    @field_validator("cassettes")
    @classmethod
    def _unique_cassettes(cls, value: list[CassetteIn]) -> list[CassetteIn]:
        return _check_cassettes(value)


class AtmUpdate(SQLModel):
    terminal_id: str | None = Field(
        default=None, max_length=8, schema_extra={"pattern": TERMINAL_ID_PATTERN}
    )
    site_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    contract_id: int | None = Field(default=None, gt=0, le=MAX_ID)
    vendor: str | None = Field(default=None, min_length=1, max_length=64)
    model: str | None = Field(default=None, min_length=1, max_length=64)
    serial_number: str | None = Field(default=None, max_length=64)
    ej_dialect: EjDialect | None = None
    currency: str | None = Field(
        default=None, max_length=3, schema_extra={"pattern": CURRENCY_PATTERN}
    )
    status: AtmStatus | None = None
    reject_bin_capacity: int | None = Field(default=None, gt=0, le=10_000)
    retract_bin_capacity: int | None = Field(default=None, gt=0, le=10_000)
    cassettes: list[CassetteIn] | None = Field(default=None, min_length=1, max_length=8)

    @field_validator("cassettes")
    @classmethod
    def _unique_cassettes(cls, value: list[CassetteIn] | None) -> list[CassetteIn] | None:
        return None if value is None else _check_cassettes(value)


class AtmPublic(AtmBase):
    id: int
    cassettes: list[CassettePublic]
    created_at: datetime
    updated_at: datetime
