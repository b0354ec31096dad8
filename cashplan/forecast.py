"""Daily cash demand forecasts: seasonal exponential smoothing with calendar regressors.

The model, per series (one ATM and denomination, notes per day), works on
``y = log(1 + notes)`` so weekly and calendar effects multiply demand:

    y[t]  = l[t-1] + phi * b[t-1] + s[weekday(t)] + x[t] . c + e[t]
    l[t]  = l[t-1] + phi * b[t-1] + alpha * e[t]
    b[t]  = phi * b[t-1] + beta * e[t]
    s[wd] = s[wd] + gamma * e[t]          (the weekday of t only)

that is additive Holt-Winters with a damped trend (ETS(A,Ad,A), period 7) plus
regressors ``x`` (payday, holiday, eve of a holiday: :mod:`cashplan.calendar`).
Fitting is in two stages:

1. a robust regression (Huber weights, a little ridge on the calendar effects,
   which are rare) of ``y`` on a level, a linear trend, weekday dummies and the
   regressors gives the calendar coefficients ``c`` and the initial states;
2. the smoothing recursion runs over the history for every point of a small
   grid of ``(alpha, beta, gamma)``, all series at once, and each series keeps
   the point with the least squared one-step error (errors beyond four robust
   standard deviations count as four, so a demand shock does not pick the
   parameters).

Days that are not observed (the ATM was down, a cassette was empty so the
notes dispensed understate the demand) are skipped: the state moves on
without an update and the day counts in no fit.

Prediction intervals are analytical (the ETS(A,Ad,A) forecast variance, in
log space, mapped back), and :meth:`DemandModel.sample_paths` simulates the
state-space model forward, with errors correlated across the series of a
batch as their residuals are, for what needs joint distributions (the
depletion of several cassettes, the chance of a cash-out before a visit).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from itertools import product
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from cashplan.calendar import REGRESSORS, DemandCalendar, days_from, weekdays
from cashplan.errors import InvalidArgument

Array = npt.NDArray[np.float64]

PHI = 0.9
ALPHAS: tuple[float, ...] = (0.05, 0.1, 0.2, 0.35)
BETAS: tuple[float, ...] = (0.0, 0.02)
GAMMAS: tuple[float, ...] = (0.0, 0.05, 0.15)
WARMUP_DAYS = 14
MIN_HISTORY_DAYS = 21
RIDGE = 1.0  # on each calendar coefficient: a handful of holidays says little
HUBER_K = 1.5
CLIP_SIGMAS = 4.0


@dataclass(frozen=True)
class Forecast:
    """Forecasts for the days from ``days[0]``, one row per series (notes per day)."""

    days: list[date]
    mean: Array  # (series, horizon)
    median: Array
    lower: Array
    upper: Array
    level: float  # of the interval [lower, upper]


@dataclass(frozen=True)
class DemandModel:
    """A fitted batch of series that share their calendar and history dates."""

    history_start: date
    origin: date  # the first day after the history: where forecasts start
    calendar: DemandCalendar
    phi: float
    alpha: Array  # (series,)
    beta: Array
    gamma: Array
    level: Array  # (series,) states after the last history day
    trend: Array
    season: Array  # (series, 7) by weekday, Monday = 0
    coefficients: Array  # (series, len(REGRESSORS))
    sigma: Array  # (series,) one-step error standard deviation, log space
    fitted: Array  # (series, days) one-step forecasts of the history (medians, notes)
    residuals: Array  # (series, days) log-space one-step errors; NaN where not observed

    @property
    def series(self) -> int:
        return int(self.level.shape[0])

    def select(self, indices: Sequence[int]) -> DemandModel:
        """The model of some of the series (in the order given)."""
        idx = np.asarray(indices, dtype=np.int64)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= self.series:
            raise InvalidArgument(
                f"indices: each must be within 0..{self.series - 1}", field="indices"
            )
        return replace(
            self,
            alpha=self.alpha[idx],
            beta=self.beta[idx],
            gamma=self.gamma[idx],
            level=self.level[idx],
            trend=self.trend[idx],
            season=self.season[idx],
            coefficients=self.coefficients[idx],
            sigma=self.sigma[idx],
            fitted=self.fitted[idx],
            residuals=self.residuals[idx],
        )

    def _means(self, horizon: int) -> Array:
        """Log-space point forecasts ``(series, horizon)``."""
        x = self.calendar.regressors(self.origin, horizon) @ self.coefficients.T  # (h, s)
        wd = weekdays(self.origin, horizon)
        damp = np.cumsum(self.phi ** np.arange(1, horizon + 1))  # phi + ... + phi^h
        mu = self.level[:, None] + damp[None, :] * self.trend[:, None] + self.season[:, wd] + x.T
        return np.asarray(mu, dtype=np.float64)

    def _variances(self, horizon: int) -> Array:
        """Log-space forecast variances ``(series, horizon)`` of ETS(A,Ad,A)."""
        out = np.empty((self.series, horizon))
        damp = np.cumsum(self.phi ** np.arange(1, horizon + 1))
        total = np.ones(self.series)
        for h in range(horizon):
            out[:, h] = total
            j = h + 1  # c_j for the next step
            seasonal = self.gamma if j % 7 == 0 else 0.0
            c = self.alpha + self.beta * damp[j - 1] + seasonal
            total = total + c**2
        return out * (self.sigma**2)[:, None]

    def forecast(self, horizon: int, *, level: float = 0.9) -> Forecast:
        """Point forecasts (mean and median) and a ``level`` prediction interval per day."""
        _check_horizon(horizon)
        if not 0.0 < level < 1.0:
            raise InvalidArgument("level must be between 0 and 1", field="level")
        mu = self._means(horizon)
        var = self._variances(horizon)
        sd = np.sqrt(var)
        z = NormalDist().inv_cdf(0.5 + level / 2)
        return Forecast(
            days=days_from(self.origin, horizon),
            mean=np.maximum(np.exp(mu + var / 2) - 1.0, 0.0),
            median=np.maximum(np.expm1(mu), 0.0),
            lower=np.maximum(np.expm1(mu - z * sd), 0.0),
            upper=np.maximum(np.expm1(mu + z * sd), 0.0),
            level=level,
        )

    def residual_correlation(self) -> Array:
        """Correlation of the series' one-step errors on the days all were observed,
        shrunk a tenth towards independence (so it is always positive definite)."""
        n = self.series
        if n == 1:
            return np.ones((1, 1))
        r = self.residuals[:, WARMUP_DAYS:]
        both = np.all(np.isfinite(r), axis=0)
        if both.sum() < 7:
            return np.eye(n)
        corr = np.asarray(np.corrcoef(r[:, both]), dtype=np.float64).reshape(n, n)
        corr = np.nan_to_num(corr, nan=0.0)
        np.fill_diagonal(corr, 1.0)
        return np.asarray(0.9 * corr + 0.1 * np.eye(n), dtype=np.float64)

    def sample_paths(
        self,
        horizon: int,
        paths: int,
        rng: np.random.Generator,
        *,
        correlated: bool = True,
    ) -> Array:
        """Simulated future demand ``(paths, horizon, series)`` in notes per day."""
        _check_horizon(horizon)
        if paths < 1:
            raise InvalidArgument("paths must be at least 1", field="paths")
        n = self.series
        shocks = rng.standard_normal((horizon, paths, n))
        if correlated and n > 1:
            shocks = shocks @ np.linalg.cholesky(self.residual_correlation()).T
        shocks = shocks * self.sigma[None, None, :]
        x = self.calendar.regressors(self.origin, horizon) @ self.coefficients.T  # (h, s)
        wd = weekdays(self.origin, horizon)
        level = np.repeat(self.level[None, :], paths, axis=0)
        trend = np.repeat(self.trend[None, :], paths, axis=0)
        season = np.repeat(self.season[None, :, :], paths, axis=0)
        out = np.empty((paths, horizon, n))
        for h in range(horizon):
            d = int(wd[h])
            e = shocks[h]
            y = level + self.phi * trend + season[:, :, d] + x[h][None, :] + e
            out[:, h, :] = y
            level = level + self.phi * trend + self.alpha * e
            trend = self.phi * trend + self.beta * e
            season[:, :, d] += self.gamma * e
        return np.asarray(np.maximum(np.expm1(out), 0.0), dtype=np.float64)


def _check_horizon(horizon: int) -> None:
    if not 1 <= horizon <= 366:
        raise InvalidArgument("horizon must be between 1 and 366 days", field="horizon")


def _design(start: date, days: int, calendar: DemandCalendar) -> Array:
    """Columns: level, trend (days from the middle), Tuesday..Sunday, the regressors."""
    t = np.arange(days, dtype=np.float64) - (days - 1) / 2
    wd = weekdays(start, days)
    dummies = np.zeros((days, 6))
    for k in range(1, 7):
        dummies[:, k - 1] = wd == k
    return np.column_stack([np.ones(days), t, dummies, calendar.regressors(start, days)])


def _robust_regression(y: Array, observed: npt.NDArray[np.bool_], design: Array) -> Array:
    """Per-series Huber-weighted ridge regression; coefficients ``(series, columns)``."""
    series, _ = y.shape
    columns = design.shape[1]
    ridge = np.zeros(columns)
    ridge[1] = 1e-6
    ridge[2:8] = 1e-3
    ridge[8:] = RIDGE
    weights = observed.astype(np.float64)
    yz = np.where(observed, y, 0.0)
    coef = np.zeros((series, columns))
    for _ in range(4):
        xtwx = np.einsum("st,ti,tj->sij", weights, design, design) + np.diag(ridge)[None]
        xtwy = np.einsum("st,ti,st->si", weights, design, yz)
        coef = np.linalg.solve(xtwx, xtwy[:, :, None])[:, :, 0]
        resid = yz - coef @ design.T
        scale = _robust_scale(resid, observed)
        limit = HUBER_K * scale[:, None]
        size = np.maximum(np.abs(resid), 1e-12)
        weights = np.where(observed, np.minimum(1.0, limit / size), 0.0)
    return coef


def _robust_scale(resid: Array, observed: npt.NDArray[np.bool_]) -> Array:
    masked = np.where(observed, np.abs(resid), np.nan)
    mad = np.nanmedian(masked, axis=1)
    return np.asarray(np.maximum(1.4826 * np.nan_to_num(mad, nan=0.1), 0.02), dtype=np.float64)


def fit(
    history: npt.ArrayLike,
    start: date,
    calendar: DemandCalendar | None = None,
    *,
    observed: npt.ArrayLike | None = None,
) -> DemandModel:
    """Fit one or several daily series (notes per day) that start on ``start``.

    ``history`` is ``(days,)`` or ``(series, days)``; ``observed`` (same shape,
    booleans) marks the days that count; by default every day does.
    """
    calendar = calendar or DemandCalendar()
    values = np.asarray(history, dtype=np.float64)
    if values.ndim == 1:
        values = values[None, :]
    if values.ndim != 2:
        raise InvalidArgument("history must be a series or a list of series", field="history")
    series, days = values.shape
    if days < MIN_HISTORY_DAYS:
        raise InvalidArgument(
            f"history has {days} days; at least {MIN_HISTORY_DAYS} are needed", field="history"
        )
    if observed is None:
        seen = np.ones_like(values, dtype=bool)
    else:
        seen = np.asarray(observed, dtype=bool)
        if seen.ndim == 1:
            seen = seen[None, :]
        if seen.shape != values.shape:
            raise InvalidArgument(
                f"observed has shape {seen.shape}; history has {values.shape}", field="observed"
            )
    bad = seen & ~np.isfinite(values)
    if bad.any():
        s, t = map(int, np.argwhere(bad)[0])
        raise InvalidArgument(
            f"history[{s}][{t}] is not a number but is marked observed", field="history"
        )
    negative = seen & (np.nan_to_num(values) < 0)
    if negative.any():
        s, t = map(int, np.argwhere(negative)[0])
        raise InvalidArgument(f"history[{s}][{t}] is negative", field="history")
    counts = seen.sum(axis=1)
    if (counts < MIN_HISTORY_DAYS // 2).any():
        s = int(np.argmax(counts < MIN_HISTORY_DAYS // 2))
        raise InvalidArgument(
            f"series {s} has {int(counts[s])} observed days; at least "
            f"{MIN_HISTORY_DAYS // 2} are needed",
            field="observed",
        )
    y = np.where(seen, np.log1p(np.nan_to_num(values)), 0.0)
    design = _design(start, days, calendar)
    coef = _robust_regression(y, seen, design)
    regression_resid = y - coef @ design.T
    scale = _robust_scale(regression_resid, seen)

    # Initial states from the regression.
    slope = coef[:, 1]
    weekday_effects = np.column_stack([np.zeros(series), coef[:, 2:8]])  # Monday first
    centre = weekday_effects.mean(axis=1)
    season0 = weekday_effects - centre[:, None]
    level0 = coef[:, 0] + centre - slope * ((days - 1) / 2) - PHI * slope  # before day 0
    calendar_coef = coef[:, 8:]
    x_effect = calendar.regressors(start, days) @ calendar_coef.T  # (days, series)

    grid = np.array(list(product(ALPHAS, BETAS, GAMMAS)))  # (g, 3)
    g = grid.shape[0]
    alpha, beta, gamma = grid[:, 0][None, :], grid[:, 1][None, :], grid[:, 2][None, :]
    level = np.repeat(level0[:, None], g, axis=1)
    trend = np.repeat(slope[:, None], g, axis=1)
    season = np.repeat(season0[:, None, :], g, axis=1)
    predictions = np.empty((series, g, days))
    loss = np.zeros((series, g))
    clip = (CLIP_SIGMAS * scale[:, None]) ** 2
    wd = weekdays(start, days)
    for t in range(days):
        d = int(wd[t])
        pred = level + PHI * trend + season[:, :, d] + x_effect[t][:, None]
        predictions[:, :, t] = pred
        e = np.where(seen[:, t][:, None], y[:, t][:, None] - pred, 0.0)
        if t >= WARMUP_DAYS:
            loss += np.minimum(e**2, clip)
        level = level + PHI * trend + alpha * e
        trend = PHI * trend + beta * e
        season[:, :, d] += gamma * e

    best = np.argmin(loss, axis=1)
    rows = np.arange(series)
    chosen_pred = predictions[rows, best, :]
    resid = np.where(seen, y - chosen_pred, np.nan)
    tail = resid[:, WARMUP_DAYS:]
    sigma = np.sqrt(np.nanmean(tail**2, axis=1))
    sigma = np.where(np.isfinite(sigma), np.maximum(sigma, 0.01), scale)
    return DemandModel(
        history_start=start,
        origin=start + timedelta(days=days),
        calendar=calendar,
        phi=PHI,
        alpha=grid[best, 0],
        beta=grid[best, 1],
        gamma=grid[best, 2],
        level=level[rows, best],
        trend=trend[rows, best],
        season=season[rows, best, :],
        coefficients=calendar_coef,
        sigma=sigma,
        fitted=np.maximum(np.expm1(chosen_pred), 0.0),
        residuals=resid,
    )


def mape(actual: npt.ArrayLike, predicted: npt.ArrayLike) -> float:
    """Mean absolute percentage error over the entries whose actual value is above zero."""
    a = np.asarray(actual, dtype=np.float64)
    p = np.asarray(predicted, dtype=np.float64)
    if a.shape != p.shape:
        raise InvalidArgument(f"shapes differ: {a.shape} and {p.shape}", field="predicted")
    keep = a > 0
    if not keep.any():
        raise InvalidArgument("no actual value above zero to measure against", field="actual")
    return float(np.mean(np.abs(a[keep] - p[keep]) / a[keep]))


__all__ = ["REGRESSORS", "DemandModel", "Forecast", "fit", "mape"]
