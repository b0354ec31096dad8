"""Cash planning use cases: forecasts per ATM, replenishment plans, their routes and tasks.

The maths is :mod:`cashplan`; this module feeds it from the database and keeps
what it says:

* :func:`atm_forecast`: an ATM's demand history (derived again from its
  counters first), the fitted model's one-day-ahead values, the forecast with
  its interval per denomination, and each cassette's time to its minimum from
  the last cash units the ATM reported;
* :func:`make_plan`: for every in-service ATM (of a region, or all) with enough
  history and a cash-unit report: forecast, simulated demand paths, the
  cheapest visits and loads under the cash-out target (visits only on the
  contract's service days, from tomorrow), the forecast kept for later
  comparison; then each of the first ``cash_route_days`` days' visits in each
  region are routed among the cash engineers on shift there;
* :func:`dispatch_due`: the newest plan's visits from today to
  ``cash_task_lead_days`` ahead become replenishment tasks through the dispatch
  rules (:func:`~atm_service.services.dispatch_rules.on_planned_replenishment`),
  each once; the sweep runs it on every instance.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from zoneinfo import ZoneInfo

import numpy as np
from sqlmodel import Session, col, select

import cashplan
from atm_service.config import Settings
from atm_service.errors import InvalidInput, NotFound
from atm_service.models.cash_planning import (
    AtmForecast,
    CashForecastDay,
    CashPlan,
    CashPlanAtm,
    CashPlanVisit,
    CassetteOutlook,
    DenominationForecast,
    ForecastPoint,
    HistoryPoint,
    PlanAtmPublic,
    PlanDetail,
    PlanPublic,
    PlanRequest,
    PlanVisitPublic,
    RoutePublic,
)
from atm_service.models.condition import AtmCondition
from atm_service.models.engineers import Engineer, Skill
from atm_service.models.fleet import Atm, AtmStatus, Cassette, ServiceContract, Site, minutes_of_day
from atm_service.models.users import User
from atm_service.services import cash_demand, dispatch_rules
from atm_service.services.dispatch_rules import PlannedReplenishment

logger = logging.getLogger("atm_service.cash")

XFS_BILL_CASSETTE = 3
XFS_RECYCLING = 12
FORECAST_LEVEL = 0.9
SHOWN_HISTORY_DAYS = 56


@dataclass
class AtmData:
    """One ATM as planning needs it."""

    atm: Atm
    site: Site
    contract: ServiceContract | None
    zone: ZoneInfo
    today: date  # local
    elapsed: float  # share of today over
    cassettes: list[Cassette]
    denominations: list[int]


def calendar_of(settings: Settings) -> cashplan.DemandCalendar:
    return cashplan.DemandCalendar.of(
        settings.cash_holidays, settings.cash_payday_days, payday_last=settings.cash_payday_last
    )


def _atm_data(session: Session, atm: Atm, now: datetime) -> AtmData:
    site = session.get(Site, atm.site_id)
    assert site is not None, "an ATM always has a site (foreign key)"
    contract = session.get(ServiceContract, atm.contract_id) if atm.contract_id else None
    zone = ZoneInfo(site.timezone)
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date(), time(0), tzinfo=zone)
    cassettes = list(
        session.exec(
            select(Cassette).where(col(Cassette.atm_id) == atm.id).order_by(col(Cassette.number))
        )
    )
    return AtmData(
        atm=atm,
        site=site,
        contract=contract,
        zone=zone,
        today=local.date(),
        elapsed=min((local - midnight).total_seconds() / 86400, 0.999),
        cassettes=cassettes,
        denominations=sorted({c.denomination for c in cassettes}),
    )


def _refresh(session: Session, data: AtmData, settings: Settings, now: datetime) -> None:
    """Derive the history window's days from the counters again (commits)."""
    assert data.atm.id is not None
    cash_demand.refresh_from_counters(
        session,
        atm_id=data.atm.id,
        start=data.today - timedelta(days=settings.cash_history_days),
        end=data.today - timedelta(days=1),
        now=now,
    )


