"""A brute-force attack on the simulated lock through a simulated year.

The attacker keys random user numbers and codes as fast as the lock lets them
(no time per entry) and waits out every penalty. The lockout must hold exactly:
the number of guesses equals the bound the odds in docs/otc.md are computed
from, none opens, and every guess and lockout is in the lock's own trail.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from lockctl import EventKind, LockKey, LockPolicy, LockStatus, Outcome, Provisioning
from lockctl.codes import MODULUS
from lockctl.odds import accepted_opening_codes, max_guesses, probability
from simulators.lock import SimulatedLock
from tests.support import FakeClock

DAYS = 365


def test_brute_force_is_held_by_the_lockout(capsys: pytest.CaptureFixture[str]) -> None:
    policy = LockPolicy()
    key = LockKey("CX-BRUTE", 1, bytes(range(1, 33)))
    clock = FakeClock()
    lock = SimulatedLock(Provisioning(key, policy), clock=clock)
    rng = random.Random(20261116)
    start = clock.now
    end = start + timedelta(days=DAYS)
    guesses = opened = 0
    accepted_sizes = set()
    while clock.now <= end:
        until = lock.penalty_until
        if until is not None:
            clock.now = until
            continue
        assert lock.status is LockStatus.LOCKED
        user = rng.randrange(1, 1_000_000_000)
        accepted_sizes.add(lock.accepted_codes_now(user))
        outcome = lock.enter_code(user, f"{rng.randrange(MODULUS):08d}")
        guesses += 1
        assert outcome in (Outcome.WRONG_CODE, Outcome.LOCKED_OUT, Outcome.OPENED)
        if outcome is Outcome.OPENED:  # pragma: no cover - a 1-in-760 event for this seed
            opened += 1
            lock.open_door()
            lock.close_door()

    bound = max_guesses(policy, DAYS * 86_400)
    assert guesses == bound == 5500
    assert opened == 0
    trail = lock.download_trail()
    assert sum(e.kind is EventKind.WRONG_CODE for e in trail) == guesses
    assert sum(e.kind is EventKind.LOCKOUT for e in trail) == guesses // policy.max_failures
    # every code the lock accepted at a moment: 2 or 3 windows x (4 operations x 2 + resync)
    assert accepted_sizes <= {18, 27}

    per_guess = accepted_opening_codes(policy) / MODULUS
    with capsys.disabled():
        print(
            f"\nbrute force, {DAYS} simulated days: {guesses} guesses let through by the "
            f"lockout (bound {bound}), {opened} opened; per guess <= {per_guess:.2g}, "
            f"measured success odds over the run <= {probability(per_guess, guesses):.2g} "
            f"(observed {opened}/{guesses})"
        )
