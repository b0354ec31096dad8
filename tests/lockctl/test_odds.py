"""Guessing odds: the counts behind the table in docs/otc.md."""

from __future__ import annotations

import math

import pytest

from lockctl import GuessingOdds, LockPolicy, Operation
from lockctl.odds import accepted_codes, accepted_opening_codes, max_guesses, probability
from tests.lockctl.docs import DOCS


def test_accepted_codes_per_guess() -> None:
    assert accepted_opening_codes(LockPolicy()) == 24
    assert accepted_codes(LockPolicy()) == 27
    narrow = LockPolicy(lookback_windows=0, clock_skew_seconds=0, operations={Operation.ROUTE})
    assert accepted_opening_codes(narrow) == 2


@pytest.mark.parametrize(
    ("seconds", "guesses"),
    [
        (0, 5),  # one burst
        (899, 5),
        (900, 10),  # second burst after 15 minutes
        (3600, 15),  # bursts at 0, 15 min, 45 min
        (86_400, 40),  # 0, 900, 2700, 6300, 13500, 27900, 56700, 85500
        (30 * 86_400, 475),
        (365 * 86_400, 5500),
    ],
)
def test_max_guesses_under_default_lockout(seconds: int, guesses: int) -> None:
    assert max_guesses(LockPolicy(), seconds) == guesses


def test_max_guesses_by_hand_for_a_flat_penalty() -> None:
    policy = LockPolicy(
        max_failures=3, penalty_seconds=600, penalty_growth=1, max_penalty_seconds=600
    )
    # bursts at 0, 600, 1200, ... 3600: seven bursts of three
    assert max_guesses(policy, 3600) == 21


def test_probability_matches_the_closed_form() -> None:
    assert probability(2.4e-7, 5500) == pytest.approx(1 - (1 - 2.4e-7) ** 5500, rel=1e-9)
    assert probability(2.4e-7, 5500) < 5500 * 2.4e-7
    assert probability(0.5, 1) == pytest.approx(0.5)
    assert math.isclose(probability(1e-12, 1), 1e-12, rel_tol=1e-9)


def test_the_table_in_the_docs() -> None:
    odds = GuessingOdds.of(LockPolicy())
    assert odds.per_guess == pytest.approx(2.4e-7)
    rows = {row.period: (row.guesses, round(row.probability, 8)) for row in odds.rows}
    assert rows["before the first lockout"] == (5, 1.2e-6)
    assert rows["1 day"][0] == 40
    assert f"{odds.rows[-1].probability:.2g}" == "0.0013"
    assert odds.seal_forgery == pytest.approx(6e-8, rel=1e-6)
    text = "\n".join(odds.lines())
    assert "3 windows x 4 operations x 2" in text


def test_the_table_in_docs_otc_md_is_what_the_code_computes() -> None:
    text = (DOCS / "otc.md").read_text(encoding="utf-8")
    table = text.split("| period | guesses `v` at most | P(open) at most |", 1)[1]
    documented = {}
    for line in table.splitlines()[2:]:
        if not line.startswith("|"):
            break
        period, guesses, chance = (cell.strip() for cell in line.strip("|").split("|"))
        documented[period] = (int(guesses.replace(",", "")), float(chance))
    computed = {row.period: row for row in GuessingOdds.of(LockPolicy()).rows}
    assert set(documented) == set(computed)
    for period, (guesses, chance) in documented.items():
        assert computed[period].guesses == guesses, period
        assert float(f"{computed[period].probability:.2g}") == chance, period