def _history(
    session: Session, data: AtmData, settings: Settings, now: datetime, *, refresh: bool = True
) -> tuple[date, np.ndarray, np.ndarray]:
    """(first day, notes (denominations, days), observed) over the history window."""
    assert data.atm.id is not None
    days = settings.cash_history_days
    first = data.today - timedelta(days=days)
    if refresh:
        _refresh(session, data, settings, now)
    notes = np.zeros((len(data.denominations), days))
    observed = np.zeros((len(data.denominations), days), dtype=bool)
    rows = cash_demand.history(
        session, atm_id=data.atm.id, start=first, end=data.today - timedelta(days=1)
    )
    column = {d: i for i, d in enumerate(data.denominations)}
    for row in rows:
        if row.denomination not in column:
            continue
        t = (row.day - first).days
        notes[column[row.denomination], t] = row.notes
        observed[column[row.denomination], t] = row.observed
    return first, notes, observed


def _fit(
    data: AtmData, first: date, notes: np.ndarray, observed: np.ndarray, settings: Settings
) -> cashplan.DemandModel:
    """The fitted model; InvalidInput naming the ATM when its history is too thin."""
    if not data.denominations:
        raise InvalidInput(f"ATM {data.atm.terminal_id} has no cassettes.", field="atm_id")
    seen = observed.sum(axis=1)
    need = cashplan.forecast.MIN_HISTORY_DAYS // 2
    if seen.min() < need:
        raise InvalidInput(
            f"ATM {data.atm.terminal_id} has {int(seen.min())} observed days of demand history "
            f"for some denomination; the forecast needs at least {need}. Import the bank's "
            "daily figures or wait for the counters to accumulate.",
            field="atm_id",
        )
    # Only the days since the first observed one count as history.
    start = int(np.argmax(observed.any(axis=0)))
    if notes.shape[1] - start < cashplan.forecast.MIN_HISTORY_DAYS:
        start = max(0, notes.shape[1] - cashplan.forecast.MIN_HISTORY_DAYS)
    return cashplan.fit(
        notes[:, start:],
        first + timedelta(days=start),
        calendar_of(settings),
        observed=observed[:, start:],
    )


def cassette_levels(session: Session, data: AtmData) -> list[cashplan.CassetteLevel] | None:
    """The cassettes with the counts the ATM last reported, or None before any report."""
    condition = session.get(AtmCondition, data.atm.id)
    if condition is None or not condition.cash_units:
        return None
    counts = {
        int(unit.get("usNumber", 0)): int(unit.get("ulCount", 0))
        for unit in condition.cash_units
        if int(unit.get("usType", 0)) in (XFS_BILL_CASSETTE, XFS_RECYCLING)
    }
    if any(c.number not in counts for c in data.cassettes):
        return None
    return [
        cashplan.CassetteLevel(
            number=c.number,
            denomination=c.denomination,
            count=max(counts[c.number], 0),
            minimum=c.minimum,
            capacity=c.capacity,
        )
        for c in data.cassettes
    ]


def _rng(atm_id: int, now: datetime) -> np.random.Generator:
    return np.random.default_rng([atm_id, int(now.timestamp())])


def _paths(
    model: cashplan.DemandModel, data: AtmData, days: int, paths: int, now: datetime
) -> np.ndarray:
    """Paths from today (the model's origin is today: history ends yesterday)."""
    assert data.atm.id is not None
    return model.sample_paths(days, paths, _rng(data.atm.id, now))


