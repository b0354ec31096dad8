"""On the reference sample the run finds every entry of truth.jsonl, with the
right kind, amount and details, and nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from reconciliation import RunResult, Sources, reconcile
from simulators.truth import match_key, read


@pytest.fixture(scope="module")
def sample_result(sample: Path) -> RunResult:
    return reconcile(
        Sources.from_dirs(
            ej=sample / "ej",
            paper=sample / "paper",
            host=sample / "host",
            counters=sample / "counters",
        )
    )


@pytest.fixture(scope="module")
def truth(sample: Path) -> list[dict[str, Any]]:
    return list(read(sample / "truth.jsonl"))


def test_finds_exactly_the_truth(sample_result: RunResult, truth: list[dict[str, Any]]) -> None:
    found = [match_key(item.to_json()) for item in sample_result.discrepancies]
    expected = [match_key(item) for item in truth]
    assert len(found) == len(set(found)), "a finding is reported twice"
    assert set(found) - set(expected) == set(), "findings that are not in the truth"
    assert set(expected) - set(found) == set(), "truth entries not found"


def test_details_agree_with_the_truth(
    sample_result: RunResult, truth: list[dict[str, Any]]
) -> None:
    by_key = {match_key(item.to_json()): item for item in sample_result.discrepancies}
    for entry in truth:
        found = by_key[match_key(entry)]
        assert found.rrn == entry["rrn"], entry
        for name, value in entry["detail"].items():
            if name != "text":
                assert found.detail.get(name) == value, (entry["kind"], entry["stan"], name)


def test_every_line_of_the_sample_is_used(sample_result: RunResult) -> None:
    assert sample_result.skipped == []
    kinds = {account.kind for account in sample_result.accounts}
    assert kinds == {"ej", "paper", "iso", "csv", "counters"}
    assert all(account.units_skipped == 0 for account in sample_result.accounts)
    assert sample_result.observations == []


def test_each_finding_carries_evidence(sample_result: RunResult) -> None:
    for item in sample_result.discrepancies:
        evidence = item.evidence
        if item.kind.startswith("cassette_"):
            assert evidence.counters["before_exchange"]["phase"] == "before_exchange"
            assert "COUNTERS" in evidence.ej_excerpt
            continue
        assert item.stan is not None
        if item.kind != "dispensed_not_in_host":
            assert any(m["stan"] == item.stan for m in evidence.host_messages), item
        if item.kind not in ("ej_gap",):
            assert item.stan in evidence.ej_excerpt, item
        if item.kind == "paper_gap":
            assert f"STAN {item.stan} not on the paper" in evidence.paper_excerpt
        assert item.suggested_action
        assert item.owed_to in ("customer", "bank", "none")


def test_who_is_owed_and_deadlines(sample_result: RunResult) -> None:
    for item in sample_result.discrepancies:
        if item.kind.endswith("_no_reversal") or item.kind == "host_duplicate":
            assert item.owed_to == "customer"
            assert item.dispute_deadline is not None
        if item.kind == "dispensed_not_in_host":
            assert item.owed_to == "bank"
        if item.kind in ("ej_gap", "paper_gap"):
            assert item.owed_to == "none"
            assert item.dispute_deadline is None


def test_settlement_shows_the_cassette_differences(sample_result: RunResult) -> None:
    closed = [row for row in sample_result.settlement if row.cycle_end and row.cassette <= 4]
    assert closed, "the sample has replenishments"
    differences = {
        (row.terminal_id, row.cassette): row.difference for row in closed if row.difference
    }
    assert differences == {
        ("T1000001", 4): 1,
        ("T1000003", 1): -1,
        ("T1000005", 1): 10,
        ("T1000006", 4): -2,
    }
    for row in closed:
        assert row.physical_count is not None
        assert row.loaded - row.counters_dispensed - row.counters_rejected == (
            row.counters_remaining
        )


def test_counters_minus_ej_shows_exactly_the_ej_gaps(sample_result: RunResult) -> None:
    unexplained = {
        (row.terminal_id, row.cycle_start[:10], row.cassette): row.ej_unexplained
        for row in sample_result.settlement
        if row.ej_unexplained
    }
    assert unexplained == {
        ("T1000001", "", 1): 2,  # 805310, truncated: 2 x 20
        ("T1000001", "2026-11-17", 1): 2,  # 805340 and 805344, lost
        ("T1000001", "2026-11-17", 3): 1,
        ("T1000006", "", 4): 4,  # 750156, truncated: 4 x 100
    }


@pytest.mark.parametrize("suffix", [".iso", ".csv"])
def test_either_host_file_alone_gives_the_same_answer(
    sample: Path, tmp_path: Path, truth: list[dict[str, Any]], suffix: str
) -> None:
    host = tmp_path / "host"
    host.mkdir()
    for path in (sample / "host").glob(f"*{suffix}"):
        (host / path.name).write_bytes(path.read_bytes())
    result = reconcile(
        Sources.from_dirs(
            ej=sample / "ej", paper=sample / "paper", host=host, counters=sample / "counters"
        )
    )
    assert {match_key(item.to_json()) for item in result.discrepancies} == {
        match_key(item) for item in truth
    }
