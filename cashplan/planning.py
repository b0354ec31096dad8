"""Replenishment plans: which days to visit an ATM and how many notes of each kind to load.

For one ATM, given its cassettes now and simulated demand paths from the
forecast (``(paths, days, denominations)``, day 0 = the plan's first day),
:func:`plan_atm` chooses visit days within the horizon and a load per
denomination at each visit that minimise

    visit cost x visits  +  idle-cash rate x the cash held in the ATM, day by day

subject to the chance constraint: the probability that some denomination runs
below its floor (zero, or the cassettes' minimums with ``respect_minimum``)
before the next visit stays under ``cashout_target``.

How:

* a visit on day ``v`` arrives when ``arrival_fraction`` of that day's demand
  has been served from the old cassettes, which are then swapped for new ones;
* the load of a visit that lasts until the next visit on day ``w`` is, per
  denomination, the ``1 - target / denominations`` quantile of the demand from
  the arrival on day ``v`` to the arrival on day ``w`` (so the joint chance is
  under the target; Bonferroni), plus the floor, rounded up to whole bundles
  and at least one bundle; a load above the denomination's cassette capacity
  makes that interval infeasible;
* idle cash is the expected end-of-day cash in the cassettes (load less mean
  demand so far) at its face value, at ``idle_cash_rate`` a year;
* dynamic programming over visit days (a visit at most ``max_cycle_days``
  after the previous one) gives the cheapest plan; the last visit in the
  horizon is loaded for the cycle length with the least cost per day, and
  only the days of that cycle inside the horizon are charged, so the plan does
  not starve its last visit;
* the first visit must come before the current cash runs out (same chance
  constraint on the current stock); when even the earliest visit day cannot
  keep the risk under the target the plan visits then and says so
  (``at_risk``).

Cassettes of a denomination share its load evenly (whole bundles, capped by
each cassette's capacity).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from math import ceil

import numpy as np
import numpy.typing as npt

from cashplan.depletion import CassetteLevel, check_paths, column_of
from cashplan.errors import InvalidArgument

Array = npt.NDArray[np.float64]
DAYS_PER_YEAR = 365.0


@dataclass(frozen=True)
class PlanningPolicy:
    """Costs and limits of a plan. Money is in the currency's major units."""

    visit_cost: float = 150.0
    idle_cash_rate: float = 0.08  # a year, on the cash held in the ATM
    cashout_target: float = 0.02  # most probability of running out before the next visit
    arrival_fraction: float = 0.5  # share of the visit day's demand served before arrival
    bundle: int = 100  # notes are loaded in bundles of this many
    horizon_days: int = 14
    max_cycle_days: int = 14
    first_visit_day: int = 0  # the earliest day index a visit may be planned on
    respect_minimum: bool = False  # keep every cassette above its minimum, not just above zero

    def __post_init__(self) -> None:
        checks = (
            ("visit_cost", self.visit_cost >= 0),
            ("idle_cash_rate", 0 <= self.idle_cash_rate <= 1),
            ("cashout_target", 0 < self.cashout_target < 0.5),
            ("arrival_fraction", 0 <= self.arrival_fraction <= 1),
            ("bundle", 1 <= self.bundle <= 10_000),
            ("horizon_days", 1 <= self.horizon_days <= 60),
            ("max_cycle_days", 1 <= self.max_cycle_days <= 60),
            ("first_visit_day", 0 <= self.first_visit_day < self.horizon_days),
        )
        for name, ok in checks:
            if not ok:
                raise InvalidArgument(f"{name} is out of range", field=name)

    @property
    def path_days(self) -> int:
        """How many days of demand paths a plan needs."""
        return self.horizon_days + self.max_cycle_days + 1


@dataclass(frozen=True)
class VisitPlan:
    """One planned visit."""

    day: int  # index from the plan's first day
    loads: dict[int, int]  # cassette number -> notes to load
    notes: dict[int, int]  # denomination -> notes to load
    value: int  # major units loaded
    covers_until: int  # the day index of the next visit (or the end of the cycle)
    cashout_probability: float  # before the next visit, from the paths (joint)