def _outlooks(
    levels: Sequence[cashplan.CassetteLevel], paths: np.ndarray, data: AtmData
) -> list[CassetteOutlook]:
    scaled = paths.copy()
    scaled[:, 0, :] *= 1.0 - data.elapsed
    found = cashplan.time_to_minimum(levels, scaled, data.denominations)
    by_number = {level.number: level for level in levels}
    out = []
    for item in found:
        level = by_number[item.number]
        shift = data.elapsed  # express days from now
        out.append(
            CassetteOutlook(
                number=item.number,
                denomination=item.denomination,
                count=level.count,
                minimum=level.minimum,
                capacity=level.capacity,
                probability_within=item.probability_within,
                p10=None if item.p10 is None else round(max(item.p10 - shift, 0.0), 2),
                p50=None if item.p50 is None else round(max(item.p50 - shift, 0.0), 2),
                p90=None if item.p90 is None else round(max(item.p90 - shift, 0.0), 2),
            )
        )
    return out


def get_atm(session: Session, atm_id: int) -> Atm:
    atm = session.get(Atm, atm_id)
    if atm is None:
        raise NotFound(f"No ATM with id {atm_id}.")
    return atm


def atm_forecast(
    session: Session, *, atm_id: int, now: datetime, settings: Settings, horizon: int
) -> AtmForecast:
    """History, fitted values, forecast with intervals and time to minimum for one ATM."""
    if not 1 <= horizon <= 60:
        raise InvalidInput("horizon must be between 1 and 60 days.", field="horizon")
    atm = get_atm(session, atm_id)
    data = _atm_data(session, atm, now)
    first, notes, observed = _history(session, data, settings, now)
    model = _fit(data, first, notes, observed, settings)
    forecast = model.forecast(horizon, level=FORECAST_LEVEL)
    planned = _planned_forecasts(session, atm_id, data.today - timedelta(days=SHOWN_HISTORY_DAYS))
    offset = notes.shape[1] - model.fitted.shape[1]
    shown = range(max(0, notes.shape[1] - SHOWN_HISTORY_DAYS), notes.shape[1])
    denominations = []
    for i, denomination in enumerate(data.denominations):
        history = [
            HistoryPoint(
                day=first + timedelta(days=t),
                notes=int(notes[i, t]),
                observed=bool(observed[i, t]),
                fitted=round(float(model.fitted[i, t - offset]), 1) if t >= offset else None,
                planned=planned.get((denomination, first + timedelta(days=t))),
            )
            for t in shown
        ]
        points = [
            ForecastPoint(
                day=day,
                mean=round(float(forecast.mean[i, h]), 1),
                lower=round(float(forecast.lower[i, h]), 1),
                upper=round(float(forecast.upper[i, h]), 1),
            )
            for h, day in enumerate(forecast.days)
        ]
        denominations.append(
            DenominationForecast(denomination=denomination, history=history, forecast=points)
        )
    levels = cassette_levels(session, data)
    cassettes = (
        _outlooks(levels, _paths(model, data, horizon, settings.cash_paths, now), data)
        if levels is not None
        else []
    )
    assert atm.id is not None
    return AtmForecast(
        atm_id=atm.id,
        terminal_id=atm.terminal_id,
        origin=model.origin,
        level=FORECAST_LEVEL,
        elapsed_fraction=round(data.elapsed, 3),
        denominations=denominations,
        cassettes=cassettes,
    )


def _planned_forecasts(session: Session, atm_id: int, since: date) -> dict[tuple[int, date], float]:
    """What the plans forecast for each past day, from the last plan made before the day."""
    rows = session.exec(
        select(CashForecastDay, CashPlan.created_at)
        .join(CashPlan, col(CashPlan.id) == col(CashForecastDay.plan_id))
        .where(col(CashForecastDay.atm_id) == atm_id, col(CashForecastDay.day) >= since)
        .order_by(col(CashPlan.created_at))
    ).all()
    out: dict[tuple[int, date], float] = {}
    for row, created_at in rows:
        if created_at.date() < row.day:  # made before the day (later plans overwrite)
            out[(row.denomination, row.day)] = round(row.mean, 1)
    return out


# --- plans ------------------------------------------------------------------------------


