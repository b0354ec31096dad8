"""Settlement sums of the EJ: the compiled loop against the Python one."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciliation.model import EjTransaction
from tests.reconciliation.speedups import needs_speedups

_NOTES = st.tuples(*[st.integers(0, 40)] * 4)
_CLOCKS = st.sampled_from(["", "00:00:00", "08:15:00", "08:15:01", "12:00:00", "23:59:59", "8:5"])
_BOUNDS = st.sampled_from(["", "T", "T08:15:00", "T08:15", "T12:00:00", "T23:59:59", "\x7f", "U"])


@st.composite
def _day(draw: st.DrawFn) -> list[EjTransaction]:
    base = EjTransaction(
        "100001", "", "0001", "", "", "withdrawal", "00", 0, "taken",
        (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), "", False, 0, 0, 1, 1,
    )  # fmt: skip
    return [
        base._replace(
            time=draw(_CLOCKS),
            truncated=draw(st.booleans()),
            dispensed=draw(_NOTES),
            rejected=draw(_NOTES),
            retracted=draw(_NOTES),
        )
        for _ in range(draw(st.integers(0, 8)))
    ]


@needs_speedups
@given(_day(), _BOUNDS, _BOUNDS)
def test_compiled_day_sums_equal_the_python_ones(
    transactions: list[EjTransaction], low: str, high: str
) -> None:
    from reconciliation import settlement

    compiled = settlement._day_sums(transactions, low, high)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settlement, "_compiled_note_sums", None)
        assert settlement._day_sums(transactions, low, high) == compiled


@needs_speedups
def test_what_the_compiled_loop_does_not_read_fast_is_added_in_python() -> None:
    from reconciliation import settlement

    txn = EjTransaction(
        "100001", "", "0001", "08:00:00", "", "withdrawal", "00", 0, "taken",
        (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), "", False, 0, 0, 1, 1,
    )._replace(dispensed=(1, 2, 3, 4), rejected=(0, 0, 0, 0), retracted=(0, 0, 0, 1))  # fmt: skip
    assert settlement._day_sums([txn], "", "\x7f") == ([1, 2, 3, 4], [0, 0, 0, 0], [0, 0, 0, 1])
    assert settlement._compiled_note_sums([txn], "é", "\x7f", settlement._SUM_FIELDS) is None
    assert settlement._day_sums([txn], "é", "\x7f") == ([0] * 4, [0] * 4, [0] * 4)
    assert settlement._day_sums([txn], "T07", "T08:00:00") == ([1, 2, 3, 4], [0] * 4, [0, 0, 0, 1])
