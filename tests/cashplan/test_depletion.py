"""Time to minimum and levels ahead, on demand whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from cashplan import CassetteLevel, InvalidArgument, project_levels, time_to_minimum


def _constant(per_day: list[float], days: int = 30, paths: int = 5) -> np.ndarray:
    return np.tile(np.array(per_day, dtype=float), (paths, days, 1))


def test_constant_demand_reaches_the_minimum_on_the_day_it_should() -> None:
    cassettes = [CassetteLevel(1, 50, 1000, 100, 2000), CassetteLevel(2, 100, 550, 50, 2000)]
    found = time_to_minimum(cassettes, _constant([100.0, 40.0]), [50, 100])
    first, second = found
    assert (first.number, first.p10, first.p50, first.p90) == (1, 9.0, 9.0, 9.0)
    assert second.p50 == pytest.approx(12.5)  # 500 notes at 40 a day
    assert first.probability_within == 1.0


def test_cassettes_of_one_denomination_are_drawn_in_number_order() -> None:
    cassettes = [CassetteLevel(1, 20, 500, 100, 2000), CassetteLevel(2, 20, 1000, 100, 2000)]
    first, second = time_to_minimum(cassettes, _constant([100.0]), [20])
    assert first.p50 == pytest.approx(4.0)  # 400 notes down to its minimum
    assert second.p50 == pytest.approx(14.0)  # after cassette 1's 500, 900 more


def test_beyond_the_horizon_is_none() -> None:
    cassettes = [CassetteLevel(1, 20, 2000, 100, 2000)]
    (found,) = time_to_minimum(cassettes, _constant([10.0], days=20), [20])
    assert found.p50 is None
    assert found.probability_within == 0.0


def test_uncertain_demand_gives_a_spread() -> None:
    rng = np.random.default_rng(3)
    paths = rng.uniform(50, 150, size=(2000, 40, 1))
    (found,) = time_to_minimum([CassetteLevel(1, 20, 1100, 100, 2000)], paths, [20])
    assert found.p10 is not None
    assert found.p50 is not None
    assert found.p90 is not None
    assert found.p10 < found.p50 < found.p90
    assert 9.0 < found.p50 < 11.0


def test_levels_ahead_with_a_reload() -> None:
    cassettes = [CassetteLevel(1, 50, 500, 100, 2000)]
    bands = project_levels(
        cassettes, _constant([100.0], days=10), [50], reloads={3: {1: 1000}}, arrival_fraction=0.5
    )
    assert bands.p50[0].tolist()[:5] == [400, 300, 200, 950, 850]
    assert bands.cashout_probability.max() == 0.0
    short = project_levels(cassettes, _constant([100.0], days=10), [50])
    assert short.p50[0][4] == 0
    assert short.cashout_probability[5] == 1.0  # day 5 wants 100 notes and none are left
    assert short.cashout_probability[4] == 0.0  # day 4 takes the last 100


def test_bad_arguments_name_what_is_wrong() -> None:
    cassettes = [CassetteLevel(1, 50, 500, 100, 2000)]
    with pytest.raises(InvalidArgument, match="no forecast"):
        time_to_minimum(cassettes, _constant([1.0]), [20])
    with pytest.raises(InvalidArgument, match="denominations"):
        time_to_minimum(cassettes, _constant([1.0, 2.0]), [50])
    with pytest.raises(InvalidArgument, match="reload day"):
        project_levels(cassettes, _constant([1.0], days=5), [50], reloads={9: {1: 10}})
    with pytest.raises(InvalidArgument, match="unknown cassettes"):
        project_levels(cassettes, _constant([1.0], days=5), [50], reloads={1: {7: 10}})
    with pytest.raises(InvalidArgument, match="cassette 3"):
        CassetteLevel(3, 50, -1, 0, 10)
