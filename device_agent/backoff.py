"""Exponential backoff with full jitter, for retrying the service.

The n-th consecutive failure waits a uniformly random time in
``[0, min(cap, base * 2**n)]`` ("full jitter"), so a fleet that lost the
service at the same moment does not come back at the same moment. A
``Retry-After`` from the service is a lower bound. The random source is
injected so tests know every delay.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    base_s: float = 1.0
    cap_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def __post_init__(self) -> None:
        if self.base_s <= 0 or self.cap_s < self.base_s:
            raise ValueError("backoff needs 0 < base <= cap")

    def ceiling(self) -> float:
        """The longest wait the next failure may bring."""
        return min(self.cap_s, self.base_s * 2.0 ** min(self.failures, 62))

    def next_delay(self, *, retry_after: float | None = None) -> float:
        """Count one more failure and return how long to wait before trying again."""
        delay = self.rng.uniform(0.0, self.ceiling())
        self.failures += 1
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.cap_s))
        return delay

    def reset(self) -> None:
        self.failures = 0