def policy_of(settings: Settings, request: PlanRequest) -> cashplan.PlanningPolicy:
    return cashplan.PlanningPolicy(
        visit_cost=request.visit_cost
        if request.visit_cost is not None
        else settings.cash_visit_cost,
        idle_cash_rate=(
            request.idle_cash_rate
            if request.idle_cash_rate is not None
            else settings.cash_idle_rate
        ),
        cashout_target=(
            request.cashout_target
            if request.cashout_target is not None
            else settings.cash_cashout_target
        ),
        arrival_fraction=settings.cash_arrival_fraction,
        bundle=settings.cash_bundle_notes,
        horizon_days=(request.horizon_days or settings.cash_horizon_days) + 1,  # today + days
        max_cycle_days=settings.cash_max_cycle_days,
        first_visit_day=1,
        respect_minimum=settings.cash_respect_minimum,
    )


def _visit_days(data: AtmData, horizon: int) -> list[bool]:
    days = data.contract.service_days if data.contract is not None else "1234567"
    return [str((data.today + timedelta(days=k)).isoweekday()) in days for k in range(horizon)]


def make_plan(
    session: Session, *, request: PlanRequest, by: User | None, now: datetime, settings: Settings
) -> CashPlan:
    """Plan every in-service ATM (of ``request.region``); store, route and return the plan."""
    policy = policy_of(settings, request)
    query = (
        select(Atm)
        .join(Site, col(Site.id) == col(Atm.site_id))
        .where(col(Atm.status) == AtmStatus.IN_SERVICE)
        .order_by(col(Atm.terminal_id))
    )
    if request.region:
        query = query.where(col(Site.region) == request.region)
    atms = list(session.exec(query))
    if request.region and not atms:
        raise InvalidInput(f"No ATM in service in region {request.region!r}.", field="region")
    # The counters first (each ATM commits its days), then the plan in one transaction, so
    # nobody reads a plan half made.
    for atm in atms:
        _refresh(session, _atm_data(session, atm, now), settings, now)
    first_day = now.astimezone(UTC).date() + timedelta(days=1)
    plan = CashPlan(
        created_at=now,
        created_by=by.id if by is not None else None,
        first_day=first_day,
        horizon_days=policy.horizon_days - 1,
        region=request.region,
        parameters={
            "visit_cost": policy.visit_cost,
            "idle_cash_rate": policy.idle_cash_rate,
            "cashout_target": policy.cashout_target,
            "arrival_fraction": policy.arrival_fraction,
            "bundle": policy.bundle,
            "max_cycle_days": policy.max_cycle_days,
            "respect_minimum": policy.respect_minimum,
            "paths": settings.cash_paths,
            "history_days": settings.cash_history_days,
            "route_days": settings.cash_route_days,
        },
        totals={},
    )
    session.add(plan)
    session.flush()
    assert plan.id is not None
    visits: list[tuple[CashPlanVisit, AtmData]] = []
    planned = skipped = at_risk = 0
    total_visit = total_idle = 0.0
    for atm in atms:
        assert atm.id is not None
        data = _atm_data(session, atm, now)
        row = CashPlanAtm(plan_id=plan.id, atm_id=atm.id, planned=False)
        try:
            first, notes, observed = _history(session, data, settings, now, refresh=False)
            model = _fit(data, first, notes, observed, settings)
        except (InvalidInput, cashplan.InvalidArgument) as exc:
            row.note = str(exc.detail if isinstance(exc, InvalidInput) else exc)[:300]
            session.add(row)
            skipped += 1
            continue
        levels = cassette_levels(session, data)
        if levels is None:
            row.note = "No cash-unit report from the ATM yet: its cassette counts are unknown."
            session.add(row)
            skipped += 1
            continue
        paths = _paths(model, data, policy.path_days, settings.cash_paths, now)
        result = cashplan.plan_atm(
            levels,
            paths,
            data.denominations,
            policy,
            visit_days=_visit_days(data, policy.horizon_days),
            elapsed_fraction=data.elapsed,
        )
        row.planned = True
        row.at_risk = result.at_risk
        row.latest_safe_day = (
            data.today + timedelta(days=result.latest_safe_day)
            if result.latest_safe_day is not None
            else None
        )
        row.visit_cost = result.visit_cost
        row.idle_cost = result.idle_cost
        row.cash_now = int(sum(level.count * level.denomination for level in levels))
        row.depletion = [o.model_dump() for o in _outlooks(levels, paths, data)]
        row.cassettes = [
            {
                "number": level.number,
                "denomination": level.denomination,
                "count": level.count,
                "minimum": level.minimum,
                "capacity": level.capacity,
            }
            for level in levels
        ]
        session.add(row)
        planned += 1
        at_risk += int(result.at_risk)
        total_visit += result.visit_cost
        total_idle += result.idle_cost
        forecast = model.forecast(policy.horizon_days, level=FORECAST_LEVEL)
        for i, denomination in enumerate(data.denominations):
            for h, day in enumerate(forecast.days):
                session.add(
                    CashForecastDay(
                        plan_id=plan.id,
                        atm_id=atm.id,
                        denomination=denomination,
                        day=day,
                        mean=round(float(forecast.mean[i, h]), 2),
                        lower=round(float(forecast.lower[i, h]), 2),
                        upper=round(float(forecast.upper[i, h]), 2),
                    )
                )
        for visit in result.visits:
            stored = CashPlanVisit(
                plan_id=plan.id,
                atm_id=atm.id,
                day=data.today + timedelta(days=visit.day),
                loads={str(k): v for k, v in visit.loads.items()},
                notes={str(k): v for k, v in visit.notes.items()},
                value=visit.value,
                covers_until=data.today + timedelta(days=visit.covers_until),
                cashout_probability=round(visit.cashout_probability, 4),
            )
            session.add(stored)
            visits.append((stored, data))
    session.flush()
    routed, unrouted = _route(session, visits, settings, first_day)
    plan.totals = {
        "atms": len(atms),
        "planned": planned,
        "skipped": skipped,
        "at_risk": at_risk,
        "visits": len(visits),
        "value": int(sum(v.value for v, _ in visits)),
        "visit_cost": round(total_visit, 2),
        "idle_cost": round(total_idle, 2),
        "routed": routed,
        "unrouted": unrouted,
    }
    session.add(plan)
    session.commit()
    logger.info("cash plan made", extra={"plan_id": plan.id, **plan.totals})
    return plan


