"""Guessing odds for a lock policy, in the manner of RFC 4226 section 7.

An attacker at the keypad who does not know the key can do no better than key
random codes. At any moment the lock accepts, for the user number keyed,
``A = windows x operations x 2`` opening codes (each code and its duress variant,
for every accepted window and allowed operation), so one guess opens with
probability at most ``A / 10^8``. The lockout limits how many guesses ``v`` fit
into a period, and the chance of opening within it is ``1 - (1 - A/10^8)^v``,
below ``v * A / 10^8``. Resync codes (a further ``windows`` per user) never open.

A forged close seal at the service is accepted with probability at most
``2 / 10^8`` per attempt (the seal and its duress form), and the chain blocks
after ``max_seal_failures`` wrong seals.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lockctl import validation
from lockctl.codes import MODULUS
from lockctl.policy import LockPolicy

DAY = 86_400
PERIODS: tuple[tuple[str, int], ...] = (
    ("1 hour", 3_600),
    ("1 day", DAY),
    ("30 days", 30 * DAY),
    ("365 days", 365 * DAY),
)


def accepted_opening_codes(policy: LockPolicy) -> int:
    """``A``: the most codes that open at one moment for one user number."""
    return policy.max_accepted_windows * len(policy.operations) * 2


def accepted_codes(policy: LockPolicy) -> int:
    """Every code accepted at one moment for one user (openings and resync)."""
    return policy.max_accepted_windows * (len(policy.operations) * 2 + 1)


def max_guesses(policy: LockPolicy, seconds: int) -> int:
    """The most codes an attacker can key within ``seconds`` from a fresh lock (no good
    code entered meanwhile), taking no time per code: bursts of ``max_failures`` codes,
    each burst followed by the growing penalty."""
    validation.non_negative(seconds, "seconds")
    elapsed = 0  # time of the current burst
    lockouts = 0
    guesses = 0
    while elapsed <= seconds:
        guesses += policy.max_failures
        penalty = policy.penalty_for(lockouts)
        lockouts += 1
        if penalty == policy.max_penalty_seconds:
            # steady state: one more burst per maximum penalty
            guesses += (seconds - elapsed) // penalty * policy.max_failures
            break
        elapsed += penalty
    return guesses


def probability(per_guess: float, guesses: int) -> float:
    """``1 - (1 - per_guess)^guesses``, computed without cancellation."""
    return -math.expm1(guesses * math.log1p(-per_guess))


@dataclass(frozen=True)
class OddsRow:
    period: str
    seconds: int
    guesses: int
    probability: float


@dataclass(frozen=True)
class GuessingOdds:
    """The odds of opening by guessing under ``policy``."""

    policy: LockPolicy
    accepted: int
    per_guess: float
    rows: tuple[OddsRow, ...]
    seal_per_attempt: float
    seal_forgery: float

    @classmethod
    def of(cls, policy: LockPolicy) -> GuessingOdds:
        accepted = accepted_opening_codes(policy)
        per_guess = accepted / MODULUS
        first = probability(per_guess, policy.max_failures)
        rows = [OddsRow("before the first lockout", 0, policy.max_failures, first)]
        for name, seconds in PERIODS:
            guesses = max_guesses(policy, seconds)
            rows.append(OddsRow(name, seconds, guesses, probability(per_guess, guesses)))
        seal_per_attempt = 2 / MODULUS
        return cls(
            policy=policy,
            accepted=accepted,
            per_guess=per_guess,
            rows=tuple(rows),
            seal_per_attempt=seal_per_attempt,
            seal_forgery=probability(seal_per_attempt, policy.max_seal_failures),
        )

    def lines(self) -> list[str]:
        p = self.policy
        out = [
            f"codes accepted per guess (A): {p.max_accepted_windows} windows x "
            f"{len(p.operations)} operations x 2 (code, duress) = {self.accepted}",
            f"per guess: A / 10^8 = {self.per_guess:.3g}",
            f"lockout: {p.max_failures} wrong codes -> {p.penalty_seconds} s penalty, "
            f"x{p.penalty_growth} each time, at most {p.max_penalty_seconds} s",
        ]
        for row in self.rows:
            out.append(
                f"{row.period:>26}: at most {row.guesses:>7} guesses, "
                f"P(open) <= {row.probability:.3g}"
            )
        out.append(
            f"forged close seal: {self.seal_per_attempt:.3g} per attempt, "
            f"{self.seal_forgery:.3g} before the chain blocks ({p.max_seal_failures} attempts)"
        )
        return out
