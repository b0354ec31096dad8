"""Each ground-truth record is what the files show, and every kind occurs in both dialects."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from tests.simulators.files import counters, csv_rows, truth
from tests.simulators.grammar import ej_transactions

KINDS = {
    "no_dispense_no_reversal", "no_dispense_reversed", "partial_dispense_no_reversal",
    "partial_dispense_reversed", "retract_no_reversal", "retract_reversed",
    "host_timeout_no_reversal", "host_timeout_reversed", "dispensed_not_in_host",
    "host_duplicate", "ej_gap", "paper_gap", "cassette_shortage", "cassette_overage",
}  # fmt: skip
REVERSAL = {"no_dispense": "22", "partial_dispense": "32", "retract": "17", "host_timeout": "68"}


def test_every_kind_and_variant_occurs(dialect_dataset: Path) -> None:
    records = truth(dialect_dataset / "truth.jsonl")
    assert {r["kind"] for r in records} == KINDS
    detail = {(r["kind"], r["detail"].get("variant") or r["detail"].get("cause")) for r in records}
    for needed in [("ej_gap", "truncated"), ("ej_gap", "lost"), ("paper_gap", "paper_jam"),
                   ("paper_gap", "roll_change"), ("no_dispense_reversed", "power_interruption"),
                   ("no_dispense_no_reversal", "dispenser_error")]:  # fmt: skip
        assert needed in detail


def test_truth_agrees_with_the_sources(dialect_dataset: Path) -> None:
    _check(dialect_dataset)


def test_truth_agrees_with_the_sources_mixed(dataset: Path) -> None:
    _check(dataset)


def _check(root: Path) -> None:
    records = truth(root / "truth.jsonl")
    rows_by_day = {p.stem: csv_rows(p)[1] for p in (root / "host").glob("*.csv")}
    checked: Counter[str] = Counter()
    parsed: dict[str, dict[str, object]] = {}
    for r in records:
        tid, day, kind = r["terminal_id"], r["business_date"], r["kind"]
        stem = day.replace("-", "")
        ej_text = (root / "ej" / f"{tid}_{stem}.txt").read_text()
        if kind.startswith("cassette"):
            snaps = counters(root / "counters" / f"{tid}_{stem}.json")["snapshots"]
            snap = next(
                s
                for s in snaps
                if s.get("phase") == "before_exchange"
                and s["timestamp"][11:] == r["detail"]["replenishment_time"]
            )
            unit = snap["cash_units"][r["detail"]["cassette"] - 1]
            assert unit["ulCount"] == r["detail"]["logical_count"]
            assert unit["physical_count"] == r["detail"]["physical_count"] != unit["ulCount"]
            assert (unit["physical_count"] < unit["ulCount"]) == (kind == "cassette_shortage")
            assert (
                r["amount_minor"]
                == abs(unit["physical_count"] - unit["ulCount"]) * unit["ulValues"] * 100
            )
            checked[kind] += 1
            continue
        stan = r["stan"]
        rows = [x for x in rows_by_day[stem] if x["terminal_id"] == tid and x["stan"] == stan]
        responses = [x for x in rows if x["msg_type"] == "0210"]
        reversals = [x for x in rows if x["msg_type"] == "0420"]
        if stem + tid not in parsed:
            parsed[stem + tid] = {tx.stan: tx for tx in ej_transactions(ej_text)}
        ej: dict = parsed[stem + tid]  # type: ignore[type-arg]
        paper = (root / "paper" / f"{tid}_{stem}.txt").read_text()
        if kind == "dispensed_not_in_host":
            assert rows == []
            assert ej[stan].outcome == "taken"
            assert ej[stan].rc == "00"
        elif kind == "host_duplicate":
            assert len(responses) == 2
            assert responses[0] == responses[1]
        elif kind == "ej_gap":
            assert stan not in ej, r
            assert responses, r
            assert r["amount_minor"] == int(responses[0]["amount_minor"])
            if r["detail"]["variant"] == "lost":
                assert f"{stan}" not in ej_text
        elif kind == "paper_gap":
            assert r["rrn"] not in paper  # a STAN can reappear by OCR noise; a whole RRN hardly
            assert r["detail"]["gap_id"].startswith(f"{tid}-{stem}-")
            if r["detail"]["cause"] == "roll_change":
                assert "JOURNAL PAPER OUT" in ej_text
        else:
            base = kind.rsplit("_", 1)[0].replace("_no", "")
            reversed_ = kind.endswith("_reversed")
            tx = ej[stan]
            assert [x["response_code"] for x in responses] == ["00"]
            assert [x["response_code"] for x in reversals] == (
                [REVERSAL[base]] if reversed_ else []
            )
            requested = int(responses[0]["amount_minor"])
            assert tx.time == r["detail"]["local_time"] == responses[0]["local_time"]
            if base == "host_timeout":
                assert tx.rc == "TO"
                assert tx.presented == [0, 0, 0, 0]
                assert r["amount_minor"] == requested
            elif base == "no_dispense":
                assert tx.rc == "00"
                assert tx.presented == [0, 0, 0, 0]
                assert tx.outcome == (
                    "power" if r["detail"]["cause"] == "power_interruption" else "error"
                )
                assert r["amount_minor"] == requested
            elif base == "partial_dispense":
                assert tx.outcome == "error"
                assert tx.presented == r["detail"]["notes_dispensed"]
                assert (
                    0 < r["detail"]["dispensed_minor"] < requested == r["detail"]["requested_minor"]
                )
                assert r["amount_minor"] == requested - r["detail"]["dispensed_minor"]
                if reversed_:
                    assert (
                        int(reversals[0]["actual_amount_minor"]) == r["detail"]["dispensed_minor"]
                    )
            elif base == "retract":
                assert tx.outcome == "retracted"
                assert tx.retracted == r["detail"]["notes_retracted"]
                assert r["amount_minor"] == requested
        checked[kind] += 1
    assert sum(checked.values()) == len(records)
    # transactions not in the truth are normal: approved withdrawals were taken in full
    flagged = {(r["terminal_id"], r["stan"]) for r in records}
    for path in sorted((root / "ej").glob("*.txt")):
        tid = path.name[:8]
        for tx in ej_transactions(path.read_text()):
            if (tid, tx.stan) not in flagged and tx.withdrawal and tx.rc == "00":
                assert tx.outcome == "taken", (path.name, tx.stan)
                assert sum(tx.presented) > 0, (path.name, tx.stan)