def _route(
    session: Session,
    visits: Sequence[tuple[CashPlanVisit, AtmData]],
    settings: Settings,
    first_day: date,
) -> tuple[int, int]:
    """Route the visits of the first ``cash_route_days`` days, per day and region."""
    groups: dict[tuple[date, str], list[tuple[CashPlanVisit, AtmData]]] = defaultdict(list)
    last_day = first_day + timedelta(days=settings.cash_route_days - 1)
    for visit, data in visits:
        if visit.day <= last_day:
            groups[(visit.day, data.site.region)].append((visit, data))
    crews = [
        engineer
        for engineer in session.exec(select(Engineer).where(col(Engineer.active).is_(True)))
        if engineer.has_skill(Skill.CASH)
    ]
    routed = unrouted = 0
    for (day, region), members in sorted(groups.items()):
        on_shift = [
            e for e in crews if e.home_region == region and str(day.isoweekday()) in e.shift_days
        ]
        stops = []
        for index, (_, data) in enumerate(members):
            contract = data.contract
            start = minutes_of_day(contract.service_start) if contract else 0
            end = minutes_of_day(contract.service_end) if contract else 24 * 60
            stops.append(
                cashplan.Stop(
                    key=str(index),
                    latitude=data.site.latitude,
                    longitude=data.site.longitude,
                    service_minutes=settings.cash_service_minutes,
                    window_start=start,
                    window_end=end,
                )
            )
        fleet_crews = []
        for engineer in on_shift:
            start = minutes_of_day(engineer.shift_start)
            end = minutes_of_day(engineer.shift_end)
            if end <= start:  # a night shift: the part of it on this day
                end = 24 * 60
            fleet_crews.append(
                cashplan.Crew(
                    key=str(engineer.id),
                    latitude=engineer.latitude,
                    longitude=engineer.longitude,
                    shift_start=start,
                    shift_end=end,
                )
            )
        result = cashplan.plan_routes(
            stops,
            fleet_crews,
            speed_kmh=settings.dispatch_road_speed_kmh,
            time_limit_s=settings.cash_routing_seconds,
        )
        for route in result.routes:
            for order, stop in enumerate(route.stops, start=1):
                visit, data = members[int(stop.key)]
                midnight = datetime.combine(day, time(0), tzinfo=data.zone)
                visit.engineer_id = int(route.crew)
                visit.route_order = order
                visit.arrival = (midnight + timedelta(minutes=stop.arrival)).astimezone(UTC)
                visit.departure = (midnight + timedelta(minutes=stop.departure)).astimezone(UTC)
                session.add(visit)
                routed += 1
        unrouted += len(result.unrouted)
    return routed, unrouted


