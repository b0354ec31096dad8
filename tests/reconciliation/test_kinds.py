"""One small scenario per discrepancy kind, built from the field formats."""

from __future__ import annotations

from typing import Any

import pytest

from reconciliation import RunResult, reconcile
from tests.reconciliation.builders import (
    Scenario,
    Txn,
    approved_pair,
    counters_file,
    iso_message,
    ndc_block,
    snapshot,
)

NORMAL = Txn("000100", "08:00:00", amount=4000, notes=(2, 0, 0, 0))


def _run(scenario: Scenario) -> RunResult:
    return reconcile(scenario.sources())


def _only(result: RunResult) -> list[tuple[str, str | None, int]]:
    return sorted((d.kind, d.stan, d.amount_minor) for d in result.discrepancies)


def _with_normal(txn: Txn, host: bytes) -> Scenario:
    return Scenario(ej=[NORMAL, txn], host=approved_pair(NORMAL) + host)


def test_a_clean_day_has_no_finding() -> None:
    balance = Txn("000101", "09:00:00", balance=True)
    declined = Txn("000102", "10:00:00", resp="51", amount=30000)
    host = approved_pair(NORMAL) + approved_pair(balance)
    host += iso_message("0200", declined, rc=None) + iso_message("0210", declined, rc="51")
    scenario = Scenario(
        ej=[NORMAL, balance, declined], host=host, paper=[NORMAL, balance, declined]
    )
    result = _run(scenario)
    assert result.discrepancies == []
    assert result.skipped == []


CASES: list[tuple[str, Txn, str, Any]] = [
    ("none", Txn("000200", "11:00:00", 2000, outcome="none"), "22", None),
    ("power", Txn("000200", "11:00:00", 20000, outcome="power", notes=(0, 0, 2, 0)), "22", None),
    (
        "short",
        Txn(
            "000200", "11:00:00", 12000, outcome="short", notes=(1, 0, 1, 0), presented=(0, 0, 1, 0)
        ),
        "32",
        10000,
    ),
    (
        "retracted",
        Txn("000200", "11:00:00", 30000, outcome="retracted", notes=(0, 0, 3, 0)),
        "17",
        None,
    ),
]
EXPECTED = {
    "none": ("no_dispense", 2000),
    "power": ("no_dispense", 20000),
    "short": ("partial_dispense", 2000),
    "retracted": ("retract", 30000),
}


@pytest.mark.parametrize(("name", "txn", "reason", "actual"), CASES, ids=[c[0] for c in CASES])
@pytest.mark.parametrize("reversed_", [False, True], ids=["no_reversal", "reversed"])
def test_approved_but_not_fully_dispensed(
    name: str, txn: Txn, reason: str, actual: int | None, reversed_: bool
) -> None:
    host = approved_pair(txn)
    if reversed_:
        host += iso_message("0420", txn, rc=reason, actual=actual)
    result = _run(_with_normal(txn, host))
    prefix, amount = EXPECTED[name]
    kind = f"{prefix}_{'reversed' if reversed_ else 'no_reversal'}"
    assert _only(result) == [(kind, "000200", amount)]
    finding = result.discrepancies[0]
    assert finding.owed_to == ("none" if reversed_ else "customer")
    assert finding.rrn is not None
    assert finding.rrn.endswith("000200")
    if name == "power":
        assert finding.detail["cause"] == "power_interruption"
    if name == "short":
        assert finding.detail["notes_dispensed"] == [0, 0, 1, 0]
        assert finding.detail["dispensed_minor"] == 10000


@pytest.mark.parametrize("reversed_", [False, True])
def test_host_approved_but_terminal_timed_out(reversed_: bool) -> None:
    txn = Txn("000300", "12:00:00", 4000, resp="TO")
    host = approved_pair(txn)
    if reversed_:
        host += iso_message("0420", txn, rc="68")
    result = _run(_with_normal(txn, host))
    kind = "host_timeout_reversed" if reversed_ else "host_timeout_no_reversal"
    assert _only(result) == [(kind, "000300", 4000)]


def test_timeout_that_the_host_declined_is_not_a_finding() -> None:
    txn = Txn("000301", "12:00:00", 4000, resp="TO")
    host = iso_message("0200", txn, rc=None) + iso_message("0210", txn, rc="05")
    assert _only(_run(_with_normal(txn, host))) == []


def test_dispensed_not_in_host() -> None:
    txn = Txn("000400", "13:00:00", 14000, notes=(2, 0, 1, 0))
    assert _only(_run(_with_normal(txn, b""))) == [("dispensed_not_in_host", "000400", 14000)]
    result = _run(_with_normal(txn, b""))
    assert result.discrepancies[0].owed_to == "bank"


def test_host_duplicate_logged_later_out_of_order() -> None:
    txn = Txn("000500", "14:00:00", 10000, notes=(0, 0, 1, 0))
    later = Txn("000501", "14:30:00", 2000)
    host = approved_pair(txn) + approved_pair(later) + approved_pair(txn)
    scenario = Scenario(ej=[NORMAL, txn, later], host=approved_pair(NORMAL) + host)
    result = _run(scenario)
    assert _only(result) == [("host_duplicate", "000500", 10000)]
    assert result.discrepancies[0].detail["copies"] == 2
    assert len(result.discrepancies[0].evidence.host_messages) == 4


