"""A lock's policy: time windows, lockout penalties, dual control, seal attempts.

The same policy must hold at the service and in the lock (it travels in the
provisioning record): the service issues codes for windows the lock accepts,
and the guessing odds in ``docs/otc.md`` follow from these numbers.

Time windows are fixed slots of ``window_seconds`` counted from the Unix epoch;
window ``w`` runs from ``w * window_seconds`` for ``window_seconds``. A code for
window ``w`` is accepted from ``start(w) - clock_skew_seconds`` until
``end(w) + lookback_windows * window_seconds + clock_skew_seconds``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lockctl import validation
from lockctl.codes import Operation
from lockctl.errors import InvalidArgument

ALL_OPERATIONS = frozenset(Operation)


@dataclass(frozen=True)
class TimeWindow:
    """Window ``index``: from ``starts_at`` to ``ends_at``; a code issued for it is
    accepted until ``valid_until`` (the lookback), plus the clock-skew tolerance."""

    index: int
    starts_at: datetime
    ends_at: datetime
    valid_until: datetime


def _operations(value: object, name: str) -> frozenset[Operation]:
    if isinstance(value, str | bytes) or not hasattr(value, "__iter__"):
        raise InvalidArgument(f"{name} must be a set of operations, got {value!r}")
    result = set()
    for item in value:
        try:
            result.add(Operation(item))
        except ValueError:
            names = ", ".join(op.value for op in Operation)
            raise InvalidArgument(f"{name}: {item!r} is not one of {names}") from None
    return frozenset(result)


@dataclass(frozen=True)
class LockPolicy:
    """What a lock accepts and how it punishes wrong codes. Validated on construction."""

    window_seconds: int = 3600
    lookback_windows: int = 1
    clock_skew_seconds: int = 300
    max_failures: int = 5
    penalty_seconds: int = 900
    penalty_growth: int = 2
    max_penalty_seconds: int = 8 * 3600
    operations: frozenset[Operation] = field(default=ALL_OPERATIONS)
    dual_control: frozenset[Operation] = field(default=frozenset())
    dual_window_seconds: int = 120
    max_seal_failures: int = 3
    max_ahead_seconds: int = 7 * 86400

    def __post_init__(self) -> None:
        check = validation.in_range
        check(self.window_seconds, "window_seconds", 60, 7 * 86400)
        check(self.lookback_windows, "lookback_windows", 0, 4)
        check(self.clock_skew_seconds, "clock_skew_seconds", 0, self.window_seconds // 2)
        check(self.max_failures, "max_failures", 1, 100)
        check(self.penalty_seconds, "penalty_seconds", 1, 7 * 86400)
        check(self.penalty_growth, "penalty_growth", 1, 10)
        check(self.max_penalty_seconds, "max_penalty_seconds", self.penalty_seconds, 30 * 86400)
        operations = _operations(self.operations, "operations")
        if not operations:
            raise InvalidArgument("operations must name at least one operation")
        dual = _operations(self.dual_control, "dual_control")
        if not dual <= operations:
            extra = ", ".join(sorted(op.value for op in dual - operations))
            raise InvalidArgument(f"dual_control names operations the lock refuses: {extra}")
        object.__setattr__(self, "operations", operations)
        object.__setattr__(self, "dual_control", dual)
        check(self.dual_window_seconds, "dual_window_seconds", 10, 3600)
        check(self.max_seal_failures, "max_seal_failures", 1, 100)
        check(self.max_ahead_seconds, "max_ahead_seconds", 0, 366 * 86400)

    # -- windows ---------------------------------------------------------------

    def window_index(self, moment: datetime) -> int:
        """The window that contains ``moment``."""
        return validation.epoch_seconds(moment, "moment") // self.window_seconds

    def window(self, index: int) -> TimeWindow:
        validation.non_negative(index, "window")
        start = validation.from_epoch(index * self.window_seconds)
        length = timedelta(seconds=self.window_seconds)
        return TimeWindow(
            index=index,
            starts_at=start,
            ends_at=start + length,
            valid_until=start + length * (1 + self.lookback_windows),
        )

    def accepted_windows(self, now: datetime) -> range:
        """The windows whose codes a lock accepts at ``now`` (oldest first)."""
        t = validation.epoch_seconds(now)
        low = max(0, (t - self.clock_skew_seconds) // self.window_seconds - self.lookback_windows)
        high = (t + self.clock_skew_seconds) // self.window_seconds
        return range(low, high + 1)

    @property
    def max_accepted_windows(self) -> int:
        """The most windows accepted at any one moment (at a boundary, within the skew)."""
        return self.lookback_windows + 1 + (1 if self.clock_skew_seconds else 0)

    # -- lockout ---------------------------------------------------------------

    def penalty_for(self, lockouts_before: int) -> int:
        """Seconds of penalty for a lockout that follows ``lockouts_before`` earlier ones
        (since the last good code): grows by ``penalty_growth`` up to the maximum."""
        validation.non_negative(lockouts_before, "lockouts_before")
        penalty = self.penalty_seconds
        for _ in range(lockouts_before):
            penalty *= self.penalty_growth
            if penalty >= self.max_penalty_seconds:
                return self.max_penalty_seconds
        return min(penalty, self.max_penalty_seconds)

    # -- serialisation (provisioning records) ----------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_seconds": self.window_seconds,
            "lookback_windows": self.lookback_windows,
            "clock_skew_seconds": self.clock_skew_seconds,
            "max_failures": self.max_failures,
            "penalty_seconds": self.penalty_seconds,
            "penalty_growth": self.penalty_growth,
            "max_penalty_seconds": self.max_penalty_seconds,
            "operations": sorted(op.value for op in self.operations),
            "dual_control": sorted(op.value for op in self.dual_control),
            "dual_window_seconds": self.dual_window_seconds,
            "max_seal_failures": self.max_seal_failures,
            "max_ahead_seconds": self.max_ahead_seconds,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LockPolicy:
        if not isinstance(data, Mapping):
            raise InvalidArgument("policy must be an object")
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise InvalidArgument(f"policy has unknown fields: {', '.join(sorted(unknown))}")
        return cls(**dict(data))