def list_plans(session: Session, *, limit: int = 20, offset: int = 0) -> tuple[list[CashPlan], int]:
    total = len(session.exec(select(CashPlan.id)).all())
    plans = session.exec(
        select(CashPlan)
        .order_by(col(CashPlan.created_at).desc(), col(CashPlan.id).desc())
        .offset(offset)
        .limit(limit)
    ).all()
    return list(plans), total


def latest_plan(session: Session) -> CashPlan | None:
    return session.exec(
        select(CashPlan).order_by(col(CashPlan.created_at).desc(), col(CashPlan.id).desc()).limit(1)
    ).first()


def get_plan(session: Session, *, plan_id: int) -> CashPlan:
    plan = session.get(CashPlan, plan_id)
    if plan is None:
        raise NotFound(f"No cash plan with id {plan_id}.")
    return plan


def public(plan: CashPlan) -> PlanPublic:
    assert plan.id is not None
    return PlanPublic(
        id=plan.id,
        created_at=plan.created_at,
        first_day=plan.first_day,
        horizon_days=plan.horizon_days,
        region=plan.region,
        parameters=plan.parameters,
        totals=plan.totals,
    )


def detail(session: Session, *, plan_id: int) -> PlanDetail:
    """The plan with its ATMs (most urgent first), visits by day and route, and routes."""
    plan = get_plan(session, plan_id=plan_id)
    places = {
        atm.id: (atm, site)
        for atm, site in session.exec(
            select(Atm, Site).join(Site, col(Site.id) == col(Atm.site_id))
        ).all()
    }
    names = {
        engineer.id: user.full_name
        for engineer, user in session.exec(
            select(Engineer, User).join(User, col(User.id) == col(Engineer.user_id))
        ).all()
    }
    visit_rows = session.exec(
        select(CashPlanVisit)
        .where(col(CashPlanVisit.plan_id) == plan_id)
        .order_by(
            col(CashPlanVisit.day), col(CashPlanVisit.engineer_id), col(CashPlanVisit.route_order)
        )
    ).all()
    next_visit: dict[int, date] = {}
    visits = []
    for v in visit_rows:
        assert v.id is not None
        atm, site = places[v.atm_id]
        next_visit.setdefault(v.atm_id, v.day)
        visits.append(
            PlanVisitPublic(
                id=v.id,
                atm_id=v.atm_id,
                terminal_id=atm.terminal_id,
                site_name=site.name,
                region=site.region,
                day=v.day,
                loads=v.loads,
                notes=v.notes,
                value=v.value,
                covers_until=v.covers_until,
                cashout_probability=v.cashout_probability,
                engineer_id=v.engineer_id,
                engineer_name=names.get(v.engineer_id) if v.engineer_id else None,
                route_order=v.route_order,
                arrival=v.arrival,
                departure=v.departure,
                task_id=v.task_id,
            )
        )
    routes = _routes_of(visits, places, session)
    route_days = int(plan.parameters.get("route_days", 0))
    routed_until = plan.first_day + timedelta(days=route_days)
    unrouted = [v.id for v in visits if v.engineer_id is None and v.day < routed_until]
    atm_rows = session.exec(select(CashPlanAtm).where(col(CashPlanAtm.plan_id) == plan_id)).all()
    atms = []
    for row in atm_rows:
        atm, site = places[row.atm_id]
        atms.append(
            PlanAtmPublic(
                atm_id=row.atm_id,
                terminal_id=atm.terminal_id,
                region=site.region,
                planned=row.planned,
                note=row.note,
                at_risk=row.at_risk,
                latest_safe_day=row.latest_safe_day,
                next_visit=next_visit.get(row.atm_id),
                visit_cost=row.visit_cost,
                idle_cost=row.idle_cost,
                cash_now=row.cash_now,
                depletion=row.depletion,
            )
        )
    far = date.max
    atms.sort(
        key=lambda a: (
            not a.planned,
            not a.at_risk,
            a.next_visit or far,
            a.latest_safe_day or far,
            a.terminal_id,
        )
    )
    return PlanDetail(
        **public(plan).model_dump(), atms=atms, visits=visits, routes=routes, unrouted=unrouted
    )


