"""Cash planning: daily demand history, replenishment plans, their visits, forecasts and routes.

* :class:`CashDemandDay`: the notes an ATM paid out of one denomination on one
  (local) day, derived from the cash-unit counters the device reported or
  imported from a bank's records; ``observed`` is false on days the figure
  understates the demand (a cassette of that denomination ran empty, the
  counters had a gap), which the forecast leaves out.
* :class:`CashPlan`: one planning run over a horizon, with its parameters and totals.
* :class:`CashPlanAtm`: what the plan found for one ATM: risk, latest safe
  day, costs, time to minimum per cassette; or why it could not plan it.
* :class:`CashPlanVisit`: a planned visit: day, notes per cassette, the cash-out
  chance until the next visit, the route (engineer, order, arrival) and the
  replenishment task opened for it.
* :class:`CashForecastDay`: the forecast the plan used, per ATM, denomination
  and day, kept to compare with what happened.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from atm_service.models.base import UTCDateTime


class CashDemandDay(SQLModel, table=True):
    __tablename__ = "cash_demand_day"

    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), primary_key=True
        )
    )
    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    denomination: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True))
    notes: int = Field(ge=0)
    observed: bool = True
    source: str = Field(max_length=16, description="counters or import")
    updated_at: datetime = Field(sa_type=UTCDateTime)


class CashPlan(SQLModel, table=True):
    __tablename__ = "cash_plan"

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(sa_type=UTCDateTime, index=True)
    created_by: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("app_user.id", ondelete="SET NULL"), nullable=True
        ),
    )
    first_day: date = Field(sa_type=sa.Date)
    horizon_days: int
    region: str | None = Field(default=None, max_length=64)
    parameters: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    totals: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )


class CashPlanAtm(SQLModel, table=True):
    __tablename__ = "cash_plan_atm"

    plan_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("cash_plan.id", ondelete="CASCADE"), primary_key=True
        )
    )
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    planned: bool
    note: str = Field(default="", max_length=300, description="Why it was not planned")
    at_risk: bool = False
    latest_safe_day: date | None = Field(default=None, sa_type=sa.Date)
    visit_cost: float = 0.0
    idle_cost: float = 0.0
    cash_now: int = Field(default=0, description="Major units in the cassettes when planned")
    depletion: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="Per cassette: days to its minimum (p10, p50, p90) and the chance in horizon",
    )
    cassettes: list[dict[str, Any]] = Field(
        default_factory=list,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="The cassettes as planned from: number, denomination, count, minimum, capacity",
    )


class CashPlanVisit(SQLModel, table=True):
    __tablename__ = "cash_plan_visit"
    __table_args__ = (sa.UniqueConstraint("plan_id", "atm_id", "day"),)

    id: int | None = Field(default=None, primary_key=True)
    plan_id: int = Field(
        sa_column=sa.Column(
            sa.Integer,
            sa.ForeignKey("cash_plan.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        )
    )
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), nullable=False, index=True
        )
    )
    day: date = Field(sa_type=sa.Date, index=True)
    loads: dict[str, int] = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="Cassette number → notes to load",
    )
    notes: dict[str, int] = Field(
        default_factory=dict,
        sa_column=sa.Column(sa.JSON, nullable=False),
        description="Denomination → notes to load",
    )
    value: int = Field(description="Major units loaded")
    covers_until: date = Field(sa_type=sa.Date)
    cashout_probability: float
    engineer_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("engineer.id", ondelete="SET NULL"), nullable=True
        ),
    )
    route_order: int | None = None
    arrival: datetime | None = Field(default=None, sa_type=UTCDateTime)
    departure: datetime | None = Field(default=None, sa_type=UTCDateTime)
    task_id: int | None = Field(
        default=None,
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("task.id", ondelete="SET NULL"), nullable=True, index=True
        ),
    )


class CashForecastDay(SQLModel, table=True):
    __tablename__ = "cash_forecast_day"

    plan_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("cash_plan.id", ondelete="CASCADE"), primary_key=True
        )
    )
    atm_id: int = Field(
        sa_column=sa.Column(
            sa.Integer, sa.ForeignKey("atm.id", ondelete="CASCADE"), primary_key=True, index=True
        )
    )
    denomination: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True))
    day: date = Field(sa_column=sa.Column(sa.Date, primary_key=True))
    mean: float
    lower: float
    upper: float


# --- API schemas ---------------------------------------------------------------


class DemandDayIn(SQLModel):
    day: date
    denomination: int = Field(gt=0, le=100_000, description="Note value in major units")
    notes: int = Field(ge=0, le=1_000_000, description="Notes paid out that day")
    observed: bool = Field(
        default=True, description="False when the figure understates the demand (ran out)"
    )


class DemandImport(SQLModel):
    days: list[DemandDayIn] = Field(min_length=1, max_length=5000)


class DemandDayPublic(SQLModel):
    day: date
    denomination: int
    notes: int
    observed: bool
    source: str


class DemandRefresh(SQLModel):
    start: date
    end: date


class DemandSaved(SQLModel):
    days: int = Field(description="Rows written (one per day and denomination)")


class PlanRequest(SQLModel):
    region: str | None = Field(default=None, max_length=64)
    horizon_days: int | None = Field(default=None, ge=1, le=28)
    visit_cost: float | None = Field(default=None, ge=0, le=100_000)
    idle_cash_rate: float | None = Field(default=None, ge=0, le=1)
    cashout_target: float | None = Field(default=None, gt=0, lt=0.5)


class PlanVisitPublic(SQLModel):
    id: int
    atm_id: int
    terminal_id: str
    site_name: str
    region: str
    day: date
    loads: dict[str, int]
    notes: dict[str, int]
    value: int
    covers_until: date
    cashout_probability: float
    engineer_id: int | None
    engineer_name: str | None
    route_order: int | None
    arrival: datetime | None
    departure: datetime | None
    task_id: int | None


class PlanAtmPublic(SQLModel):
    atm_id: int
    terminal_id: str
    region: str
    planned: bool
    note: str
    at_risk: bool
    latest_safe_day: date | None
    next_visit: date | None
    visit_cost: float
    idle_cost: float
    cash_now: int
    depletion: list[dict[str, Any]]


class RoutePublic(SQLModel):
    day: date
    region: str
    engineer_id: int
    engineer_name: str
    visits: list[int] = Field(description="Visit ids in the order of the route")
    distance_km: float
    start: datetime | None
    end: datetime | None


class PlanPublic(SQLModel):
    id: int
    created_at: datetime
    first_day: date
    horizon_days: int
    region: str | None
    parameters: dict[str, Any]
    totals: dict[str, Any]


class PlanDetail(PlanPublic):
    atms: list[PlanAtmPublic]
    visits: list[PlanVisitPublic]
    routes: list[RoutePublic]
    unrouted: list[int] = Field(description="Visit ids no route could take")


class DispatchResult(SQLModel):
    tasks: list[int] = Field(description="Replenishment tasks opened or updated for the visits")


class ForecastPoint(SQLModel):
    day: date
    mean: float
    lower: float
    upper: float


class HistoryPoint(SQLModel):
    day: date
    notes: int
    observed: bool
    fitted: float | None = Field(description="The one-day-ahead forecast of that day")
    planned: float | None = Field(
        default=None, description="What the plan made before that day forecast for it"
    )


class DenominationForecast(SQLModel):
    denomination: int
    history: list[HistoryPoint]
    forecast: list[ForecastPoint]


class CassetteOutlook(SQLModel):
    number: int
    denomination: int
    count: int
    minimum: int
    capacity: int
    probability_within: float = Field(description="Of reaching the minimum within the horizon")
    p10: float | None = Field(description="Days until the minimum, 10th percentile")
    p50: float | None
    p90: float | None


class AtmForecast(SQLModel):
    atm_id: int
    terminal_id: str
    origin: date
    level: float
    elapsed_fraction: float = Field(description="Share of the first day already over")
    denominations: list[DenominationForecast]
    cassettes: list[CassetteOutlook]
