"""Exponential backoff with full jitter."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agent.backoff import Backoff


@given(seed=st.integers(0, 2**32), failures=st.integers(1, 40))
def test_delays_stay_under_a_doubling_ceiling(seed: int, failures: int) -> None:
    backoff = Backoff(base_s=0.5, cap_s=120.0, rng=random.Random(seed))
    for attempt in range(failures):
        delay = backoff.next_delay()
        assert 0.0 <= delay <= min(120.0, 0.5 * 2**attempt)


def test_jitter_spreads_a_fleet_and_reset_starts_over() -> None:
    fleet = [Backoff(rng=random.Random(n)) for n in range(50)]
    for backoff in fleet:
        for _ in range(6):
            backoff.next_delay()
    sixth = [backoff.next_delay() for backoff in fleet]
    assert len({round(delay, 3) for delay in sixth}) == 50
    assert max(sixth) > 32
    fleet[0].reset()
    assert fleet[0].ceiling() == 1.0


def test_retry_after_is_a_floor_within_the_cap() -> None:
    backoff = Backoff(base_s=1.0, cap_s=60.0, rng=random.Random(1))
    assert backoff.next_delay(retry_after=30) >= 30
    assert backoff.next_delay(retry_after=3600) == 60


def test_nonsense_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base_s=0)
    with pytest.raises(ValueError, match="0 < base <= cap"):
        Backoff(base_s=10, cap_s=1)