def _routes_of(
    visits: Sequence[PlanVisitPublic],
    places: dict[int | None, tuple[Atm, Site]],
    session: Session,
) -> list[RoutePublic]:
    grouped: dict[tuple[date, int], list[PlanVisitPublic]] = defaultdict(list)
    for visit in visits:
        if visit.engineer_id is not None:
            grouped[(visit.day, visit.engineer_id)].append(visit)
    out = []
    for (day, engineer_id), stops in sorted(grouped.items()):
        stops.sort(key=lambda v: v.route_order or 0)
        engineer = session.get(Engineer, engineer_id)
        distance = 0.0
        if engineer is not None:
            points = [(engineer.latitude, engineer.longitude)]
            points += [(places[s.atm_id][1].latitude, places[s.atm_id][1].longitude) for s in stops]
            points.append(points[0])
            distance = sum(cashplan.routing.haversine_km(*a, *b) for a, b in pairwise(points))
        out.append(
            RoutePublic(
                day=day,
                region=stops[0].region,
                engineer_id=engineer_id,
                engineer_name=stops[0].engineer_name or f"engineer {engineer_id}",
                visits=[s.id for s in stops],
                distance_km=round(distance, 1),
                start=stops[0].arrival,
                end=stops[-1].departure,
            )
        )
    return out


# --- tasks ahead of time -------------------------------------------------------------------


