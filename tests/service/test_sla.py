"""The SLA clock: service-hours arithmetic, by example and by property."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from atm_service.services.sla import ServiceHours

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_business_hours_skip_nights_and_weekends() -> None:
    # Monday to Friday 08:00-18:00 in Berlin (CET, UTC+1 in November).
    hours = ServiceHours.weekly("12345", "08:00", "18:00", BERLIN)
    saturday_evening = datetime(2026, 11, 21, 19, 0, tzinfo=ZoneInfo(BERLIN))
    due = hours.add(saturday_evening, 240)
    assert due == datetime(2026, 11, 23, 12, 0, tzinfo=ZoneInfo(BERLIN))
    # Friday 16:00 + 3 h: two hours on Friday, one on Monday.
    friday = datetime(2026, 11, 20, 16, 0, tzinfo=ZoneInfo(BERLIN))
    assert hours.add(friday, 180) == datetime(2026, 11, 23, 9, 0, tzinfo=ZoneInfo(BERLIN))
    assert hours.between(friday, hours.add(friday, 180)) == timedelta(hours=3)
    assert not hours.contains(saturday_evening)
    assert hours.contains(friday)
    assert hours.next_start(saturday_evening) == datetime(
        2026, 11, 23, 8, 0, tzinfo=ZoneInfo(BERLIN)
    )


def test_around_the_clock_is_plain_addition() -> None:
    hours = ServiceHours.always()
    start = utc(2026, 3, 29, 0, 30)
    assert hours.add(start, 600) == start + timedelta(minutes=600)
    assert hours.between(start, start + timedelta(days=3)) == timedelta(days=3)


def test_daylight_saving_days_have_their_real_length() -> None:
    # Europe switches to summer time on 2026-03-29 at 02:00 (23-hour day).
    hours = ServiceHours.weekly("1234567", "00:00", "24:00", BERLIN)
    day = datetime(2026, 3, 29, 0, 0, tzinfo=ZoneInfo(BERLIN))
    next_day = datetime(2026, 3, 30, 0, 0, tzinfo=ZoneInfo(BERLIN))
    assert hours.between(day, next_day) == timedelta(hours=23)
    # 10:00-12:00 is two hours on both sides of the switch.
    morning = ServiceHours.weekly("1234567", "10:00", "12:00", BERLIN)
    saturday = datetime(2026, 3, 28, 11, 0, tzinfo=ZoneInfo(BERLIN))
    assert morning.add(saturday, 120) == datetime(2026, 3, 29, 11, 0, tzinfo=ZoneInfo(BERLIN))


def test_night_shift_runs_past_midnight() -> None:
    shift = ServiceHours.weekly("5", "22:00", "06:00", NEW_YORK)  # Friday night
    zone = ZoneInfo(NEW_YORK)
    assert shift.contains(datetime(2026, 11, 20, 23, 0, tzinfo=zone))
    assert shift.contains(datetime(2026, 11, 21, 5, 59, tzinfo=zone))  # Saturday morning
    assert not shift.contains(datetime(2026, 11, 21, 6, 0, tzinfo=zone))
    assert not shift.contains(datetime(2026, 11, 21, 23, 0, tzinfo=zone))  # no Saturday shift
    start = datetime(2026, 11, 20, 22, 0, tzinfo=zone)
    assert shift.between(start, start + timedelta(days=7)) == timedelta(hours=8)


@pytest.mark.parametrize(
    ("days", "start", "end"),
    [("", "08:00", "18:00"), ("8", "08:00", "18:00"), ("1", "08:00", "08:00")],
)
def test_refuses_impossible_hours(days: str, start: str, end: str) -> None:
    with pytest.raises(ValueError, match="must"):
        ServiceHours.weekly(days, start, end, "UTC")


def test_refuses_naive_times() -> None:
    with pytest.raises(ValueError, match="naive"):
        ServiceHours.always().add(datetime(2026, 1, 1), 5)


ZONES = st.sampled_from(["UTC", BERLIN, NEW_YORK, "Asia/Kolkata", "Australia/Lord_Howe"])


@st.composite
def service_hours(draw: st.DrawFn) -> ServiceHours:
    days = draw(st.sets(st.integers(1, 7), min_size=1))
    start = draw(st.integers(0, 23 * 60 + 45))
    end = draw(st.integers(1, 24 * 60).filter(lambda end: end != start))
    zone = draw(ZONES)
    return ServiceHours(frozenset(days), start, end, ZoneInfo(zone))


# Instants given in assorted zones: the clock must not confuse wall time with elapsed time.
instants = st.datetimes(
    min_value=datetime(2025, 1, 1), max_value=datetime(2028, 12, 31), timezones=ZONES.map(ZoneInfo)
)
minutes = st.integers(min_value=0, max_value=14 * 24 * 60)


@given(hours=service_hours(), start=instants, amount=minutes)
def test_adding_then_measuring_gives_back_the_amount(
    hours: ServiceHours, start: datetime, amount: int
) -> None:
    due = hours.add(start, amount)
    assert due >= start
    assert due.tzinfo is not None
    assert hours.between(start, due) == timedelta(minutes=amount)
    # Service time never runs faster than the wall clock.
    assert due - start >= timedelta(minutes=amount)


@given(hours=service_hours(), start=instants, a=minutes, b=minutes)
def test_deadlines_grow_with_the_target(
    hours: ServiceHours, start: datetime, a: int, b: int
) -> None:
    low, high = sorted((a, b))
    assert hours.add(start, low) <= hours.add(start, high)


@given(hours=service_hours(), start=instants, amount=st.integers(1, 14 * 24 * 60))
def test_a_deadline_falls_inside_service_hours(
    hours: ServiceHours, start: datetime, amount: int
) -> None:
    due = hours.add(start, amount)
    # Due at a moment of service, or exactly at the end of a window.
    just_before = due - timedelta(microseconds=1)
    assert hours.contains(just_before)


@given(hours=service_hours(), a=instants, b=instants, c=instants)
def test_measured_service_time_adds_up(
    hours: ServiceHours, a: datetime, b: datetime, c: datetime
) -> None:
    first, middle, last = sorted((a, b, c))
    assert hours.between(first, middle) + hours.between(middle, last) == hours.between(first, last)
    assert hours.between(last, first) == timedelta(0)


@given(start=instants, amount=minutes, zone=ZONES)
def test_the_whole_week_is_elapsed_time(start: datetime, amount: int, zone: str) -> None:
    hours = ServiceHours(frozenset(range(1, 8)), 0, 1440, ZoneInfo(zone))
    assert hours.add(start, amount) == start.astimezone(UTC) + timedelta(minutes=amount)
