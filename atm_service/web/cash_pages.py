"""The dispatcher's cash-planning pages: the newest plan, a plan with its routes, an ATM's outlook.

* ``/cash``: ATMs by urgency under the newest plan (at risk first, then by next
  visit), the plans made so far, and a form to make a new one;
* ``/cash/plans/{id}``: the plan's visits by day with loads, engineer and
  arrival, each routed day as a map, and the button that opens the tasks due;
* ``/cash/atms/{id}``: forecast against actual per denomination and the
  cassette levels ahead (inline SVG, drawn on the server), with each
  cassette's time to its minimum.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from atm_service.api.deps import AuthDep, ContextDep, Dispatcher, NowDep, SessionDep
from atm_service.errors import InvalidInput
from atm_service.models.cash_planning import PlanRequest
from atm_service.services import cash_planning, fleet
from atm_service.web import cash_charts

router = APIRouter(include_in_schema=False)


def _number(values: dict[str, str], name: str, kind: type[float] | type[int]) -> float | None:
    text = values.get(name, "").strip()
    if not text:
        return None
    try:
        return kind(text)
    except ValueError:
        raise InvalidInput(f"{name.replace('_', ' ')} must be a number.", field=name) from None


def _overview(
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    plans, total = cash_planning.list_plans(session, limit=10)
    latest = cash_planning.detail(session, plan_id=plans[0].id) if plans and plans[0].id else None
    sites, _ = fleet.list_sites(session, limit=500)
    settings = context.settings
    return context.templates.TemplateResponse(
        request,
        "cash.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "plans": plans,
            "total": total,
            "latest": latest,
            "regions": sorted({site.region for site in sites}),
            "defaults": {
                "horizon_days": settings.cash_horizon_days,
                "visit_cost": settings.cash_visit_cost,
                "idle_cash_rate": settings.cash_idle_rate,
                "cashout_target": settings.cash_cashout_target,
            },
            "error": error,
        },
        status_code=status_code,
    )


@router.get("/cash", response_class=HTMLResponse)
def cash_home(
    request: Request, found: AuthDep, user: Dispatcher, context: ContextDep, session: SessionDep
) -> Response:
    return _overview(request, found, user, context, session)


@router.post("/cash/plans")
async def cash_new_plan(
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    form = await request.form()
    values = {name: value for name, value in form.items() if isinstance(value, str)}
    try:
        horizon = _number(values, "horizon_days", int)
        data = PlanRequest.model_validate(
            {
                "region": values.get("region") or None,
                "horizon_days": horizon,
                "visit_cost": _number(values, "visit_cost", float),
                "idle_cash_rate": _number(values, "idle_cash_rate", float),
                "cashout_target": _number(values, "cashout_target", float),
            }
        )
        plan = cash_planning.make_plan(
            session, request=data, by=user, now=now, settings=context.settings
        )
    except InvalidInput as exc:
        session.rollback()
        return _overview(
            request, found, user, context, session, error=exc.detail, status_code=exc.status
        )
    except ValueError as exc:  # pydantic: a value out of range
        session.rollback()
        message = str(exc).splitlines()
        detail = "; ".join(line.strip() for line in message[1:3]) or "Check the form."
        return _overview(request, found, user, context, session, error=detail, status_code=422)
    return RedirectResponse(f"/cash/plans/{plan.id}", status_code=303)


@router.get("/cash/plans/{plan_id}", response_class=HTMLResponse)
def cash_plan_page(
    plan_id: int,
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    opened: int | None = None,
) -> Response:
    plan = cash_planning.detail(session, plan_id=plan_id)
    sites, bases = cash_planning.map_places(session, plan)
    by_day: dict[date, list[object]] = defaultdict(list)
    for visit in plan.visits:
        by_day[visit.day].append(visit)
    routed_days = sorted({route.day for route in plan.routes})
    maps = {day: cash_charts.routes_chart(plan, day, sites, bases) for day in routed_days}
    return context.templates.TemplateResponse(
        request,
        "cash_plan.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "plan": plan,
            "by_day": sorted(by_day.items()),
            "routes_by_day": {day: [r for r in plan.routes if r.day == day] for day in routed_days},
            "maps": maps,
            "unrouted": set(plan.unrouted),
            "opened": opened,
            "lead_days": context.settings.cash_task_lead_days or 1,
        },
    )


@router.post("/cash/plans/{plan_id}/dispatch")
def cash_plan_dispatch(
    plan_id: int,
    _found: AuthDep,
    _user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
) -> Response:
    opened = cash_planning.dispatch_due(
        session,
        now=now,
        lead_days=context.settings.cash_task_lead_days or 1,
        speed_kmh=context.settings.dispatch_road_speed_kmh,
        plan_id=plan_id,
    )
    return RedirectResponse(f"/cash/plans/{plan_id}?opened={len(opened)}", status_code=303)


@router.get("/cash/atms/{atm_id}", response_class=HTMLResponse)
def cash_atm_page(
    atm_id: int,
    request: Request,
    found: AuthDep,
    user: Dispatcher,
    context: ContextDep,
    session: SessionDep,
    now: NowDep,
    horizon: int = 14,
) -> Response:
    atm = cash_planning.get_atm(session, atm_id)
    problem = None
    forecast = None
    charts: list[str] = []
    levels_svg = None
    try:
        forecast = cash_planning.atm_forecast(
            session, atm_id=atm_id, now=now, settings=context.settings, horizon=horizon
        )
        charts = [
            cash_charts.forecast_chart(forecast, d.denomination) for d in forecast.denominations
        ]
        if forecast.cassettes:
            data, levels, bands, days, reloads = cash_planning.levels_ahead(
                session, atm_id=atm_id, now=now, settings=context.settings, horizon=horizon
            )
            levels_svg = cash_charts.levels_chart(
                data.atm.terminal_id, levels, bands, days, reloads
            )
    except InvalidInput as exc:
        problem = exc.detail
    return context.templates.TemplateResponse(
        request,
        "cash_atm.html",
        {
            "user": user,
            "csrf_token": found.session.csrf_token,
            "atm": atm,
            "forecast": forecast,
            "charts": charts,
            "levels_svg": levels_svg,
            "problem": problem,
            "horizon": horizon,
        },
    )
