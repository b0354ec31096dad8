"""Replenishment plans on demand whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from cashplan import CassetteLevel, InvalidArgument, PlanningPolicy, plan_atm, project_levels

DENOMS = [20, 50]


def _paths(policy: PlanningPolicy, per_day: list[float], paths: int = 50) -> np.ndarray:
    return np.tile(np.array(per_day, dtype=float), (paths, policy.path_days, 1))


def _cassettes(c20: int = 1000, c50: int = 600) -> list[CassetteLevel]:
    return [
        CassetteLevel(1, 20, c20, 100, 3000),
        CassetteLevel(2, 50, c50, 100, 3000),
    ]


def test_the_first_visit_comes_before_the_cash_runs_out() -> None:
    policy = PlanningPolicy(visit_cost=150, idle_cash_rate=0.08)
    plan = plan_atm(_cassettes(), _paths(policy, [200.0, 50.0]), DENOMS, policy)
    # 1000 twenties at 200 a day: day 4 runs out once half of it is served (the arrival).
    assert plan.latest_safe_day == 4
    assert plan.visits
    assert plan.visits[0].day <= 4
    assert not plan.at_risk
    # Every load covers its interval to the next visit.
    for visit in plan.visits:
        assert visit.cashout_probability == 0.0
        days = visit.covers_until - visit.day
        assert visit.notes[20] >= 200 * days
        assert visit.notes[20] % 100 == 0
        assert sum(visit.loads.values()) == sum(visit.notes.values())


def test_dear_visits_make_longer_cycles_and_dear_cash_shorter_ones() -> None:
    cheap_visits = PlanningPolicy(visit_cost=20, idle_cash_rate=0.2, horizon_days=21)
    dear_visits = PlanningPolicy(visit_cost=2000, idle_cash_rate=0.02, horizon_days=21)
    cheap = plan_atm(_cassettes(), _paths(cheap_visits, [200.0, 50.0]), DENOMS, cheap_visits)
    dear = plan_atm(_cassettes(), _paths(dear_visits, [200.0, 50.0]), DENOMS, dear_visits)
    assert len(cheap.visits) > len(dear.visits)
    cheap_cycle = cheap.visits[0].covers_until - cheap.visits[0].day
    dear_cycle = dear.visits[0].covers_until - dear.visits[0].day
    assert dear_cycle > cheap_cycle


def test_loads_respect_capacity() -> None:
    policy = PlanningPolicy(visit_cost=5000, idle_cash_rate=0.001)
    plan = plan_atm(_cassettes(), _paths(policy, [400.0, 50.0]), DENOMS, policy)
    for visit in plan.visits:
        assert visit.notes[20] <= 3000
        assert visit.covers_until - visit.day <= 7  # 3000 / 400 a day


def test_the_plan_keeps_the_cashout_risk_under_target_on_uncertain_demand() -> None:
    rng = np.random.default_rng(1)
    policy = PlanningPolicy(cashout_target=0.05)
    paths = rng.gamma(20, 10, size=(2000, policy.path_days, 2))  # mean 200, sd ~45
    plan = plan_atm(_cassettes(2000, 2000), paths, DENOMS, policy)
    assert plan.visits
    assert all(v.cashout_probability <= 0.05 for v in plan.visits)
    reloads = {v.day: v.loads for v in plan.visits}
    bands = project_levels(
        _cassettes(2000, 2000), paths[:, : policy.horizon_days], DENOMS, reloads=reloads
    )
    assert bands.cashout_probability[-1] <= 0.1


def test_enough_cash_means_no_visit() -> None:
    policy = PlanningPolicy(idle_cash_rate=0.02)
    plan = plan_atm(_cassettes(1000, 1000), _paths(policy, [10.0, 10.0]), DENOMS, policy)
    assert plan.visits == []
    assert plan.visit_cost == 0
    assert plan.idle_cost > 0
    assert plan.latest_safe_day is None
    assert not plan.at_risk


def test_much_idle_cash_is_worth_a_visit_to_take_it_out() -> None:
    # 210,000 held at 20% a year costs about 115 a day; one visit costs 150.
    policy = PlanningPolicy(idle_cash_rate=0.2)
    plan = plan_atm(_cassettes(3000, 3000), _paths(policy, [10.0, 10.0]), DENOMS, policy)
    assert [v.day for v in plan.visits] == [0]
    assert plan.visits[0].value < 20_000


def test_an_empty_atm_is_visited_at_once_and_flagged() -> None:
    policy = PlanningPolicy(first_visit_day=1)
    plan = plan_atm(_cassettes(0, 0), _paths(policy, [100.0, 10.0]), DENOMS, policy)
    assert plan.at_risk
    assert plan.visits[0].day == 1


def test_visits_only_on_allowed_days() -> None:
    policy = PlanningPolicy(horizon_days=7)
    allowed = [False, True, False, True, False, True, False]
    plan = plan_atm(
        _cassettes(700, 600), _paths(policy, [200.0, 50.0]), DENOMS, policy, visit_days=allowed
    )
    assert plan.visits
    assert all(allowed[v.day] for v in plan.visits)


def test_respecting_the_minimum_loads_more() -> None:
    loose = PlanningPolicy()
    strict = PlanningPolicy(respect_minimum=True)
    a = plan_atm(_cassettes(), _paths(loose, [200.0, 50.0]), DENOMS, loose)
    b = plan_atm(_cassettes(), _paths(strict, [200.0, 50.0]), DENOMS, strict)
    assert b.visits[0].day <= a.visits[0].day
    assert b.visits[0].notes[20] > a.visits[-1].notes[20] - 200 * 14


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"cashout_target": 0.0}, "cashout_target"),
        ({"bundle": 0}, "bundle"),
        ({"horizon_days": 0}, "horizon_days"),
        ({"first_visit_day": 14}, "first_visit_day"),
    ],
)
def test_bad_policies_are_refused(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(InvalidArgument, match=name):
        PlanningPolicy(**kwargs)  # type: ignore[arg-type]


def test_short_paths_and_bad_flags_are_refused() -> None:
    policy = PlanningPolicy()
    with pytest.raises(InvalidArgument, match="paths cover"):
        plan_atm(_cassettes(), np.ones((5, 10, 2)), DENOMS, policy)
    with pytest.raises(InvalidArgument, match="visit_days"):
        plan_atm(_cassettes(), _paths(policy, [1.0, 1.0]), DENOMS, policy, visit_days=[True])
