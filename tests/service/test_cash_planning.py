"""Cash planning in the service: demand from counters, forecasts, plans, routes, tasks."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import Session, col, select

from atm_service.errors import InvalidInput, NotFound
from atm_service.models.cash import CountersSnapshot
from atm_service.models.cash_planning import CashPlanVisit, DemandDayIn, DemandImport, PlanRequest
from atm_service.models.devices import RecordStream
from atm_service.models.tasks import Task, TaskKind, TaskSource, TaskState
from atm_service.services import cash_demand, cash_planning, dispatch_rules
from atm_service.services.device_counters import DeviceSnapshot
from tests.service.cash_world import import_history, report_cash
from tests.service.dispatch_world import World
from tests.support import FakeClock, make_settings

TODAY = date(2026, 11, 16)  # the clock's day in New York


def _unit(number: int, value: int, initial: int, dispensed: int, status: int = 0) -> dict:
    return {
        "usNumber": number,
        "usType": 3,
        "ulValues": value,
        "ulInitialCount": initial,
        "ulCount": initial - dispensed,
        "ulDispensedCount": dispensed,
        "usStatus": status,
    }


def _snap(at: str, *units: dict) -> DeviceSnapshot:
    return DeviceSnapshot(datetime.fromisoformat(at), list(units))


def test_daily_demand_from_snapshots() -> None:
    snapshots = [
        _snap("2026-11-10T09:00", _unit(1, 20, 1000, 0), _unit(2, 50, 500, 0)),
        _snap("2026-11-10T18:00", _unit(1, 20, 1000, 120), _unit(2, 50, 500, 30)),
        _snap("2026-11-11T10:00", _unit(1, 20, 1000, 200), _unit(2, 50, 500, 40)),
        # replenished: a new initial count, counted from zero again
        _snap("2026-11-11T12:00", _unit(1, 20, 2000, 15), _unit(2, 50, 800, 5)),
        _snap("2026-11-12T20:00", _unit(1, 20, 2000, 90), _unit(2, 50, 800, 800, status=4)),
        # silent for two days
        _snap("2026-11-15T08:00", _unit(1, 20, 2000, 190), _unit(2, 50, 800, 800, status=4)),
    ]
    days = cash_demand.daily_demand(snapshots, until=date(2026, 11, 16))
    assert days[(date(2026, 11, 10), 20)].notes == 120
    assert not days[(date(2026, 11, 10), 20)].observed  # the first day starts mid-day
    assert (days[(date(2026, 11, 11), 20)].notes, days[(date(2026, 11, 11), 20)].observed) == (
        95,
        True,
    )  # 80 before the exchange, 15 after
    assert days[(date(2026, 11, 11), 50)].notes == 15
    assert days[(date(2026, 11, 12), 20)].notes == 75
    assert not days[(date(2026, 11, 12), 50)].observed  # the 50s ran out
    assert days[(date(2026, 11, 12), 50)].notes == 795
    assert not days[(date(2026, 11, 13), 20)].observed  # the silent days
    assert not days[(date(2026, 11, 15), 20)].observed
    assert days[(date(2026, 11, 13), 20)].notes == 0
    assert cash_demand.daily_demand(snapshots, until=date(2026, 11, 12)).keys() == {
        (date(2026, 11, 10), 20),
        (date(2026, 11, 10), 50),
        (date(2026, 11, 11), 20),
        (date(2026, 11, 11), 50),
    }


def test_refresh_from_stored_counters_keeps_imported_days(
    session: Session, world: World, clock: FakeClock
) -> None:
    atm_id = world.atms["T1000001"]
    stream = RecordStream(atm_id=atm_id, stream="s1", created_at=clock(), updated_at=clock())
    session.add(stream)
    session.flush()
    assert stream.id is not None
    times = ["2026-11-13T14:00:00+00:00", "2026-11-14T15:00:00+00:00", "2026-11-15T16:00:00+00:00"]
    for seq, (at, dispensed) in enumerate(zip(times, (0, 100, 250), strict=True), start=1):
        session.add(
            CountersSnapshot(
                stream_id=stream.id,
                seq=seq,
                atm_id=atm_id,
                reason="changed",
                cash_units=[_unit(1, 20, 2000, dispensed)],
                stored_at=datetime.fromisoformat(at),
                received_at=datetime.fromisoformat(at),
            )
        )
    session.commit()
    cash_demand.import_days(
        session,
        atm_id=atm_id,
        data=DemandImport(days=[DemandDayIn(day=date(2026, 11, 15), denomination=20, notes=7)]),
        now=clock(),
    )
    written = cash_demand.refresh_from_counters(
        session, atm_id=atm_id, start=date(2026, 11, 1), end=date(2026, 11, 20), now=clock()
    )
    rows = {
        (r.day, r.denomination): r
        for r in cash_demand.history(
            session, atm_id=atm_id, start=date(2026, 11, 1), end=date(2026, 11, 30)
        )
    }
    assert written == 2  # the 13th and 14th; the 15th was imported
    assert rows[(date(2026, 11, 14), 20)].notes == 100
    assert rows[(date(2026, 11, 14), 20)].source == "counters"
    assert rows[(date(2026, 11, 15), 20)].notes == 7
    assert (date(2026, 11, 16), 20) not in rows  # today is not over


def test_import_refuses_bad_days(session: Session, world: World, clock: FakeClock) -> None:
    atm_id = world.atms["T1000001"]
    with pytest.raises(InvalidInput, match="no cassette of 10") as bad:
        cash_demand.import_days(
            session,
            atm_id=atm_id,
            data=DemandImport(days=[DemandDayIn(day=date(2026, 11, 1), denomination=10, notes=1)]),
            now=clock(),
        )
    assert bad.value.field == "days.0.denomination"
    with pytest.raises(InvalidInput, match="not over yet"):
        cash_demand.import_days(
            session,
            atm_id=atm_id,
            data=DemandImport(days=[DemandDayIn(day=TODAY, denomination=20, notes=1)]),
            now=clock(),
        )
    with pytest.raises(NotFound):
        cash_demand.history(session, atm_id=999, start=TODAY, end=TODAY)


def _seed(session: Session, world: World, clock: FakeClock) -> None:
    for n, terminal in enumerate(("T1000001", "T1000002", "T1000003")):
        atm_id = world.atms[terminal]
        import_history(session, atm_id, today=TODAY, days=90, now=clock(), seed=n)
    # T1000001 is nearly out of 20s; T1000002 is full; T1000003 is half full.
    report_cash(session, world.atms["T1000001"], (150, 0, 900, 1200), now=clock())
    report_cash(session, world.atms["T1000002"], (3000, 3000, 3000, 3000), now=clock())
    report_cash(session, world.atms["T1000003"], (1500, 1500, 1500, 1500), now=clock())


def test_forecast_of_one_atm(session: Session, world: World, clock: FakeClock) -> None:
    _seed(session, world, clock)
    found = cash_planning.atm_forecast(
        session, atm_id=world.atms["T1000001"], now=clock(), settings=make_settings(), horizon=14
    )
    assert found.origin == TODAY
    assert [d.denomination for d in found.denominations] == [20, 50, 100]
    twenties = found.denominations[0]
    assert len(twenties.forecast) == 14
    mondays = [p.mean for p in twenties.forecast if p.day.weekday() == 0]
    assert all(180 < m < 280 for m in mondays)  # an ordinary Monday is about 220
    assert all(p.lower <= p.mean <= p.upper for p in twenties.forecast)
    first = {c.number: c for c in found.cassettes}
    assert first[1].p50 is not None
    assert first[1].p50 < 1.0  # 150 twenties, 200 minimum: already below
    assert first[4].p50 is not None
    assert first[4].p50 > 5


def test_forecast_needs_history(session: Session, world: World, clock: FakeClock) -> None:
    with pytest.raises(InvalidInput, match="demand history"):
        cash_planning.atm_forecast(
            session,
            atm_id=world.atms["T1000004"],
            now=clock(),
            settings=make_settings(),
            horizon=7,
        )


def test_a_plan_visits_the_atm_running_out_first_routes_it_and_opens_its_task(
    session: Session, world: World, clock: FakeClock
) -> None:
    _seed(session, world, clock)
    settings = make_settings(cash_routing_seconds=0.2, cash_paths=200)
    plan = cash_planning.make_plan(
        session, request=PlanRequest(), by=None, now=clock(), settings=settings
    )
    assert plan.id is not None
    found = cash_planning.detail(session, plan_id=plan.id)
    assert plan.totals["planned"] == 3
    assert plan.totals["skipped"] == 1  # T1000004 has no history
    skipped = next(a for a in found.atms if not a.planned)
    assert "history" in skipped.note
    urgent = found.atms[0]
    assert urgent.terminal_id == "T1000001"
    assert urgent.next_visit == TODAY + timedelta(days=1)
    visit = next(v for v in found.visits if v.terminal_id == "T1000001")
    assert visit.day == TODAY + timedelta(days=1)
    assert int(visit.notes["20"]) >= 200  # more than the minimum
    assert visit.engineer_name is not None  # routed: eli covers North and has the cash skill
    assert visit.arrival is not None
    # T1000003's contract works Monday to Friday only.
    for v in found.visits:
        if v.terminal_id == "T1000003":
            assert v.day.isoweekday() <= 5
    assert found.routes
    # Tasks ahead of time: tomorrow's visits become replenishment tasks, once.
    opened = cash_planning.dispatch_due(session, now=clock(), lead_days=1, speed_kmh=40)
    assert opened
    task = session.get(Task, opened[0])
    assert task is not None
    assert task.kind is TaskKind.REPLENISHMENT
    assert task.source is TaskSource.DEVICE
    assert task.facts["plan"]["visit_id"] == visit.id
    assert task.state is TaskState.ASSIGNED
    assert task.planned_start == visit.arrival
    assert cash_planning.dispatch_due(session, now=clock(), lead_days=1, speed_kmh=40) == []
    stored = session.get(CashPlanVisit, visit.id)
    assert stored is not None
    assert stored.task_id == task.id


def test_a_planned_visit_joins_an_open_low_task(
    session: Session, world: World, clock: FakeClock
) -> None:
    _seed(session, world, clock)
    atm_id = world.atms["T1000001"]
    low = dispatch_rules.on_device_event(
        session,
        atm_id=atm_id,
        event={
            "kind": "cash_unit_threshold",
            "time": "2026-11-16T02:00:00",
            "unit": 1,
            "status": "low",
        },
        now=clock(),
    )
    assert low is not None
    settings = make_settings(cash_routing_seconds=0.2, cash_paths=200)
    cash_planning.make_plan(
        session, request=PlanRequest(region="North"), by=None, now=clock(), settings=settings
    )
    opened = cash_planning.dispatch_due(session, now=clock(), lead_days=1, speed_kmh=40)
    assert low.id in opened
    open_tasks = session.exec(
        select(Task).where(col(Task.atm_id) == atm_id, col(Task.kind) == TaskKind.REPLENISHMENT)
    ).all()
    assert len(open_tasks) == 1
    assert "plan" in open_tasks[0].facts
    assert "units" in open_tasks[0].facts


def test_plan_request_errors(session: Session, world: World, clock: FakeClock) -> None:
    with pytest.raises(InvalidInput, match="region"):
        cash_planning.make_plan(
            session,
            request=PlanRequest(region="Nowhere"),
            by=None,
            now=clock(),
            settings=make_settings(),
        )
    with pytest.raises(NotFound):
        cash_planning.detail(session, plan_id=12345)


def test_levels_ahead_apply_the_plan(session: Session, world: World, clock: FakeClock) -> None:
    _seed(session, world, clock)
    settings = make_settings(cash_routing_seconds=0.2, cash_paths=200)
    cash_planning.make_plan(session, request=PlanRequest(), by=None, now=clock(), settings=settings)
    _, levels, bands, days, reloads = cash_planning.levels_ahead(
        session, atm_id=world.atms["T1000001"], now=clock(), settings=settings, horizon=10
    )
    assert days[0] == TODAY
    assert bands.p50.shape == (4, 10)
    # Cassette 1 (20s) is reloaded tomorrow: its level goes up.
    assert bands.p50[0][1] > bands.p50[0][0]
    assert levels[0].count == 150
    assert reloads[0] == TODAY + timedelta(days=1)
