"""What a device reports: status, unsolicited events and XFS cash units.

These are the shapes the simulated ATM serves, the agent uploads and device
ingest stores; dispatch validates them with these models before acting.
Times are terminal local time without an offset; the site's time zone turns
them into UTC.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class DeviceName(StrEnum):
    DISPENSER = "dispenser"
    CARD_READER = "card_reader"
    RECEIPT_PRINTER = "receipt_printer"
    JOURNAL_PRINTER = "journal_printer"
    ENCRYPTING_PIN_PAD = "encrypting_pin_pad"

    @property
    def label(self) -> str:
        return {
            DeviceName.DISPENSER: "Dispenser",
            DeviceName.CARD_READER: "Card reader",
            DeviceName.RECEIPT_PRINTER: "Receipt printer",
            DeviceName.JOURNAL_PRINTER: "Journal printer",
            DeviceName.ENCRYPTING_PIN_PAD: "PIN pad",
        }[self]


DeviceState = Literal["ok", "warning", "fault"]


class _Signal(BaseModel):
    model_config = ConfigDict(extra="ignore")

    time: datetime = Field(description="Terminal local time, ISO 8601 without offset")


class CashUnitThreshold(_Signal):
    kind: Literal["cash_unit_threshold"]
    unit: int = Field(ge=1, le=16, description="XFS usNumber")
    status: Literal["low", "empty", "high", "full", "ok"]


class CashUnitError(_Signal):
    kind: Literal["cash_unit_error"]
    unit: int = Field(ge=1, le=16)
    error: Literal["jam", "missing", "inop", "pick_failure"]


class HardwareError(_Signal):
    kind: Literal["hardware_error"]
    device: DeviceName
    severity: Literal["fatal", "warning"]
    code: str = Field(default="", max_length=32)
    description: str = Field(default="", max_length=500)


class HardwareRecovered(_Signal):
    kind: Literal["hardware_recovered"]
    device: DeviceName


class SafeDoor(_Signal):
    kind: Literal["safe_door"]
    state: Literal["open", "closed"]


class ServiceMode(_Signal):
    kind: Literal["service_mode"]
    in_service: bool
    reason: str = Field(default="", max_length=200)


DeviceEvent = Annotated[
    CashUnitThreshold | CashUnitError | HardwareError | HardwareRecovered | SafeDoor | ServiceMode,
    Field(discriminator="kind"),
]

EVENT_KINDS = frozenset(
    {
        "cash_unit_threshold",
        "cash_unit_error",
        "hardware_error",
        "hardware_recovered",
        "safe_door",
        "service_mode",
    }
)


class DeviceStatus(_Signal):
    in_service: bool
    safe_door: Literal["open", "closed"] = "closed"
    devices: dict[str, DeviceState] = Field(default_factory=dict)
    details: dict[str, str] = Field(default_factory=dict)


class CashUnit(BaseModel):
    """One XFS ``WFSCDMCASHUNIT``; fields beyond these are kept as they come."""

    model_config = ConfigDict(extra="allow")

    usNumber: int = Field(ge=1, le=16)  # XFS field names
    usType: int = Field(ge=0, le=20)
    usStatus: int = Field(ge=0, le=20)
    cUnitID: str = ""
    cCurrencyID: str = ""
    ulValues: int = Field(default=0, ge=0)
    ulCount: int = Field(default=0, ge=0)
    ulMinimum: int = Field(default=0, ge=0)
    ulMaximum: int = Field(default=0, ge=0)


# XFS usType and usStatus values the rules act on.
XFS_REJECT = 2
XFS_BILL_CASSETTE = 3
XFS_RETRACT = 6
XFS_RECYCLING = 12
XFS_OK, XFS_FULL, XFS_HIGH, XFS_LOW, XFS_EMPTY, XFS_INOP, XFS_MISSING = 0, 1, 2, 3, 4, 5, 6