def dispatch_due(
    session: Session,
    *,
    now: datetime,
    lead_days: int,
    speed_kmh: float,
    plan_id: int | None = None,
) -> list[int]:
    """Open replenishment tasks for the newest (or the given) plan's visits due from today
    to ``lead_days`` ahead (site time) that have none yet; returns the tasks' ids."""
    plan = get_plan(session, plan_id=plan_id) if plan_id is not None else latest_plan(session)
    if plan is None:
        return []
    if plan_id is None and plan.id != _newest_id(session):
        return []
    rows = session.exec(
        select(CashPlanVisit)
        .where(col(CashPlanVisit.plan_id) == plan.id, col(CashPlanVisit.task_id).is_(None))
        .order_by(col(CashPlanVisit.day), col(CashPlanVisit.id))
    ).all()
    opened = []
    for visit in rows:
        atm = session.get(Atm, visit.atm_id)
        if atm is None:
            continue
        site = session.get(Site, atm.site_id)
        assert site is not None
        today = now.astimezone(ZoneInfo(site.timezone)).date()
        if not today <= visit.day <= today + timedelta(days=lead_days):
            continue
        assert visit.id is not None
        assert plan.id is not None
        visit_id = visit.id
        # Another instance's sweep may be at this visit: take it only if it is free and
        # still has no task (the ATM's row lock in the rules serialises the rest).
        claimed = session.exec(
            select(CashPlanVisit.id)
            .where(col(CashPlanVisit.id) == visit_id, col(CashPlanVisit.task_id).is_(None))
            .with_for_update(skip_locked=True)
        ).first()
        if claimed is None:
            session.commit()
            continue
        task = dispatch_rules.on_planned_replenishment(
            session,
            atm_id=visit.atm_id,
            visit=PlannedReplenishment(
                plan_id=plan.id,
                visit_id=visit_id,
                day=visit.day,
                loads=visit.loads,
                notes=visit.notes,
                value=visit.value,
                engineer_id=visit.engineer_id,
                arrival=visit.arrival,
                departure=visit.departure,
            ),
            now=now,
            road_speed_kmh=speed_kmh,
        )
        stored = session.get(CashPlanVisit, visit_id)
        assert stored is not None
        assert task.id is not None
        stored.task_id = task.id
        session.add(stored)
        session.commit()
        opened.append(task.id)
    return opened


def _newest_id(session: Session) -> int | None:
    newest = latest_plan(session)
    return newest.id if newest is not None else None


def levels_ahead(
    session: Session, *, atm_id: int, now: datetime, settings: Settings, horizon: int
) -> tuple[AtmData, list[cashplan.CassetteLevel], cashplan.LevelBands, list[date], list[date]]:
    """Projected cassette levels (quantile bands) over ``horizon`` days from today, with the
    newest plan's visits for the ATM applied."""
    if not 1 <= horizon <= 60:
        raise InvalidInput("horizon must be between 1 and 60 days.", field="horizon")
    atm = get_atm(session, atm_id)
    data = _atm_data(session, atm, now)
    levels = cassette_levels(session, data)
    if levels is None:
        raise InvalidInput(
            f"ATM {atm.terminal_id} has not reported its cash units yet.", field="atm_id"
        )
    first, notes, observed = _history(session, data, settings, now)
    model = _fit(data, first, notes, observed, settings)
    paths = _paths(model, data, horizon, settings.cash_paths, now)
    paths[:, 0, :] *= 1.0 - data.elapsed
    plan = latest_plan(session)
    reloads: dict[int, dict[int, int]] = {}
    if plan is not None:
        for visit in session.exec(
            select(CashPlanVisit).where(
                col(CashPlanVisit.plan_id) == plan.id, col(CashPlanVisit.atm_id) == atm_id
            )
        ):
            k = (visit.day - data.today).days
            if 0 <= k < horizon:
                reloads[k] = {int(n): v for n, v in visit.loads.items()}
    bands = cashplan.project_levels(
        levels,
        paths,
        data.denominations,
        reloads=reloads,
        arrival_fraction=settings.cash_arrival_fraction,
    )
    days = [data.today + timedelta(days=k) for k in range(horizon)]
    return data, levels, bands, days, [days[k] for k in sorted(reloads)]


def map_places(
    session: Session, plan: PlanDetail
) -> tuple[dict[int, Site], dict[int, tuple[float, float]]]:
    """The sites of a plan's ATMs (by ATM id) and its engineers' bases (by engineer id)."""
    atm_ids = {v.atm_id for v in plan.visits}
    sites = {
        atm.id: site
        for atm, site in session.exec(
            select(Atm, Site)
            .join(Site, col(Site.id) == col(Atm.site_id))
            .where(col(Atm.id).in_(atm_ids or {0}))
        ).all()
        if atm.id is not None
    }
    engineer_ids = {r.engineer_id for r in plan.routes}
    bases = {
        e.id: (e.latitude, e.longitude)
        for e in session.exec(select(Engineer).where(col(Engineer.id).in_(engineer_ids or {0})))
        if e.id is not None
    }
    return sites, bases
