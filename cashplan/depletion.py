"""When each cassette reaches its minimum, and the cassette levels ahead, with uncertainty.

Both work on simulated demand paths (:meth:`cashplan.forecast.DemandModel.sample_paths`:
``(paths, days, denominations)`` notes per day) so the spread of the answer is
the spread of the demand, level shifts and all.

Cassettes of one denomination are drawn one after the other, lowest number
first, as the dispense mix of the ATMs we model does (the greedy rule: equal
denominations, lower cassette number first), so cassette ``k`` of a
denomination reaches its minimum once the demand for that denomination has
taken the notes of the cassettes before it and ``count - minimum`` of its own.
Within a day demand is taken as spread evenly, so a crossing time has a
fractional part (``2.5`` = the middle of the third day from the origin).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from cashplan.errors import InvalidArgument

Array = npt.NDArray[np.float64]


@dataclass(frozen=True)
class CassetteLevel:
    """A cassette now: its number, note value, notes in it, LOW threshold and capacity."""

    number: int
    denomination: int
    count: int
    minimum: int
    capacity: int

    def __post_init__(self) -> None:
        if self.count < 0 or self.minimum < 0 or self.capacity <= 0:
            raise InvalidArgument(
                f"cassette {self.number}: count and minimum must be at least 0 and capacity "
                "above 0",
                field="cassettes",
            )


@dataclass(frozen=True)
class TimeToMinimum:
    """The days from the origin until a cassette reaches its minimum.

    Quantiles are ``None`` when they lie beyond the simulated days.
    """

    number: int
    denomination: int
    probability_within: float  # of reaching the minimum within the simulated days
    p10: float | None
    p50: float | None
    p90: float | None


@dataclass(frozen=True)
class LevelBands:
    """End-of-day notes per cassette ``(cassettes, days)`` as quantiles over the paths,
    and the chance that some denomination has run out by the end of each day."""

    numbers: list[int]
    p10: Array
    p50: Array
    p90: Array
    cashout_probability: Array  # (days,) cumulative


def check_paths(paths: npt.ArrayLike, denominations: Sequence[int]) -> Array:
    array = np.asarray(paths, dtype=np.float64)
    if array.ndim != 3:
        raise InvalidArgument("paths must be (paths, days, denominations)", field="paths")
    if array.shape[2] != len(denominations):
        raise InvalidArgument(
            f"paths have {array.shape[2]} denominations; {len(denominations)} were named",
            field="denominations",
        )
    if len(set(denominations)) != len(denominations):
        raise InvalidArgument("denominations must be distinct", field="denominations")
    return array


def column_of(cassette: CassetteLevel, denominations: Sequence[int]) -> int:
    try:
        return list(denominations).index(cassette.denomination)
    except ValueError:
        raise InvalidArgument(
            f"cassette {cassette.number} holds {cassette.denomination} notes, which have no "
            "forecast",
            field="cassettes",
        ) from None


def crossing_times(cumulative: Array, daily: Array, threshold: float) -> Array:
    """For each path, when cumulative demand first reaches ``threshold`` (``inf`` if never).

    ``cumulative[p, k]`` is the demand up to the end of day ``k``; ``daily[p, k]``
    the demand of day ``k``.
    """
    paths = cumulative.shape[0]
    if threshold <= 0:
        return np.zeros(paths)
    reached = cumulative >= threshold
    any_reached = reached.any(axis=1)
    first = np.argmax(reached, axis=1)
    rows = np.arange(paths)
    before = cumulative[rows, first] - daily[rows, first]
    size = np.maximum(daily[rows, first], 1e-9)
    fraction = np.clip((threshold - before) / size, 0.0, 1.0)
    return np.where(any_reached, first + fraction, np.inf)


def _quantile_or_none(values: Array, q: float) -> float | None:
    """The ``q`` quantile (the order statistic at or above it); None when it is infinite."""
    ordered = np.sort(values)
    value = float(ordered[min(len(ordered) - 1, max(0, int(np.ceil(q * len(ordered))) - 1))])
    return None if not np.isfinite(value) else round(value, 2)


def time_to_minimum(
    cassettes: Sequence[CassetteLevel], paths: npt.ArrayLike, denominations: Sequence[int]
) -> list[TimeToMinimum]:
    """Per cassette, the distribution of the time until it reaches its minimum."""
    demand = check_paths(paths, denominations)
    cumulative = np.cumsum(demand, axis=1)
    out = []
    drawn_before: dict[int, int] = {}
    for cassette in sorted(cassettes, key=lambda c: (c.denomination, c.number)):
        column = column_of(cassette, denominations)
        ahead = drawn_before.get(cassette.denomination, 0)
        threshold = ahead + cassette.count - cassette.minimum
        times = crossing_times(cumulative[:, :, column], demand[:, :, column], threshold)
        drawn_before[cassette.denomination] = ahead + cassette.count
        out.append(
            TimeToMinimum(
                number=cassette.number,
                denomination=cassette.denomination,
                probability_within=float(np.mean(np.isfinite(times))),
                p10=_quantile_or_none(times, 0.1),
                p50=_quantile_or_none(times, 0.5),
                p90=_quantile_or_none(times, 0.9),
            )
        )
    return sorted(out, key=lambda t: t.number)


def project_levels(
    cassettes: Sequence[CassetteLevel],
    paths: npt.ArrayLike,
    denominations: Sequence[int],
    *,
    reloads: Mapping[int, Mapping[int, int]] | None = None,
    arrival_fraction: float = 0.5,
) -> LevelBands:
    """End-of-day levels of each cassette over the simulated days.

    ``reloads`` maps a day index to the notes loaded into each cassette (by
    number) that day; the engineer arrives when ``arrival_fraction`` of the
    day's demand has been served from the old cassettes, which are taken out.
    """
    demand = check_paths(paths, denominations)
    n_paths, days, n_denoms = demand.shape
    if not 0.0 <= arrival_fraction <= 1.0:
        raise InvalidArgument("arrival_fraction must be between 0 and 1", field="arrival_fraction")
    ordered = sorted(cassettes, key=lambda c: c.number)
    columns = [column_of(c, denominations) for c in ordered]
    counts = np.array([[c.count for c in ordered]] * n_paths, dtype=np.float64)  # (p, c)
    reloads = reloads or {}
    for day, loads in reloads.items():
        if not 0 <= day < days:
            raise InvalidArgument(f"reload day {day} is outside the paths", field="reloads")
        unknown = set(loads) - {c.number for c in ordered}
        if unknown:
            raise InvalidArgument(
                f"reload names unknown cassettes {sorted(unknown)}", field="reloads"
            )
    levels = np.empty((n_paths, len(ordered), days))
    out_of_cash = np.zeros((n_paths,), dtype=bool)
    cashout = np.empty(days)
    for day in range(days):
        today = demand[:, day, :]
        if day in reloads:
            short = _draw(counts, today * arrival_fraction, columns, n_denoms)
            out_of_cash |= short
            for i, cassette in enumerate(ordered):
                if cassette.number in reloads[day]:
                    counts[:, i] = reloads[day][cassette.number]
            short = _draw(counts, today * (1.0 - arrival_fraction), columns, n_denoms)
        else:
            short = _draw(counts, today, columns, n_denoms)
        out_of_cash |= short
        levels[:, :, day] = counts
        cashout[day] = out_of_cash.mean()
    return LevelBands(
        numbers=[c.number for c in ordered],
        p10=np.quantile(levels, 0.1, axis=0),
        p50=np.quantile(levels, 0.5, axis=0),
        p90=np.quantile(levels, 0.9, axis=0),
        cashout_probability=cashout,
    )


def _draw(
    counts: Array, want: Array, columns: Sequence[int], n_denoms: int
) -> npt.NDArray[np.bool_]:
    """Take ``want`` notes per denomination from the cassettes in number order; True where
    some demand could not be served."""
    remaining = want.copy()
    for i, column in enumerate(columns):
        take = np.minimum(counts[:, i], remaining[:, column])
        counts[:, i] -= take
        remaining[:, column] -= take
    return np.asarray((remaining > 1e-9).any(axis=1))
