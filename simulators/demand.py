"""Customer demand: how many customers an ATM sees on a day, when, and what they ask for.

The model is pluggable (:class:`DemandModel`). :class:`SeasonalDemand` gives each
terminal its own parameters (:class:`TerminalDemand`: base volume, weekday
factors, payday lift, share of balance inquiries, amount scale) and applies
fleet-wide calendars: holidays and demand shocks over date ranges. Weekly and
monthly cycles, holidays and shocks make it a usable ground truth for a
cash-forecasting benchmark; :func:`arrivals` draws the day's arrival times from
the expected count and the hourly profile.
"""

from __future__ import annotations

import calendar
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from math import exp, sqrt
from random import Random
from typing import Protocol

# relative arrival intensity per hour of the day (weekdays and weekends)
WEEKDAY_PROFILE: tuple[float, ...] = (
    0.25,
    0.15,
    0.1,
    0.08,
    0.1,
    0.25,
    0.7,
    1.4,
    2.2,
    2.6,
    2.9,
    3.2,
    3.9,
    3.6,
    3.1,
    3.1,
    3.4,
    4.0,
    4.1,
    3.6,
    2.8,
    2.0,
    1.3,
    0.6,
)
WEEKEND_PROFILE: tuple[float, ...] = (
    0.6,
    0.45,
    0.3,
    0.2,
    0.15,
    0.2,
    0.35,
    0.7,
    1.3,
    2.0,
    2.8,
    3.4,
    3.8,
    3.8,
    3.6,
    3.4,
    3.3,
    3.3,
    3.2,
    3.0,
    2.6,
    2.1,
    1.5,
    0.9,
)

# fast-cash menu in major units and its weights (multiples of 20 work on every cassette set)
AMOUNT_MENU: tuple[int, ...] = (20, 40, 60, 100, 120, 140, 200, 240, 300, 400, 500)
AMOUNT_WEIGHTS: tuple[float, ...] = (10, 10, 3, 14, 8, 5, 14, 4, 7, 4, 5)
FIFTY_AMOUNTS: tuple[int, ...] = (50, 150, 250)


@dataclass(frozen=True)
class TerminalDemand:
    """One ATM's demand parameters."""

    base_daily: float  # expected customer sessions on an ordinary Monday
    weekday_factors: tuple[float, ...] = (1.0, 0.97, 0.98, 1.02, 1.18, 1.1, 0.8)  # Mon..Sun
    payday_factor: float = 1.35  # on paydays (1st, 15th and the last day of the month)
    balance_share: float = 0.2  # share of sessions that are balance inquiries
    amount_scale: float = 1.0  # > 1 shifts withdrawals to larger amounts


@dataclass(frozen=True)
class DemandShock:
    """A multiplier on demand over a date range (closed interval), for some or all terminals."""

    start: date
    end: date
    factor: float
    terminals: frozenset[str] | None = None


class DemandModel(Protocol):
    """What the ATM simulator asks of a demand model."""

    def expected_customers(self, terminal_id: str, day: date) -> float: ...
    def hourly_weights(self, terminal_id: str, day: date) -> Sequence[float]: ...
    def balance_share(self, terminal_id: str, day: date) -> float: ...
    def amount_weights(self, terminal_id: str, day: date) -> Sequence[float]: ...


def is_payday(day: date) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day in (1, 15, last)


@dataclass
class SeasonalDemand:
    """Per-terminal parameters with weekly and monthly cycles, holidays and shocks."""

    terminals: Mapping[str, TerminalDemand]
    holidays: Mapping[date, float] = field(default_factory=dict)  # date -> demand factor
    shocks: Sequence[DemandShock] = ()
    default: TerminalDemand = TerminalDemand(base_daily=120.0)

    @classmethod
    def for_fleet(
        cls,
        terminal_ids: Sequence[str],
        mean_daily: float,
        rng: Random,
        *,
        holidays: Mapping[date, float] | None = None,
        shocks: Sequence[DemandShock] = (),
    ) -> SeasonalDemand:
        """Draw each terminal's parameters around a fleet mean (log-normal volumes)."""
        params = {}
        for tid in terminal_ids:
            volume = mean_daily * exp(rng.gauss(0.0, 0.35) - 0.06)
            weekend = rng.uniform(0.55, 1.1)
            factors = (
                1.0,
                rng.uniform(0.92, 1.0),
                rng.uniform(0.92, 1.02),
                rng.uniform(0.95, 1.08),
                rng.uniform(1.08, 1.3),
                weekend * rng.uniform(1.0, 1.2),
                weekend,
            )
            params[tid] = TerminalDemand(
                base_daily=volume,
                weekday_factors=factors,
                payday_factor=rng.uniform(1.15, 1.6),
                balance_share=rng.uniform(0.12, 0.28),
                amount_scale=rng.uniform(0.8, 1.3),
            )
        return cls(terminals=params, holidays=dict(holidays or {}), shocks=shocks)

    def params(self, terminal_id: str) -> TerminalDemand:
        return self.terminals.get(terminal_id, self.default)

    def expected_customers(self, terminal_id: str, day: date) -> float:
        p = self.params(terminal_id)
        value = p.base_daily * p.weekday_factors[day.weekday()]
        if is_payday(day):
            value *= p.payday_factor
        value *= self.holidays.get(day, 1.0)
        for shock in self.shocks:
            if shock.start <= day <= shock.end and (
                shock.terminals is None or terminal_id in shock.terminals
            ):
                value *= shock.factor
        return max(value, 0.0)

    def hourly_weights(self, terminal_id: str, day: date) -> Sequence[float]:
        weekend = day.weekday() >= 5 or day in self.holidays
        return WEEKEND_PROFILE if weekend else WEEKDAY_PROFILE

    def balance_share(self, terminal_id: str, day: date) -> float:
        return self.params(terminal_id).balance_share

    def amount_weights(self, terminal_id: str, day: date) -> Sequence[float]:
        scale = self.params(terminal_id).amount_scale * (1.2 if is_payday(day) else 1.0)
        if scale == 1.0:
            return AMOUNT_WEIGHTS
        # tilt the menu: weight * (amount / 100) ** (scale - 1)
        return [
            w * (a / 100.0) ** (scale - 1.0)
            for a, w in zip(AMOUNT_MENU, AMOUNT_WEIGHTS, strict=True)
        ]


def poisson(rng: Random, mean: float) -> int:
    """A Poisson draw (normal approximation above 50)."""
    if mean <= 0:
        return 0
    if mean > 50:
        return max(0, round(rng.gauss(mean, sqrt(mean))))
    limit = exp(-mean)
    k = 0
    product = rng.random()
    while product > limit:
        k += 1
        product *= rng.random()
    return k


def arrivals(
    model: DemandModel, terminal_id: str, day: date, rng: Random, *, last_second: int = 85_500
) -> list[int]:
    """Sorted arrival times (seconds of the day) of the day's customers."""
    count = poisson(rng, model.expected_customers(terminal_id, day))
    if count == 0:
        return []
    weights = model.hourly_weights(terminal_id, day)
    hours = rng.choices(range(24), weights=weights, k=count)
    randrange = rng.randrange
    times = [min(h * 3600 + randrange(3600), last_second) for h in hours]
    times.sort()
    return times
