"""``/api/v1/cash``: demand history, forecasts, replenishment plans, routes and their charts."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from atm_service.api.deps import ContextDep, Dispatcher, NowDep, SessionDep
from atm_service.api.openapi import problems
from atm_service.api.paging import Limit, Offset, Page
from atm_service.errors import InvalidInput
from atm_service.models.cash_planning import (
    AtmForecast,
    DemandDayPublic,
    DemandImport,
    DemandRefresh,
    DemandSaved,
    DispatchResult,
    PlanDetail,
    PlanPublic,
    PlanRequest,
)
from atm_service.services import cash_demand, cash_planning
from atm_service.web import cash_charts

router = APIRouter(prefix="/cash", tags=["cash"], responses=problems(401, 403))

SVG = "image/svg+xml"
Horizon = Annotated[int, Query(ge=1, le=60, description="Days ahead")]


def _svg(text: str) -> Response:
    return Response(content=text, media_type=SVG)


@router.get(
    "/atms/{atm_id}/demand",
    response_model=list[DemandDayPublic],
    summary="An ATM's daily notes paid per denomination (default: the last 120 days)",
    responses=problems(404, 422),
)
def get_demand(
    atm_id: int,
    session: SessionDep,
    now: NowDep,
    _user: Dispatcher,
    start: date | None = None,
    end: date | None = None,
) -> list[DemandDayPublic]:
    end = end or now.date()
    start = start or end - timedelta(days=120)
    rows = cash_demand.history(session, atm_id=atm_id, start=start, end=end)
    return [DemandDayPublic.model_validate(row, from_attributes=True) for row in rows]


@router.put(
    "/atms/{atm_id}/demand",
    response_model=DemandSaved,
    summary="Import daily figures (a bank's records); they win over the counters",
    responses=problems(404, 422),
)
def put_demand(
    atm_id: int, data: DemandImport, session: SessionDep, now: NowDep, _user: Dispatcher
) -> DemandSaved:
    return DemandSaved(days=cash_demand.import_days(session, atm_id=atm_id, data=data, now=now))


@router.post(
    "/atms/{atm_id}/demand/refresh",
    response_model=DemandSaved,
    summary="Derive the days from the cash-unit counters the ATM reported",
    responses=problems(404, 422),
)
def refresh_demand(
    atm_id: int, data: DemandRefresh, session: SessionDep, now: NowDep, _user: Dispatcher
) -> DemandSaved:
    written = cash_demand.refresh_from_counters(
        session, atm_id=atm_id, start=data.start, end=data.end, now=now
    )
    return DemandSaved(days=written)


@router.get(
    "/atms/{atm_id}/forecast",
    response_model=AtmForecast,
    summary="Forecast per denomination with intervals, and each cassette's time to minimum",
    responses=problems(404, 422),
)
def get_forecast(
    atm_id: int,
    session: SessionDep,
    now: NowDep,
    context: ContextDep,
    _user: Dispatcher,
    horizon: Horizon = 14,
) -> AtmForecast:
    return cash_planning.atm_forecast(
        session, atm_id=atm_id, now=now, settings=context.settings, horizon=horizon
    )


@router.get(
    "/atms/{atm_id}/forecast.svg",
    response_class=Response,
    summary="Forecast against actual for one denomination, as an SVG chart",
    responses={200: {"content": {SVG: {}}}, **problems(404, 422)},
)
def get_forecast_chart(
    atm_id: int,
    denomination: int,
    session: SessionDep,
    now: NowDep,
    context: ContextDep,
    _user: Dispatcher,
    horizon: Horizon = 14,
) -> Response:
    found = cash_planning.atm_forecast(
        session, atm_id=atm_id, now=now, settings=context.settings, horizon=horizon
    )
    if denomination not in {d.denomination for d in found.denominations}:
        raise InvalidInput(
            f"ATM {found.terminal_id} holds no {denomination} notes.", field="denomination"
        )
    return _svg(cash_charts.forecast_chart(found, denomination))


@router.get(
    "/atms/{atm_id}/levels.svg",
    response_class=Response,
    summary="Cassette levels ahead under the newest plan, as an SVG chart",
    responses={200: {"content": {SVG: {}}}, **problems(404, 422)},
)
def get_levels_chart(
    atm_id: int,
    session: SessionDep,
    now: NowDep,
    context: ContextDep,
    _user: Dispatcher,
    horizon: Horizon = 14,
) -> Response:
    data, levels, bands, days, reloads = cash_planning.levels_ahead(
        session, atm_id=atm_id, now=now, settings=context.settings, horizon=horizon
    )
    return _svg(cash_charts.levels_chart(data.atm.terminal_id, levels, bands, days, reloads))


@router.post(
    "/plans",
    response_model=PlanDetail,
    status_code=status.HTTP_201_CREATED,
    summary="Make a replenishment plan (all ATMs in service, or a region's) and route it",
    responses=problems(422),
)
def create_plan(
    data: PlanRequest, session: SessionDep, now: NowDep, context: ContextDep, user: Dispatcher
) -> PlanDetail:
    plan = cash_planning.make_plan(
        session, request=data, by=user, now=now, settings=context.settings
    )
    assert plan.id is not None
    return cash_planning.detail(session, plan_id=plan.id)


@router.get("/plans", response_model=Page[PlanPublic], summary="Plans, newest first")
def list_plans(
    session: SessionDep, _user: Dispatcher, limit: Limit = 20, offset: Offset = 0
) -> Page[PlanPublic]:
    plans, total = cash_planning.list_plans(session, limit=limit, offset=offset)
    return Page(
        items=[cash_planning.public(p) for p in plans], total=total, limit=limit, offset=offset
    )


@router.get(
    "/plans/{plan_id}",
    response_model=PlanDetail,
    summary="A plan: its ATMs, visits with loads, and routes",
    responses=problems(404),
)
def get_plan(plan_id: int, session: SessionDep, _user: Dispatcher) -> PlanDetail:
    return cash_planning.detail(session, plan_id=plan_id)


@router.get(
    "/plans/{plan_id}/routes.svg",
    response_class=Response,
    summary="The routes of one day of a plan, as an SVG map",
    responses={200: {"content": {SVG: {}}}, **problems(404)},
)
def get_routes_chart(plan_id: int, day: date, session: SessionDep, _user: Dispatcher) -> Response:
    found = cash_planning.detail(session, plan_id=plan_id)
    sites, bases = cash_planning.map_places(session, found)
    return _svg(cash_charts.routes_chart(found, day, sites, bases))


@router.post(
    "/plans/{plan_id}/dispatch",
    response_model=DispatchResult,
    summary="Open the replenishment tasks of the plan's visits due up to lead_days ahead",
    responses=problems(404, 422),
)
def dispatch_plan(
    plan_id: int,
    session: SessionDep,
    now: NowDep,
    context: ContextDep,
    _user: Dispatcher,
    lead_days: Annotated[int, Query(ge=0, le=7)] = 1,
) -> DispatchResult:
    opened = cash_planning.dispatch_due(
        session,
        now=now,
        lead_days=lead_days,
        speed_kmh=context.settings.dispatch_road_speed_kmh,
        plan_id=plan_id,
    )
    return DispatchResult(tasks=opened)
