"""The daily cash demand model: note mixes, calendar effects, the benchmark's fleet."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from simulators.daily_cash import bench_fleet, daily_notes, mix_matrix, note_mix
from simulators.demand import SeasonalDemand, TerminalDemand


@pytest.mark.parametrize(
    ("amount", "denominations", "expected"),
    [
        (60, (20, 50, 100), (3, 0, 0)),  # greedy 50 + 10 fails: backs off to 20s
        (150, (20, 50, 100), (0, 1, 1)),
        (60, (10, 20, 50, 100), (1, 0, 1, 0)),
        (500, (20, 50, 100), (0, 0, 5)),
        (30, (20, 50), None),
        (1000, (20,), None),  # 50 notes: over the dispenser's 40
    ],
)
def test_note_mix(amount: int, denominations: tuple[int, ...], expected: object) -> None:
    assert note_mix(amount, denominations) == expected


def test_fifties_join_the_menu_only_where_loaded() -> None:
    assert mix_matrix((20, 100)).shape[0] + 3 == mix_matrix((20, 50, 100)).shape[0]


def test_daily_notes_follow_the_model() -> None:
    model = SeasonalDemand(
        terminals={"T1": TerminalDemand(base_daily=400.0, payday_factor=1.5)},
        holidays={date(2026, 3, 10): 0.5},
    )
    days = [date(2026, 3, 2) + timedelta(days=k) for k in range(28)]
    rng = np.random.default_rng(4)
    runs = np.stack([daily_notes(model, "T1", (20, 100), days, rng) for _ in range(40)])
    mean = runs.mean(axis=0).sum(axis=1)  # notes per day
    by_day = dict(zip(days, mean, strict=True))
    assert by_day[date(2026, 3, 10)] < 0.65 * by_day[date(2026, 3, 17)]  # a holiday Tuesday
    assert by_day[date(2026, 3, 15)] > 1.3 * by_day[date(2026, 3, 22)]  # a payday Sunday
    assert np.all(runs >= 0)


def test_the_bench_fleet_has_holidays_eves_and_shocks() -> None:
    fleet = bench_fleet(30, date(2026, 1, 5), 200, seed=3)
    assert len(fleet.atms) == 30
    assert fleet.public_holidays
    for holiday in fleet.public_holidays:
        assert fleet.holidays[holiday] < 1.0
        assert fleet.holidays[holiday - timedelta(days=1)] > 1.0
    assert any(s.terminals is None for s in fleet.shocks)
    assert any(s.factor < 1 for s in fleet.shocks)
    demand = fleet.demand(date(2026, 1, 5), 10, np.random.default_rng(1))
    assert demand[0].shape == (10, len(fleet.atms[0].denominations))
    again = bench_fleet(30, date(2026, 1, 5), 200, seed=3)
    assert again.atms == fleet.atms
