"""The forecast on series whose answer is known."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from cashplan import DemandCalendar, InvalidArgument, fit, mape

START = date(2026, 1, 5)  # a Monday
WEEK = np.array([100.0, 95.0, 97.0, 102.0, 125.0, 110.0, 70.0])


def _weekly(days: int, start: date = START) -> np.ndarray:
    return np.array([WEEK[(start + timedelta(days=t)).weekday()] for t in range(days)])


def test_a_pure_weekly_pattern_is_forecast_almost_exactly() -> None:
    history = _weekly(84)
    model = fit(history, START)
    forecast = model.forecast(14)
    expected = _weekly(14, model.origin)
    assert model.origin == START + timedelta(days=84)
    assert mape(expected, forecast.median[0]) < 0.02
    assert forecast.days[0] == model.origin


def test_payday_and_holiday_effects_are_learnt_and_forecast() -> None:
    rng = np.random.default_rng(7)
    holidays = {START + timedelta(days=d) for d in (20, 48, 90, 120, 135)}
    calendar = DemandCalendar.of(holidays)
    days = 140
    series = []
    for _ in range(40):
        values = []
        for t in range(days + 14):
            day = START + timedelta(days=t)
            mean = 200 * WEEK[day.weekday()] / 100
            mean *= 1.5 if calendar.is_payday(day) else 1.0
            mean *= 0.5 if calendar.is_holiday(day) else 1.0
            values.append(rng.poisson(mean))
        series.append(values)
    data = np.array(series, dtype=float)
    model = fit(data[:, :days], START, calendar)
    payday, holiday, _eve = np.exp(model.coefficients.mean(axis=0))
    assert 1.35 < payday < 1.6
    assert 0.45 < holiday < 0.75  # shrunk towards 1: there are few holidays
    forecast = model.forecast(14)
    actual = data[:, days:]
    assert mape(actual, forecast.mean) < 0.12
    # A payday in the horizon is forecast higher than the same weekday without one.
    paydays = [i for i, day in enumerate(forecast.days) if calendar.is_payday(day)]
    assert paydays
    i = paydays[0]
    same_weekday = i + 7 if i + 7 < 14 else i - 7
    assert forecast.mean[:, i].mean() > 1.3 * forecast.mean[:, same_weekday].mean()


def test_prediction_intervals_cover_about_their_level() -> None:
    rng = np.random.default_rng(11)
    base = rng.lognormal(np.log(80), 0.3, size=200)
    days = 120
    total = days + 10
    noise = rng.lognormal(0, 0.15, size=(200, total))
    weekly = np.array([_weekly(total)[t] / 100 for t in range(total)])
    data = rng.poisson(base[:, None] * weekly[None, :] * noise).astype(float)
    model = fit(data[:, :days], START)
    forecast = model.forecast(10, level=0.9)
    actual = data[:, days:]
    inside = (actual >= forecast.lower) & (actual <= forecast.upper)
    assert 0.82 < inside.mean() < 0.97
    assert np.all(forecast.lower <= forecast.median)
    assert np.all(forecast.median <= forecast.upper)
    # Intervals widen with the lead time.
    width = (forecast.upper - forecast.lower).mean(axis=0)
    assert width[-1] > width[0]


def test_days_not_observed_are_left_out_of_the_fit() -> None:
    # The last eight days the ATM was out of cash: it paid out almost nothing.
    history = _weekly(70)
    censored = history.copy()
    censored[-8:] = 3.0
    observed = np.ones(70, dtype=bool)
    observed[-8:] = False
    clean = fit(history, START).forecast(7).median
    masked_model = fit(censored, START, observed=observed)
    assert np.allclose(clean, masked_model.forecast(7).median, rtol=0.02)
    assert np.isnan(masked_model.residuals[0, -8:]).all()
    # Taken at face value, the same days drag the forecast down.
    unmasked = fit(censored, START).forecast(7).median
    assert unmasked.mean() < 0.8 * clean.mean()


def test_a_one_off_shock_barely_moves_the_forecast() -> None:
    history = _weekly(70)
    shocked = history.copy()
    shocked[30:33] = 5000.0
    clean = fit(history, START).forecast(7).median
    assert np.allclose(clean, fit(shocked, START).forecast(7).median, rtol=0.05)


def test_sample_paths_agree_with_the_analytical_forecast() -> None:
    rng = np.random.default_rng(5)
    data = rng.poisson(np.tile(_weekly(98), (3, 1))).astype(float)
    model = fit(data, START)
    paths = model.sample_paths(14, 4000, np.random.default_rng(1))
    assert paths.shape == (4000, 14, 3)
    forecast = model.forecast(14)
    assert np.allclose(paths.mean(axis=0).T, forecast.mean, rtol=0.05)
    assert np.all(paths >= 0)


def test_a_level_shift_is_followed() -> None:
    history = np.concatenate([_weekly(70), 2 * _weekly(28, START + timedelta(days=70))])
    model = fit(history, START)
    forecast = model.forecast(7).median[0]
    expected = 2 * _weekly(7, model.origin)
    assert mape(expected, forecast) < 0.2


def test_select_keeps_the_named_series() -> None:
    data = np.vstack([_weekly(42), 3 * _weekly(42)])
    model = fit(data, START)
    second = model.select([1])
    assert second.series == 1
    assert np.allclose(second.forecast(3).median[0], model.forecast(3).median[1])
    with pytest.raises(InvalidArgument, match="indices"):
        model.select([2])


@pytest.mark.parametrize(
    ("history", "kwargs", "message"),
    [
        (np.ones(10), {}, "at least 21"),
        (-np.ones(30), {}, "negative"),
        (np.ones(30), {"observed": np.ones(29, dtype=bool)}, "shape"),
        (np.full(30, np.nan), {}, "not a number"),
        (np.ones(30), {"observed": np.zeros(30, dtype=bool)}, "observed days"),
    ],
)
def test_bad_series_are_refused_with_the_reason(
    history: np.ndarray, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        fit(history, START, **kwargs)  # type: ignore[arg-type]


def test_forecast_arguments_are_checked() -> None:
    model = fit(_weekly(30), START)
    with pytest.raises(InvalidArgument, match="horizon"):
        model.forecast(0)
    with pytest.raises(InvalidArgument, match="level"):
        model.forecast(3, level=1.5)


def test_mape() -> None:
    assert mape([100, 200, 0], [110, 180, 5]) == pytest.approx(0.1)
    with pytest.raises(InvalidArgument):
        mape([0, 0], [1, 1])


def test_calendar_flags() -> None:
    calendar = DemandCalendar.of({date(2026, 12, 25)}, (1, 15))
    assert calendar.is_payday(date(2026, 2, 28))  # the last day of February
    assert calendar.is_payday(date(2026, 3, 15))
    assert not calendar.is_payday(date(2026, 3, 16))
    assert calendar.is_holiday_eve(date(2026, 12, 24))
    flags = calendar.regressors(date(2026, 12, 24), 2)
    assert flags.tolist() == [[0, 0, 1], [0, 1, 0]]
    with pytest.raises(InvalidArgument, match="payday_days"):
        DemandCalendar.of((), (0,))
