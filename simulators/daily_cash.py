"""Daily cash demand of a fleet, per ATM and denomination: fast ground truth for cash planning.

The customer-level simulators draw every session; planning over months for
hundreds of ATMs needs only the notes each ATM pays out per day and
denomination. This module draws those directly from the same demand model
(:class:`simulators.demand.SeasonalDemand`: a volume per terminal, weekday
factors, paydays, holidays, shocks) and the same fast-cash menu:

* customers on a day: Poisson around the expected count times a day-level
  log-normal factor (weather, local events: days vary more than Poisson says);
* withdrawals: the customers less the balance inquiries (binomial);
* amounts: multinomial over the menu with the terminal's and day's weights;
* notes: each amount as the note mix of the ATM's denominations, largest note
  first, backing off a larger note when the rest cannot be made (60 from 50s
  and 20s is three 20s).

:func:`bench_fleet` builds the benchmark's fleet: cassette sets, LOW
thresholds, holidays with their eves, and a few shocks (a festival, a nearby
ATM out of service, road works, a fleet-wide holiday rush).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from functools import cache
from random import Random

import numpy as np
import numpy.typing as npt

from simulators.demand import AMOUNT_MENU, FIFTY_AMOUNTS, DemandShock, SeasonalDemand

MAX_NOTES = 40
FIFTY_WEIGHT = 2.0  # as in the batch generator: where 50s are loaded, customers ask for them


@cache
def note_mix(amount: int, denominations: tuple[int, ...]) -> tuple[int, ...] | None:
    """Notes of each denomination (in the order given) that make ``amount``, or None.

    Largest note first; when the remainder cannot be made, one fewer of the
    larger note is tried (depth-first), so the mix has as many large notes as
    can be.
    """
    order = sorted(range(len(denominations)), key=lambda i: -denominations[i])

    def search(k: int, remaining: int) -> list[int] | None:
        if remaining == 0:
            return [0] * (len(order) - k)
        if k == len(order):
            return None
        value = denominations[order[k]]
        for count in range(remaining // value, -1, -1):
            rest = search(k + 1, remaining - count * value)
            if rest is not None:
                return [count, *rest]
        return None

    found = search(0, amount)
    if found is None or sum(found) > MAX_NOTES:
        return None
    notes = [0] * len(denominations)
    for k, i in enumerate(order):
        notes[i] = found[k]
    return tuple(notes)


def menu_for(denominations: Sequence[int]) -> tuple[int, ...]:
    """The fast-cash menu at an ATM: amounts in 50s too where 50s are loaded."""
    return AMOUNT_MENU + (FIFTY_AMOUNTS if 50 in denominations else ())


def mix_matrix(denominations: Sequence[int]) -> npt.NDArray[np.float64]:
    """``(menu amounts, denominations)``: notes per amount (0 when it cannot be paid)."""
    distinct = tuple(denominations)
    menu = menu_for(distinct)
    rows = [note_mix(amount, distinct) or (0,) * len(distinct) for amount in menu]
    return np.array(rows, dtype=np.float64)


def daily_notes(
    model: SeasonalDemand,
    terminal_id: str,
    denominations: Sequence[int],
    days: Sequence[date],
    rng: np.random.Generator,
    *,
    day_noise: float = 0.12,
) -> npt.NDArray[np.float64]:
    """Notes asked for per day and denomination, ``(len(days), len(denominations))``."""
    mix = mix_matrix(denominations)
    extra = mix.shape[0] - len(AMOUNT_MENU)
    out = np.zeros((len(days), len(denominations)))
    for row, day in enumerate(days):
        expected = model.expected_customers(terminal_id, day) * rng.lognormal(0.0, day_noise)
        customers = rng.poisson(expected)
        withdrawals = rng.binomial(customers, 1.0 - model.balance_share(terminal_id, day))
        weights = np.asarray(model.amount_weights(terminal_id, day), dtype=np.float64)
        if extra:
            weights = np.concatenate([weights, np.full(extra, FIFTY_WEIGHT)])
        amounts = rng.multinomial(withdrawals, weights / weights.sum())
        out[row] = amounts @ mix
    return out


@dataclass(frozen=True)
class FleetAtm:
    terminal_id: str
    cassettes: tuple[int, ...]  # denomination of cassettes 1..n
    capacity: int  # notes per cassette
    minimum: int  # LOW threshold per cassette, notes
    latitude: float
    longitude: float

    @property
    def denominations(self) -> tuple[int, ...]:
        """Distinct denominations, ascending."""
        return tuple(sorted(set(self.cassettes)))


@dataclass(frozen=True)
class Fleet:
    atms: list[FleetAtm]
    model: SeasonalDemand
    holidays: dict[date, float]  # date -> demand factor (holidays and their eves)
    public_holidays: list[date]
    shocks: list[DemandShock]

    def demand(
        self, start: date, days: int, rng: np.random.Generator
    ) -> list[npt.NDArray[np.float64]]:
        """Each ATM's notes asked for per day and denomination, from ``start``."""
        dates = [start + timedelta(days=k) for k in range(days)]
        return [
            daily_notes(self.model, atm.terminal_id, atm.denominations, dates, rng)
            for atm in self.atms
        ]


CASSETTE_SETS: tuple[tuple[int, ...], ...] = (
    (20, 20, 50, 100),
    (20, 50, 100, 100),
    (10, 20, 50, 100),
    (20, 20, 50, 50),
)


def bench_fleet(
    count: int,
    start: date,
    days: int,
    seed: int,
    *,
    mean_daily: float = 150.0,
    capacity: int = 2500,
    minimum: int = 300,
) -> Fleet:
    """A fleet of ``count`` ATMs for ``days`` from ``start``, with holidays and shocks."""
    rng = Random(f"{seed}:fleet")
    ids = [f"C{index:07d}" for index in range(1, count + 1)]
    public = []
    day = start + timedelta(days=rng.randrange(10, 25))
    while day < start + timedelta(days=days):
        public.append(day)
        day += timedelta(days=rng.randrange(25, 50))
    holidays: dict[date, float] = {}
    for holiday in public:
        holidays[holiday] = rng.uniform(0.45, 0.65)
        eve = holiday - timedelta(days=1)
        holidays.setdefault(eve, rng.uniform(1.2, 1.4))
    shocks = []
    end = start + timedelta(days=days)
    kinds = (
        (1.9, 4, 0.04),  # a festival nearby
        (1.6, 12, 0.05),  # a neighbouring ATM out of service
        (0.5, 14, 0.05),  # road works in front of the site
        (1.25, 6, 1.0),  # a fleet-wide rush (a long weekend, a strike at the banks)
    )
    span = max(days - 40, 1)
    for factor, length, share in kinds:
        for _ in range(2):
            first = start + timedelta(days=rng.randrange(20, 20 + span))
            chosen = frozenset(rng.sample(ids, max(1, round(share * count)))) if share < 1 else None
            last = min(first + timedelta(days=length - 1), end)
            shocks.append(DemandShock(first, last, factor, chosen))
    model = SeasonalDemand.for_fleet(
        ids, mean_daily, Random(f"{seed}:demand"), holidays=holidays, shocks=shocks
    )
    atms = []
    for tid in ids:
        atms.append(
            FleetAtm(
                terminal_id=tid,
                cassettes=rng.choice(CASSETTE_SETS),
                capacity=capacity,
                minimum=minimum,
                latitude=52.3 + rng.uniform(0.0, 0.4),
                longitude=13.1 + rng.uniform(0.0, 0.6),
            )
        )
    return Fleet(atms, model, holidays, public, shocks)
