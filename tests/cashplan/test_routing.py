"""Routes within windows and shifts."""

from __future__ import annotations

import random

import pytest

from cashplan import Crew, InvalidArgument, Stop, plan_routes
from cashplan.routing import haversine_km


def _stops(count: int, seed: int = 1) -> list[Stop]:
    rng = random.Random(seed)
    return [
        Stop(
            f"S{i}",
            52.5 + rng.uniform(-0.1, 0.1),
            13.4 + rng.uniform(-0.15, 0.15),
            service_minutes=30,
            window_start=8 * 60 if i % 2 else 12 * 60,
            window_end=18 * 60,
        )
        for i in range(count)
    ]


def test_every_stop_is_routed_inside_its_window_and_the_shift() -> None:
    stops = _stops(12)
    crews = [Crew("A", 52.5, 13.4, 7 * 60, 19 * 60), Crew("B", 52.52, 13.42, 7 * 60, 19 * 60)]
    plan = plan_routes(stops, crews, time_limit_s=0.5)
    assert plan.unrouted == []
    seen = [s.key for route in plan.routes for s in route.stops]
    assert sorted(seen) == sorted(s.key for s in stops)
    by_key = {s.key: s for s in stops}
    for route in plan.routes:
        assert route.start >= 7 * 60
        assert route.end <= 19 * 60
        previous = route.start
        for stop in route.stops:
            window = by_key[stop.key]
            assert window.window_start <= stop.arrival <= window.window_end
            assert stop.arrival >= previous
            previous = stop.departure
    assert plan.distance_km > 0


def test_a_stop_that_fits_no_shift_is_reported_unrouted() -> None:
    stops = [*_stops(3), Stop("late", 52.5, 13.4, 30, 22 * 60, 23 * 60)]
    plan = plan_routes(stops, [Crew("A", 52.5, 13.4, 8 * 60, 17 * 60)], time_limit_s=0.3)
    assert plan.unrouted == ["late"]


def test_too_much_work_for_one_shift_leaves_some_out() -> None:
    stops = [Stop(f"S{i}", 52.5, 13.4 + i * 0.01, 120, 0, 24 * 60) for i in range(6)]
    plan = plan_routes(stops, [Crew("A", 52.5, 13.4, 8 * 60, 14 * 60)], time_limit_s=0.3)
    routed = [s.key for route in plan.routes for s in route.stops]
    assert len(routed) <= 3
    assert len(routed) + len(plan.unrouted) == 6


def test_no_crews_or_no_stops() -> None:
    assert plan_routes([], [Crew("A", 0, 0)]).routes == []
    assert plan_routes(_stops(2), []).unrouted == ["S0", "S1"]


def test_bad_input_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unique"):
        plan_routes([Stop("x", 0, 0), Stop("x", 1, 1)], [Crew("A", 0, 0)])
    with pytest.raises(InvalidArgument, match="window"):
        plan_routes([Stop("x", 0, 0, 10, 600, 500)], [Crew("A", 0, 0)])
    with pytest.raises(InvalidArgument, match="shift"):
        plan_routes([Stop("x", 0, 0)], [Crew("A", 0, 0, 600, 500)])


def test_haversine() -> None:
    assert haversine_km(0, 0, 0, 1) == pytest.approx(111.19, abs=0.01)
