"""The demand calendar: paydays and holidays, as regressors for the forecast.

Cash demand at an ATM follows the week (seasonality the forecast learns by
itself) and the calendar: more on paydays, less on public holidays and more on
the day before one. :class:`DemandCalendar` says which days are which;
:meth:`DemandCalendar.regressors` turns a run of days into the regressor matrix
the forecast uses (one column per effect in :data:`REGRESSORS`).
"""

from __future__ import annotations

import calendar as _calendar
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import numpy as np
import numpy.typing as npt

from cashplan.errors import InvalidArgument

REGRESSORS: tuple[str, ...] = ("payday", "holiday", "holiday_eve")


def days_from(start: date, count: int) -> list[date]:
    """``count`` consecutive days from ``start``."""
    return [start + timedelta(days=offset) for offset in range(count)]


@dataclass(frozen=True)
class DemandCalendar:
    """Which days are paydays and holidays.

    ``payday_days`` are days of the month (1-31; a day a month lacks is skipped);
    ``payday_last`` adds the last day of each month.
    """

    holidays: frozenset[date] = field(default_factory=frozenset)
    payday_days: tuple[int, ...] = (1, 15)
    payday_last: bool = True

    def __post_init__(self) -> None:
        for day in self.payday_days:
            if not 1 <= day <= 31:
                raise InvalidArgument(
                    f"payday_days: {day} is not a day of the month (1-31)", field="payday_days"
                )

    @classmethod
    def of(
        cls,
        holidays: Iterable[date] = (),
        payday_days: Iterable[int] = (1, 15),
        *,
        payday_last: bool = True,
    ) -> DemandCalendar:
        return cls(frozenset(holidays), tuple(sorted(set(payday_days))), payday_last)

    def is_payday(self, day: date) -> bool:
        if day.day in self.payday_days:
            return True
        return self.payday_last and day.day == _calendar.monthrange(day.year, day.month)[1]

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays

    def is_holiday_eve(self, day: date) -> bool:
        return day not in self.holidays and (day + timedelta(days=1)) in self.holidays

    def regressors(self, start: date, count: int) -> npt.NDArray[np.float64]:
        """A ``(count, len(REGRESSORS))`` matrix of 0/1 flags for the days from ``start``."""
        out = np.zeros((count, len(REGRESSORS)))
        for row, day in enumerate(days_from(start, count)):
            out[row, 0] = self.is_payday(day)
            out[row, 1] = self.is_holiday(day)
            out[row, 2] = self.is_holiday_eve(day)
        return out


def weekdays(start: date, count: int) -> npt.NDArray[np.int64]:
    """Monday = 0 ... Sunday = 6 for the days from ``start``."""
    first = start.weekday()
    return (np.arange(count, dtype=np.int64) + first) % 7