@dataclass(frozen=True)
class AtmPlan:
    visits: list[VisitPlan]
    visit_cost: float  # of the visits in the horizon
    idle_cost: float  # of the cash held in the horizon (expected)
    # the last day a first visit keeps the risk under the target; None when the cash now
    # lasts the horizon (or, with at_risk, when not even day 0 is safe)
    latest_safe_day: int | None
    at_risk: bool  # even the earliest visit cannot keep the risk under the target
    risk_without_visit: list[float] = field(default_factory=list)  # by the end of each day

    @property
    def cost(self) -> float:
        return self.visit_cost + self.idle_cost


def _bundled(notes: Array, bundle: int) -> Array:
    return np.maximum(np.ceil(np.maximum(notes, 0.0) / bundle), 1.0) * bundle


def _split(cassettes: Sequence[CassetteLevel], notes: int, bundle: int) -> dict[int, int]:
    """Share a denomination's load among its cassettes evenly, in bundles, within capacity."""
    ordered = sorted(cassettes, key=lambda c: c.number)
    bundles = ceil(notes / bundle)
    out = {c.number: 0 for c in ordered}
    room = {c.number: c.capacity // bundle for c in ordered}
    while bundles > 0:
        open_ = [c.number for c in ordered if out[c.number] // bundle < room[c.number]]
        if not open_:
            break
        for number in open_:
            if bundles == 0:
                break
            out[number] += bundle
            bundles -= 1
    return out


@dataclass
class _Atm:
    """What the dynamic programme needs, precomputed."""

    policy: PlanningPolicy
    demand: Array  # (paths, days, denoms)
    cumulative: Array  # (paths, days + 1, denoms): demand before day k
    demand_t: Array  # (days, denoms, paths): the same, paths last and contiguous
    cumulative_t: Array  # (days + 1, denoms, paths)
    mean_cumulative: Array  # (days + 1, denoms)
    values: Array  # (denoms,) face value of a note
    capacity: Array  # (denoms,) notes
    floor: Array  # (denoms,) notes that must stay
    stock: Array  # (denoms,) notes now
    quantile: float

    def segment_demand(self, v: npt.NDArray[np.int64], w: npt.NDArray[np.int64]) -> Array:
        """Demand ``(*v.shape, denoms, paths)`` from the arrival on day v to the arrival on
        day w: the rest of day v, the whole days between, the start of day w."""
        f = self.policy.arrival_fraction
        c = self.cumulative_t
        d = self.demand_t
        return np.asarray(c[w] - c[v + 1] + (1.0 - f) * d[v] + f * d[w], dtype=np.float64)

    def segments(self, horizon: int) -> tuple[Array, Array]:
        """Loads ``(horizon, cycles, denoms)`` and their idle-cash costs ``(horizon, cycles)``
        for a visit on each day v lasting 1..max_cycle_days days."""
        policy = self.policy
        cycles = np.arange(1, policy.max_cycle_days + 1)
        v = np.arange(horizon)[:, None] + np.zeros_like(cycles)[None, :]
        w = v + cycles[None, :]
        demand = self.segment_demand(v, w)
        rank = min(demand.shape[-1] - 1, max(0, ceil(self.quantile * demand.shape[-1]) - 1))
        needed = np.partition(demand, rank, axis=-1)[..., rank]
        loads = _bundled(needed + self.floor[None, None, :], policy.bundle)
        # Expected cash at the end of day v + t (t < cycle): the load less the mean demand
        # since the arrival on day v.
        f = policy.arrival_fraction
        m = self.mean_cumulative
        days = np.arange(horizon)
        offsets = np.arange(policy.max_cycle_days)
        k = days[:, None] + offsets[None, :]  # (h, t)
        used = m[k + 1] - m[days + 1][:, None, :] + (1.0 - f) * (m[days + 1] - m[days])[:, None, :]
        within = offsets[None, :] < cycles[:, None]  # (cycle, t)
        cash = np.maximum(loads[:, :, None, :] - used[:, None, :, :], 0.0) @ self.values
        idle = (cash * within[None, :, :]).sum(axis=2) * policy.idle_cash_rate / DAYS_PER_YEAR
        return loads, idle

    def joint_risk(self, v: int, w: int, load: Array) -> float:
        demand = self.segment_demand(np.array(v), np.array(w))  # (denoms, paths)
        return float(np.mean((demand > (load - self.floor)[:, None]).any(axis=0)))


def _prepare(
    cassettes: Sequence[CassetteLevel],
    paths: npt.ArrayLike,
    denominations: Sequence[int],
    policy: PlanningPolicy,
    elapsed_fraction: float,
) -> _Atm:
    demand = check_paths(paths, denominations).copy()
    if demand.shape[1] < policy.path_days:
        raise InvalidArgument(
            f"paths cover {demand.shape[1]} days; the policy needs {policy.path_days}",
            field="paths",
        )
    if not 0.0 <= elapsed_fraction < 1.0:
        raise InvalidArgument("elapsed_fraction must be in [0, 1)", field="elapsed_fraction")
    if not cassettes:
        raise InvalidArgument("an ATM needs at least one cassette", field="cassettes")
    demand = demand[:, : policy.path_days, :]
    demand[:, 0, :] *= 1.0 - elapsed_fraction
    n = len(denominations)
    capacity = np.zeros(n)
    floor = np.zeros(n)
    stock = np.zeros(n)
    for cassette in cassettes:
        column = column_of(cassette, denominations)
        capacity[column] += cassette.capacity
        stock[column] += cassette.count
        if policy.respect_minimum:
            floor[column] += cassette.minimum
    cumulative = np.concatenate(
        [np.zeros((demand.shape[0], 1, n)), np.cumsum(demand, axis=1)], axis=1
    )
    return _Atm(
        policy=policy,
        demand=demand,
        cumulative=cumulative,
        demand_t=np.ascontiguousarray(demand.transpose(1, 2, 0)),
        cumulative_t=np.ascontiguousarray(cumulative.transpose(1, 2, 0)),
        mean_cumulative=cumulative.mean(axis=0),
        values=np.asarray(denominations, dtype=np.float64),
        capacity=capacity,
        floor=floor,
        stock=stock,
        quantile=1.0 - policy.cashout_target / n,
    )


def plan_atm(
    cassettes: Sequence[CassetteLevel],
    paths: npt.ArrayLike,
    denominations: Sequence[int],
    policy: PlanningPolicy | None = None,
    *,
    visit_days: Sequence[bool] | None = None,
    elapsed_fraction: float = 0.0,
) -> AtmPlan:
    """The cheapest visits and loads for one ATM over the policy's horizon.

    ``visit_days`` (one flag per horizon day) says on which days a visit is
    possible (service days, crews); by default every day from
    ``first_visit_day``. ``elapsed_fraction`` of day 0 is already over (the
    paths' first day is scaled down by it).
    """
    policy = policy or PlanningPolicy()
    atm = _prepare(cassettes, paths, denominations, policy, elapsed_fraction)
    horizon = policy.horizon_days
    allowed = [True] * horizon if visit_days is None else [bool(x) for x in visit_days]
    if len(allowed) != horizon:
        raise InvalidArgument(
            f"visit_days has {len(allowed)} flags; the horizon has {horizon} days",
            field="visit_days",
        )
    allowed = [ok and day >= policy.first_visit_day for day, ok in enumerate(allowed)]
    big = float("inf")

    # Risk and idle cost of the current stock if the first visit comes on day v (v = horizon:
    # no visit in the horizon).
    f = policy.arrival_fraction
    c = atm.cumulative
    rate = policy.idle_cash_rate / DAYS_PER_YEAR
    risk_first = np.empty(horizon + 1)
    idle_first = np.empty(horizon + 1)
    spare = atm.stock - atm.floor
    for v in range(horizon + 1):
        used = c[:, v, :] + (f * atm.demand[:, v, :] if v < horizon else 0.0)
        risk_first[v] = float(np.mean((used > spare[None, :]).any(axis=1)))
        held = np.maximum(atm.stock[None, :] - atm.mean_cumulative[1 : v + 1], 0.0) @ atm.values
        idle_first[v] = rate * float(held.sum())
    risk_without = [
        float(np.mean((c[:, k + 1, :] > spare[None, :]).any(axis=1))) for k in range(horizon)
    ]

    # best[v]: the cheapest way to cover days v.. given a visit on day v.
    best = [big] * horizon
    choice: list[tuple[int, Array, bool]] = [(0, np.zeros(0), False)] * horizon
    cycles = np.arange(1, policy.max_cycle_days + 1)
    all_loads, all_idle = atm.segments(horizon)
    for v in reversed(range(horizon)):
        if not allowed[v]:
            continue
        ends = v + cycles
        loads = all_loads[v]
        idle = all_idle[v]
        fits = np.asarray((loads <= atm.capacity[None, :]).all(axis=1), dtype=bool)
        per_day = np.where(fits, (policy.visit_cost + idle) / cycles, big)
        if np.isfinite(per_day).any():
            t = int(np.argmin(per_day))
            best[v] = float(per_day[t]) * (horizon - v)
            choice[v] = (int(ends[t]), loads[t], True)
        else:  # nothing fits: a full load, for one day
            full = np.floor(atm.capacity / policy.bundle) * policy.bundle
            best[v] = policy.visit_cost + float(np.maximum(full, 0.0) @ atm.values) * (
                policy.idle_cash_rate / DAYS_PER_YEAR
            )
            choice[v] = (v + 1, full, True)
        for i, w in enumerate(ends.tolist()):
            if w >= horizon or not allowed[w] or not fits[i] or best[w] == big:
                continue
            cost = policy.visit_cost + float(idle[i]) + best[w]
            if cost < best[v]:
                best[v] = cost
                choice[v] = (w, loads[i], False)

    target = policy.cashout_target + 1e-12
    safe = [v for v in range(horizon + 1) if risk_first[v] <= target]
    latest_safe = max(safe) if safe else None
    options: list[tuple[float, int]] = []
    if risk_first[horizon] <= target:
        options.append((float(idle_first[horizon]), horizon))
    for v in range(horizon):
        if allowed[v] and best[v] < big and risk_first[v] <= target:
            options.append((float(idle_first[v]) + best[v], v))
    at_risk = False
    if not options:
        earliest = next((v for v in range(horizon) if allowed[v] and best[v] < big), None)
        if earliest is None:
            return AtmPlan([], 0.0, float(idle_first[horizon]), latest_safe, True, risk_without)
        options.append((float(idle_first[earliest]) + best[earliest], earliest))
        at_risk = True
    _, first = min(options)
    visits: list[VisitPlan] = []
    v = first
    idle_cost = float(idle_first[first])
    while v < horizon:
        w, load, last = choice[v]
        notes = {int(d): int(n) for d, n in zip(atm.values, load, strict=True)}
        split: dict[int, int] = {}
        for d in notes:
            split.update(
                _split([x for x in cassettes if x.denomination == d], notes[d], policy.bundle)
            )
        visits.append(
            VisitPlan(
                day=v,
                loads=dict(sorted(split.items())),
                notes=notes,
                value=int(sum(d * n for d, n in notes.items())),
                covers_until=w,
                cashout_probability=atm.joint_risk(v, w, load),
            )
        )
        if last:
            break
        v = w
    visit_cost = policy.visit_cost * len(visits)
    if visits:
        total = idle_cost + best[visits[0].day]
        idle_cost = total - visit_cost
        if visits[-1].covers_until > horizon:  # only the horizon's share of the last cycle
            cycle = visits[-1].covers_until - visits[-1].day
            share = (horizon - visits[-1].day) / cycle
            visit_cost = policy.visit_cost * (len(visits) - 1 + share)
            idle_cost = total - visit_cost
    return AtmPlan(
        visits=visits,
        visit_cost=round(visit_cost, 2),
        idle_cost=round(max(idle_cost, 0.0), 2),
        latest_safe_day=latest_safe if latest_safe is None or latest_safe < horizon else None,
        at_risk=at_risk,
        risk_without_visit=risk_without,
    )