def test_ej_gap_lost_and_truncated() -> None:
    lost = Txn("000601", "15:00:00", 4000, notes=(2, 0, 0, 0))
    cut = Txn("000602", "15:30:00", 2000, card="476173", last4="5512")
    after = Txn("000603", "16:00:00", 2000)
    scenario = Scenario(
        ej=[NORMAL],
        host=approved_pair(NORMAL)
        + approved_pair(lost)
        + approved_pair(cut)
        + approved_pair(after),
        ej_extra="Card Inserted (476173XXXXXX5512)\n15:40:00 POWER UP\n",
    )
    scenario.ej_extra += ndc_block(after)
    result = _run(scenario)
    assert _only(result) == [("ej_gap", "000601", 4000), ("ej_gap", "000602", 2000)]
    variants = {d.stan: d.detail["variant"] for d in result.discrepancies}
    assert variants == {"000601": "lost", "000602": "truncated"}
    assert all(d.owed_to == "none" for d in result.discrepancies)


def test_paper_gap_with_cause() -> None:
    missing = Txn("000701", "17:00:00", 2000)
    last = Txn("000702", "18:00:00", 2000)
    scenario = Scenario(
        ej=[NORMAL, missing, last],
        host=approved_pair(NORMAL) + approved_pair(missing) + approved_pair(last),
        paper=[NORMAL, last],
    )
    result = _run(scenario)
    assert _only(result) == [("paper_gap", "000701", 2000)]
    assert result.discrepancies[0].detail["cause"] == "paper_jam"
    assert result.discrepancies[0].detail["gap_id"] == "T9000001-20261116-000701"
    roll_change = Scenario(
        host=scenario.host,
        paper=[NORMAL, last],
        ej_extra=ndc_block(NORMAL)
        + "16:59:00 JOURNAL PAPER OUT\n"
        + ndc_block(missing)
        + "17:01:00 JOURNAL PAPER REPLENISHED\n"
        + ndc_block(last),
    )
    result = _run(roll_change)
    assert _only(result) == [("paper_gap", "000701", 2000)]
    assert result.discrepancies[0].detail["cause"] == "roll_change"
    assert "not on the paper" in result.discrepancies[0].evidence.paper_excerpt


@pytest.mark.parametrize(
    ("physical", "kind", "amount"),
    [(1799, "cassette_shortage", 2000), (1803, "cassette_overage", 6000)],
)
def test_cassette_difference_at_replenishment(physical: int, kind: str, amount: int) -> None:
    start = snapshot("2026-11-16T00:00:00", "start_of_day", (1802, 2000, 2000, 2000))
    before = snapshot(
        "2026-11-16T10:00:00",
        "replenishment",
        (1800, 2000, 2000, 2000),
        phase="before_exchange",
        physical=(physical, 2000, 2000, 2000),
    )
    after = snapshot(
        "2026-11-16T10:10:00", "replenishment", (2000, 2000, 2000, 2000), phase="after_exchange"
    )
    end = snapshot("2026-11-16T23:59:59", "end_of_day", (2000, 2000, 2000, 2000))
    scenario = Scenario(
        ej=[NORMAL],
        host=approved_pair(NORMAL),
        counters=counters_file([start, before, after, end]),
    )
    result = _run(scenario)
    assert _only(result) == [(kind, None, amount)]
    finding = result.discrepancies[0]
    assert finding.detail["cassette"] == 1
    assert finding.detail["replenishment_time"] == "10:00:00"
    assert finding.suggested_action == "investigate_cassette"
    row = next(r for r in result.settlement if r.cassette == 1 and r.cycle_end)
    assert row.ej_dispensed == 2
    assert row.ej_unexplained == 0
    assert row.difference == physical - 1800


def test_a_stan_match_contradicted_by_rrn_and_time_is_two_transactions() -> None:
    ours = Txn("000800", "09:00:00", 2000)
    other = Txn("000800", "21:00:00", 4000, notes=(2, 0, 0, 0))
    host = approved_pair(NORMAL) + approved_pair(other)
    result = _run(Scenario(ej=[NORMAL, ours], host=host))
    assert _only(result) == [
        ("dispensed_not_in_host", "000800", 2000),
        ("ej_gap", "000800", 4000),
    ]


def test_a_timeout_the_host_never_saw_is_not_a_finding() -> None:
    txn = Txn("000801", "12:00:00", 4000, resp="TO")
    assert _only(_run(_with_normal(txn, b""))) == []


def test_a_second_ej_for_the_same_day_is_reported_not_merged() -> None:
    scenario = Scenario(ej=[NORMAL], host=approved_pair(NORMAL))
    sources = scenario.sources()
    sources.add_ej_bytes("T9000001", "2026-11-16", b"garbage\n", name="second.txt")
    result = reconcile(sources)
    assert result.discrepancies == []
    assert any("second EJ" in note for note in result.observations)


def test_disagreements_outside_the_kinds_are_observations() -> None:
    declined = Txn("000901", "10:00:00", 4000, resp="05")
    taken = Txn("000902", "11:00:00", 4000, notes=(2, 0, 0, 0))
    other_amount = Txn("000903", "12:00:00", 4000, notes=(2, 0, 0, 0))
    host = approved_pair(NORMAL) + approved_pair(declined)
    host += approved_pair(taken) + iso_message("0420", taken, rc="22")
    host += approved_pair(Txn("000903", "12:00:00", 6000))
    result = _run(Scenario(ej=[NORMAL, declined, taken, other_amount], host=host))
    assert _only(result) == []
    notes = "\n".join(result.observations)
    assert "STAN 000901: the host approved what the terminal shows as declined" in notes
    assert "STAN 000902: reversed at the host although the EJ shows the cash taken" in notes
    assert "STAN 000903: the approved amount differs between EJ and host" in notes
