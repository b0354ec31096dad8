"""Cash forecasting and replenishment planning against two classic policies.

A fleet of ATMs (``--atms``, 200) is simulated day by day for ``--days`` (90)
after ``--history`` (120) days of known demand, with realistic daily demand per
denomination (:mod:`simulators.daily_cash`: weekly and payday cycles, holidays
and their eves, day-level noise, a few demand shocks), under three policies:

* ``fixed``: every ATM is visited once a week on its own weekday and refilled to full;
* ``on_low``: an ATM is refilled to full the day after a denomination reports LOW
  (its notes at or below the cassette minimum; the cassettes of one
  denomination are drawn one after another, so it is the LOW of the last of them);
* ``plan``: every evening the forecasts are refitted on what the ATMs paid out
  (days a denomination ran out do not count: the demand was more than was paid),
  demand paths are simulated, and :func:`cashplan.plan_atm` chooses each ATM's
  visit days and loads over 14 days (visit cost plus idle-cash cost, cash-out
  chance under the target); the visits it puts on the next day are made.

In all three a visit arrives when half of the day's demand has been served
(from the old cassettes, which are then swapped for the new load). An ATM-day
is a cash-out when some denomination could not pay all that was asked.
Idle cash is the cash in the ATMs at the end of each day, averaged over
ATM-days.

Printed (one JSON line each): ``forecast_mape`` (1- to 7-day-ahead forecasts of
each ATM's daily notes per denomination, made weekly, against the true demand),
``forecast_value_mape`` (the same for each ATM's daily cash value),
``forecast_interval_coverage`` (of the 90% intervals), ``cashout_atm_days``
(per policy), ``average_idle_cash`` (per policy), ``visits`` (per policy),
``idle_cash_reduction_vs_fixed``, ``visits_reduction_vs_fixed``,
``plan_cost_per_atm_day`` (visits plus idle cash, per policy) and
``runtime_s``. Targets: the plan has fewer cash-out ATM-days than both other
policies and at least 30% less idle cash than ``fixed``.

The plots (SVG) go to ``--out`` (by default a new folder in the system's
temporary directory), never into the repository.

Run: ``.venv/bin/python bench/forecast.py [--atms 200 --days 90 --seed 1 --out DIR]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cashplan import CassetteLevel, DemandCalendar, DemandModel, PlanningPolicy, fit, plan_atm
from cashplan.svg import Band, Line, Rule, bar_chart, line_chart
from simulators.daily_cash import Fleet, FleetAtm, bench_fleet

START = date(2026, 1, 5)
POLICIES = ("fixed", "on_low", "plan")
ARRIVAL_FRACTION = 0.5
FIT_WINDOW = 120
Array = npt.NDArray[np.float64]


def emit(metric: str, value: object, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": value, "unit": unit}), flush=True)


@dataclass
class AtmState:
    """One ATM under one policy."""

    atm: FleetAtm
    counts: Array  # notes per cassette
    columns: list[int]  # the denomination column of each cassette
    scheduled: dict[int, int] | None = None  # loads for a visit tomorrow (cassette index -> notes)
    visits: int = 0
    cashout_days: int = 0
    idle: float = 0.0  # sum of end-of-day cash
    levels: list[list[float]] = field(default_factory=list)

    @classmethod
    def full(cls, atm: FleetAtm) -> AtmState:
        columns = [atm.denominations.index(d) for d in atm.cassettes]
        return cls(atm, np.full(len(atm.cassettes), float(atm.capacity)), columns)

    def pool(self) -> Array:
        out = np.zeros(len(self.atm.denominations))
        for i, column in enumerate(self.columns):
            out[column] += self.counts[i]
        return out

    def serve(self, want: Array) -> Array:
        """Take ``want`` notes per denomination, cassettes in number order; returns the paid."""
        remaining = want.copy()
        for i, column in enumerate(self.columns):
            take = min(self.counts[i], remaining[column])
            self.counts[i] -= take
            remaining[column] -= take
        return np.asarray(want - remaining, dtype=np.float64)

    def day(self, want: Array) -> Array:
        """One day: a visit if one is scheduled, the demand served; returns the notes paid."""
        if self.scheduled is not None:
            paid = self.serve(want * ARRIVAL_FRACTION)
            for i, notes in self.scheduled.items():
                self.counts[i] = notes
            self.visits += 1
            self.scheduled = None
            paid = paid + self.serve(want * (1.0 - ARRIVAL_FRACTION))
        else:
            paid = self.serve(want)
        if np.any(want - paid > 1e-9):
            self.cashout_days += 1
        self.idle += float(self.pool() @ np.asarray(self.atm.denominations, dtype=np.float64))
        self.levels.append(self.counts.tolist())
        return paid

    def refill_to_full(self) -> None:
        self.scheduled = dict.fromkeys(range(len(self.counts)), self.atm.capacity)


@dataclass
class ForecastLog:
    """What the forecasts said against what happened."""

    errors: list[float] = field(default_factory=list)
    value_errors: list[float] = field(default_factory=list)
    inside: int = 0
    total: int = 0
    sample: dict[int, tuple[float, float, float]] = field(default_factory=dict)  # day -> m, lo, hi


def _series_index(fleet: Fleet) -> list[list[int]]:
    index = []
    k = 0
    for atm in fleet.atms:
        index.append(list(range(k, k + len(atm.denominations))))
        k += len(atm.denominations)
    return index


def run(args: argparse.Namespace) -> None:
    began = time.perf_counter()
    rng = np.random.default_rng(args.seed)
    total_days = args.history + args.days
    fleet = bench_fleet(args.atms, START, total_days, args.seed)
    demand = fleet.demand(START, total_days, rng)  # per ATM: (days, denominations)
    calendar = DemandCalendar.of(fleet.public_holidays)
    index = _series_index(fleet)
    n_series = index[-1][-1] + 1
    # What the planner sees: notes paid per series and day, and whether the day counts.
    seen = np.zeros((n_series, total_days))
    observed = np.ones((n_series, total_days), dtype=bool)
    for a, rows in enumerate(index):
        seen[rows, : args.history] = demand[a][: args.history].T

    states = {name: [AtmState.full(atm) for atm in fleet.atms] for name in POLICIES}
    policy = PlanningPolicy(
        visit_cost=args.visit_cost,
        idle_cash_rate=args.idle_rate,
        cashout_target=args.target,
        arrival_fraction=ARRIVAL_FRACTION,
        horizon_days=14,
        max_cycle_days=14,
        first_visit_day=0,
    )
    log = ForecastLog()
    fleet_cash: dict[str, list[float]] = {name: [] for name in POLICIES}
    sample_atm = int(np.argmax([d[: args.history].sum() for d in demand]))
    sample_column = int(np.argmax(demand[sample_atm][: args.history].sum(axis=0)))
    plan_seconds = 0.0
    for offset in range(args.days):
        today = args.history + offset
        weekday_index = offset % 7
        for name in POLICIES:
            cash = 0.0
            for a, state in enumerate(states[name]):
                paid = state.day(demand[a][today])
                if name == "plan":
                    rows = index[a]
                    seen[rows, today] = paid
                    short = demand[a][today] - paid > 1e-9
                    observed[rows, today] = ~short
                cash += float(state.pool() @ np.asarray(state.atm.denominations, dtype=float))
            fleet_cash[name].append(cash)
        if offset == args.days - 1:
            break
        # This evening's decisions, for tomorrow.
        for a, state in enumerate(states["fixed"]):
            if a % 7 == (weekday_index + 1) % 7:
                state.refill_to_full()
        for state in states["on_low"]:
            minimum = state.atm.minimum
            if np.any(state.pool() <= minimum):
                state.refill_to_full()
        tic = time.perf_counter()
        first = max(0, today + 1 - FIT_WINDOW)
        model = fit(
            seen[:, first : today + 1],
            START + timedelta(days=first),
            calendar,
            observed=observed[:, first : today + 1],
        )
        _plan_tomorrow(states["plan"], model, policy, index, rng, args)
        plan_seconds += time.perf_counter() - tic
        _log_forecasts(
            log,
            fleet,
            demand,
            model,
            today,
            index,
            args,
            (sample_atm, sample_column),
            weekly=offset % 7 == 0,
        )

    atm_days = args.atms * args.days
    cashouts = {name: sum(s.cashout_days for s in states[name]) for name in POLICIES}
    idle = {name: sum(s.idle for s in states[name]) / atm_days for name in POLICIES}
    visits = {name: sum(s.visits for s in states[name]) for name in POLICIES}
    cost = {
        name: (visits[name] * args.visit_cost + idle[name] * atm_days * args.idle_rate / 365)
        / atm_days
        for name in POLICIES
    }
    emit("forecast_mape", round(float(np.mean(log.errors)), 4), "fraction")
    emit("forecast_value_mape", round(float(np.mean(log.value_errors)), 4), "fraction")
    emit("forecast_interval_coverage", round(log.inside / max(log.total, 1), 4), "fraction")
    emit("cashout_atm_days", cashouts, "ATM-days")
    emit("average_idle_cash", {k: round(v) for k, v in idle.items()}, "USD per ATM")
    emit("visits", visits, "visits")
    emit("idle_cash_reduction_vs_fixed", round(1 - idle["plan"] / idle["fixed"], 4), "fraction")
    emit("visits_reduction_vs_fixed", round(1 - visits["plan"] / visits["fixed"], 4), "fraction")
    emit("plan_cost_per_atm_day", {k: round(v, 2) for k, v in cost.items()}, "USD")
    emit("planning_seconds", round(plan_seconds, 1), "s")
    emit("runtime_s", round(time.perf_counter() - began, 1), "s")
    _plots(
        args,
        fleet,
        demand,
        states,
        fleet_cash,
        log,
        cashouts,
        idle,
        visits,
        sample_atm,
        sample_column,
    )


def _plan_tomorrow(
    states: Sequence[AtmState],
    model: DemandModel,
    policy: PlanningPolicy,
    index: list[list[int]],
    rng: np.random.Generator,
    args: argparse.Namespace,
) -> None:
    for a, state in enumerate(states):
        atm = state.atm
        paths = model.select(index[a]).sample_paths(policy.path_days, args.paths, rng)
        cassettes = [
            CassetteLevel(i + 1, d, int(state.counts[i]), atm.minimum, atm.capacity)
            for i, d in enumerate(atm.cassettes)
        ]
        plan = plan_atm(cassettes, paths, list(atm.denominations), policy)
        if plan.visits and plan.visits[0].day == 0:
            state.scheduled = {n - 1: notes for n, notes in plan.visits[0].loads.items()}


def _log_forecasts(
    log: ForecastLog,
    fleet: Fleet,
    demand: list[Array],
    model: DemandModel,
    today: int,
    index: list[list[int]],
    args: argparse.Namespace,
    sample: tuple[int, int],
    *,
    weekly: bool,
) -> None:
    sample_atm, sample_column = sample
    horizon = min(7, args.history + args.days - today - 1)
    forecast = model.forecast(horizon, level=0.9)
    row = index[sample_atm][sample_column]
    log.sample[today + 1] = (
        float(forecast.mean[row, 0]),
        float(forecast.lower[row, 0]),
        float(forecast.upper[row, 0]),
    )
    if not weekly:
        return
    for a, rows in enumerate(index):
        actual = demand[a][today + 1 : today + 1 + horizon].T  # (denoms, h)
        mean = forecast.mean[rows]
        keep = actual > 0
        log.errors.extend((np.abs(actual - mean)[keep] / actual[keep]).tolist())
        values = np.asarray(fleet.atms[a].denominations, dtype=float)
        value_actual = values @ actual
        value_mean = values @ mean
        ok = value_actual > 0
        log.value_errors.extend((np.abs(value_actual - value_mean)[ok] / value_actual[ok]).tolist())
        inside = (actual >= forecast.lower[rows]) & (actual <= forecast.upper[rows])
        log.inside += int(inside.sum())
        log.total += int(inside.size)


def _plots(
    args: argparse.Namespace,
    fleet: Fleet,
    demand: list[Array],
    states: dict[str, list[AtmState]],
    fleet_cash: dict[str, list[float]],
    log: ForecastLog,
    cashouts: dict[str, int],
    idle: dict[str, float],
    visits: dict[str, int],
    sample_atm: int,
    sample_column: int,
) -> None:
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="atm-forecast-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    labels = [
        (START + timedelta(days=args.history + k)).strftime("%d %b") for k in range(args.days)
    ]
    names = list(POLICIES)
    for file, title, unit, values in (
        ("cashouts.svg", "Cash-out ATM-days per policy", "ATM-days", cashouts),
        ("idle_cash.svg", "Average cash held per ATM (USD) per policy", "USD", idle),
        ("visits.svg", "Replenishment visits per policy", "visits", visits),
    ):
        (out / file).write_text(
            bar_chart(title, names, [(unit, [float(values[name]) for name in names])])
        )
    (out / "fleet_cash.svg").write_text(
        line_chart(
            "Cash held in the fleet's ATMs at the end of each day",
            labels,
            [Line(name, fleet_cash[name]) for name in names],
            y_label="USD",
        )
    )
    atm = fleet.atms[sample_atm]
    denomination = atm.denominations[sample_column]
    days = range(args.history, args.history + args.days)
    actual = [float(demand[sample_atm][d, sample_column]) for d in days]
    predicted = [log.sample.get(d, (None, None, None)) for d in days]
    (out / "forecast_vs_actual.svg").write_text(
        line_chart(
            f"{atm.terminal_id}: {denomination}s asked for per day, and the day-ahead forecast",
            labels,
            [
                Line("actual", actual, markers=True),
                Line("forecast", [p[0] for p in predicted], dashed=True),
            ],
            [Band("90% interval", [p[1] for p in predicted], [p[2] for p in predicted])],
            y_label="notes",
        )
    )
    for name in names:
        levels = np.array(states[name][sample_atm].levels)  # (days, cassettes)
        (out / f"levels_{name}.svg").write_text(
            line_chart(
                f"{atm.terminal_id} under {name}: notes in each cassette at the end of the day",
                labels,
                [
                    Line(f"cassette {i + 1} ({d})", levels[:, i].tolist())
                    for i, d in enumerate(atm.cassettes)
                ],
                rules=[Rule(atm.minimum, "minimum")],
                y_label="notes",
            )
        )
    print(f"plots written to {out}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--atms", type=int, default=200)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--history", type=int, default=120)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--paths", type=int, default=200, help="demand paths per ATM and plan")
    parser.add_argument("--visit-cost", type=float, default=150.0, help="USD per visit")
    parser.add_argument("--idle-rate", type=float, default=0.08, help="cost of idle cash a year")
    parser.add_argument("--target", type=float, default=0.02, help="cash-out chance per visit")
    parser.add_argument("--out", default="", help="folder for the plots (outside the repository)")
    args = parser.parse_args(argv)
    if args.atms < 1 or args.days < 8 or args.history < 28:
        parser.error("need --atms >= 1, --days >= 8 and --history >= 28")
    run(args)


if __name__ == "__main__":
    main()
