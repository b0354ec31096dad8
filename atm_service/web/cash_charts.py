"""The cash-planning charts as SVG text, for the dispatcher's pages (inline) and the API.

Pure functions of what the services return: forecast against actual per
denomination, cassette levels ahead with the plan's reloads, and a day's routes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import cashplan
from atm_service.models.cash_planning import AtmForecast, PlanDetail
from atm_service.models.fleet import Site
from cashplan.svg import Band, Line, MapPoint, Rule, line_chart, route_map

WIDTH = 680


def _label(day: date) -> str:
    return day.strftime("%d %b")


def forecast_chart(forecast: AtmForecast, denomination: int) -> str:
    """Notes asked for per day: actual, one-day-ahead fit, earlier plans' forecasts, and the
    forecast ahead with its interval."""
    found = next((d for d in forecast.denominations if d.denomination == denomination), None)
    if found is None:
        raise cashplan.InvalidArgument(
            f"ATM {forecast.terminal_id} has no {denomination} notes", field="denomination"
        )
    past = found.history
    ahead = found.forecast
    labels = [_label(p.day) for p in past] + [_label(p.day) for p in ahead]
    n_past, n_ahead = len(past), len(ahead)
    actual: list[float | None] = [float(p.notes) for p in past] + [None] * n_ahead
    not_counted: list[float | None] = [None if p.observed else float(p.notes) for p in past] + [
        None
    ] * n_ahead
    fitted: list[float | None] = [p.fitted for p in past] + [None] * n_ahead
    planned: list[float | None] = [p.planned for p in past] + [None] * n_ahead
    mean: list[float | None] = [None] * n_past + [p.mean for p in ahead]
    lines = [
        Line("actual", actual, markers=True),
        Line("one day ahead", fitted, colour="#5f6b7a", dashed=True),
        Line("forecast", mean, colour="#d9822b"),
    ]
    if any(v is not None for v in planned):
        lines.append(Line("plans' forecast", planned, colour="#6b4fa0", dashed=True))
    if any(v is not None for v in not_counted):
        lines.append(Line("not counted", not_counted, colour="#b3261e", markers=True))
    band = Band(
        f"{round(forecast.level * 100)}% interval",
        [None] * n_past + [p.lower for p in ahead],
        [None] * n_past + [p.upper for p in ahead],
        colour="#d9822b",
    )
    return line_chart(
        f"{forecast.terminal_id}: {denomination} notes a day, actual and forecast",
        labels,
        lines,
        [band],
        marker_at=n_past,
        y_label="notes",
        width=WIDTH,
    )


def levels_chart(
    terminal_id: str,
    levels: Sequence[cashplan.CassetteLevel],
    bands: cashplan.LevelBands,
    days: Sequence[date],
    reload_days: Sequence[date] = (),
) -> str:
    """Each cassette's expected end-of-day notes (median, 10-90% band), minimums as rules."""
    labels = [_label(day) for day in days]
    by_number = {level.number: level for level in levels}
    lines = []
    shaded = []
    for row, number in enumerate(bands.numbers):
        level = by_number[number]
        name = f"cassette {number} ({level.denomination})"
        lines.append(Line(name, [float(v) for v in bands.p50[row]]))
        shaded.append(
            Band(
                "",
                [float(v) for v in bands.p10[row]],
                [float(v) for v in bands.p90[row]],
                colour=cashplan.svg.PALETTE[row % len(cashplan.svg.PALETTE)],
            )
        )
    minimums = sorted({level.minimum for level in levels})
    rules = [Rule(float(m), f"minimum {m}") for m in minimums if m > 0]
    marker = days.index(reload_days[0]) if reload_days and reload_days[0] in days else None
    return line_chart(
        f"{terminal_id}: notes in each cassette at the end of the day (median, 10-90%)",
        labels,
        lines,
        shaded,
        rules,
        marker_at=marker,
        marker_label="planned visit",
        y_label="notes",
        width=WIDTH,
    )


def routes_chart(
    plan: PlanDetail, day: date, sites: dict[int, Site], bases: dict[int, tuple[float, float]]
) -> str:
    """The routes of one day: each engineer's base and numbered stops; unrouted visits in red."""
    visits = {v.id: v for v in plan.visits}
    drawn = []
    for route in plan.routes:
        if route.day != day:
            continue
        lat, lon = bases.get(route.engineer_id, (0.0, 0.0))
        stops = []
        for visit_id in route.visits:
            v = visits[visit_id]
            site = sites[v.atm_id]
            stops.append(MapPoint(site.latitude, site.longitude, f"{v.terminal_id} {v.site_name}"))
        drawn.append((route.engineer_name, MapPoint(lat, lon, route.engineer_name), stops))
    unrouted = [
        MapPoint(sites[v.atm_id].latitude, sites[v.atm_id].longitude, v.terminal_id)
        for v in plan.visits
        if v.id in set(plan.unrouted) and v.day == day
    ]
    return route_map(f"Routes on {day.isoformat()}", drawn, unrouted, width=WIDTH)
