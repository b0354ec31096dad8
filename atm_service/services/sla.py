"""The SLA clock: arithmetic in service hours.

A contract's clock runs only on its service days between its service start
and end, in the site's time zone: a fault reported on Saturday evening under a
Monday-to-Friday 08:00-18:00 contract with a 4-hour response target is due on
Monday at 12:00. Engineers' shifts use the same weekly pattern, and may run
past midnight (an end before the start).

Everything here is pure: aware datetimes in, aware UTC datetimes out. Windows
are built per local calendar day and converted to UTC, so daylight-saving days
are as long as they really are.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from atm_service.models.fleet import minutes_of_day

_DAY = timedelta(days=1)


def _at(day: date, minute: int, zone: ZoneInfo) -> datetime:
    """The UTC instant of local ``day`` + ``minute`` (1440 is the next midnight)."""
    if minute >= 1440:
        day, minute = day + _DAY, minute - 1440
    local = datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone)
    return local.astimezone(UTC)


@dataclass(frozen=True)
class ServiceHours:
    """A weekly pattern of hours: ISO weekdays, a daily start and end, a time zone.

    ``end_minute <= start_minute`` means each window ends on the next day
    (a night shift); ``0``-``1440`` is the whole day.
    """

    days: frozenset[int]
    start_minute: int
    end_minute: int
    zone: ZoneInfo

    def __post_init__(self) -> None:
        if not self.days or not self.days <= frozenset(range(1, 8)):
            raise ValueError("service days must be a non-empty set of ISO weekdays 1-7")
        if not 0 <= self.start_minute < 1440 or not 0 < self.end_minute <= 1440:
            raise ValueError("start must be in [00:00, 24:00) and end in (00:00, 24:00]")
        if self.start_minute == self.end_minute:
            raise ValueError("start and end must differ")

    @classmethod
    def weekly(cls, days: str, start: str, end: str, timezone: str) -> ServiceHours:
        """From the stored form: ``"12345"``, ``"08:00"``, ``"18:00"``, ``"Europe/Berlin"``."""
        end_minute = minutes_of_day(end)
        return cls(
            days=frozenset(int(day) for day in days),
            start_minute=minutes_of_day(start),
            end_minute=end_minute if end_minute else 1440,
            zone=ZoneInfo(timezone),
        )

    @classmethod
    def always(cls) -> ServiceHours:
        return cls(frozenset(range(1, 8)), 0, 1440, ZoneInfo("UTC"))

    @property
    def is_always(self) -> bool:
        return len(self.days) == 7 and self.start_minute == 0 and self.end_minute == 1440

    def _window(self, day: date) -> tuple[datetime, datetime] | None:
        if day.isoweekday() not in self.days:
            return None
        start = _at(day, self.start_minute, self.zone)
        end_day = day if self.end_minute > self.start_minute else day + _DAY
        end = _at(end_day, self.end_minute, self.zone)
        if end <= start:  # swallowed by a daylight-saving jump
            return None
        return start, end

    def windows(self, after: datetime) -> Iterator[tuple[datetime, datetime]]:
        """The service windows (UTC) that end after ``after``, in order, without end."""
        after = _utc(after)
        day = after.astimezone(self.zone).date() - _DAY
        while True:
            window = self._window(day)
            if window is not None and window[1] > after:
                yield window
            day += _DAY

    def contains(self, moment: datetime) -> bool:
        moment = _utc(moment)
        window = next(self.windows(moment))
        return window[0] <= moment < window[1]

    def add(self, start: datetime, minutes: float) -> datetime:
        """The instant when ``minutes`` of service time have passed since ``start``."""
        start = _utc(start)
        remaining = timedelta(minutes=minutes)
        if remaining <= timedelta(0):
            return start
        if self.is_always:
            return start + remaining
        for window_start, window_end in self.windows(start):
            begin = max(window_start, start)
            available = window_end - begin
            if available >= remaining:
                return begin + remaining
            remaining -= available
        raise AssertionError("unreachable: windows() never ends")  # pragma: no cover

    def between(self, start: datetime, end: datetime) -> timedelta:
        """Service time from ``start`` to ``end`` (zero when ``end`` is not later)."""
        start, end = _utc(start), _utc(end)
        if end <= start:
            return timedelta(0)
        if self.is_always:
            return end - start
        total = timedelta(0)
        for window_start, window_end in self.windows(start):
            if window_start >= end:
                break
            total += min(window_end, end) - max(window_start, start)
        return total

    def next_start(self, moment: datetime) -> datetime:
        """``moment`` itself when inside service hours, else the next window's start."""
        moment = _utc(moment)
        window_start, _ = next(self.windows(moment))
        return max(window_start, moment)


def _utc(moment: datetime) -> datetime:
    """In UTC, so differences are real elapsed time (same-zone subtraction is wall time)."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given to the SLA clock")
    return moment.astimezone(UTC)
