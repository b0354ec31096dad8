"""The service-level figures: availability, response and restore times, fixes, SLA."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class AtmAvailability(SQLModel):
    atm_id: int
    terminal_id: str
    region: str
    service_hours: float = Field(description="Hours of the period within the contract's hours")
    down_hours: float = Field(description="Of those, hours the ATM could not serve")
    availability_pct: float | None = Field(description="None when the period has no service hours")
    target_pct: float | None
    meets_target: bool | None


class Kpis(SQLModel):
    period_start: datetime
    period_end: datetime
    region: str | None
    fleet_availability_pct: float | None
    atms: list[AtmAvailability]
    responded: int = Field(description="Tasks whose engineer arrived in the period")
    mean_time_to_respond_minutes: float | None
    restored: int = Field(description="Repairs resolved by an engineer in the period")
    mean_time_to_restore_minutes: float | None
    first_visits: int = Field(description="First-line or root repairs finished in the period")
    first_time_fix_rate_pct: float | None
    response_sla_pct: float | None = Field(description="Arrivals within the response deadline")
    restore_sla_pct: float | None = Field(description="Resolutions within the restore deadline")
    open_tasks: int
    open_breached: int = Field(description="Open tasks already past a deadline")
