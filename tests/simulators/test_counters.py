"""The counters invariants of shared/formats hold, and counters agree with the journal."""

from __future__ import annotations

import itertools
from pathlib import Path

from tests.simulators.files import counters, truth
from tests.simulators.grammar import ej_transactions


def _units(snapshot: dict) -> dict[int, dict]:  # type: ignore[type-arg]
    return {u["usNumber"]: u for u in snapshot["cash_units"]}


def test_bins_statuses_and_resets(dataset: Path) -> None:
    previous_end: dict[str, list] = {}  # type: ignore[type-arg]
    replenishments = 0
    for path in sorted((dataset / "counters").glob("*.json")):
        data = counters(path)
        snaps = data["snapshots"]
        assert snaps[0]["reason"] == "start_of_day"
        assert snaps[0]["timestamp"].endswith("T00:00:00")
        assert snaps[-1]["reason"] == "end_of_day"
        assert snaps[-1]["timestamp"].endswith("T23:59:59")
        tid = data["terminal_id"]
        if tid in previous_end:
            assert snaps[0]["cash_units"] == previous_end[tid]
        previous_end[tid] = snaps[-1]["cash_units"]
        for snap in snaps:
            units = _units(snap)
            cassettes = [units[n] for n in range(1, 5)]
            reject, retract = units[5], units[6]
            assert (
                reject["ulCount"]
                == reject["ulRejectCount"]
                == sum(c["ulRejectCount"] for c in cassettes)
            )
            assert (
                retract["ulCount"]
                == retract["ulRetractedCount"]
                == sum(c["ulRetractedCount"] for c in cassettes)
            )
            for c in cassettes:
                assert (
                    c["ulCount"] == c["ulInitialCount"] - c["ulDispensedCount"] - c["ulRejectCount"]
                )
                assert c["ulPresentedCount"] == c["ulDispensedCount"] >= c["ulRetractedCount"]
                assert c["ulMinimum"] == c["ulInitialCount"] // 10
                expected = 4 if c["ulCount"] == 0 else 3 if c["ulCount"] <= c["ulMinimum"] else 0
                assert c["usStatus"] == expected
            if snap.get("phase") == "after_exchange":
                replenishments += 1
                assert all(c["ulDispensedCount"] == c["ulRejectCount"] == 0 for c in cassettes)
                assert reject["ulCount"] == retract["ulCount"] == 0
        phases = [s.get("phase") for s in snaps if s["reason"] == "replenishment"]
        assert phases == ["before_exchange", "after_exchange"] * (len(phases) // 2)
    assert replenishments >= 3


def _ej_sum(txs: list, start: str, end: str) -> list[list[int]]:  # type: ignore[type-arg]
    totals = [[0] * 4 for _ in range(3)]
    for tx in txs:
        if start <= tx.time < end:
            for n in range(4):
                totals[0][n] += tx.presented[n]
                totals[1][n] += tx.rejected[n]
                totals[2][n] += tx.retracted[n]
    return totals


def test_counter_increases_equal_what_the_journal_shows(dataset: Path) -> None:
    gaps: dict[tuple[str, str], list[str]] = {}
    for r in truth(dataset / "truth.jsonl"):
        if r["kind"] == "ej_gap":
            gaps.setdefault((r["terminal_id"], r["business_date"]), []).append(
                r["detail"]["local_time"]
            )
    checked = exact = 0
    for path in sorted((dataset / "counters").glob("*.json")):
        data = counters(path)
        tid, day = data["terminal_id"], data["business_date"]
        txs = ej_transactions((dataset / "ej" / path.name.replace(".json", ".txt")).read_text())
        snaps = data["snapshots"]
        for a, b in itertools.pairwise(snaps):
            if a.get("phase") == "before_exchange":
                continue
            ua, ub = _units(a), _units(b)
            increase = [
                [ub[n][key] - ua[n][key] for n in range(1, 5)]
                for key in ("ulDispensedCount", "ulRejectCount", "ulRetractedCount")
            ]
            shown = _ej_sum(txs, a["timestamp"][11:], b["timestamp"][11:])
            checked += 1
            if any(
                a["timestamp"][11:] <= t < b["timestamp"][11:] for t in gaps.get((tid, day), [])
            ):
                # notes of transactions lost from the journal are in the counters only
                assert all(
                    i >= s
                    for row_i, row_s in zip(increase, shown, strict=True)
                    for i, s in zip(row_i, row_s, strict=True)
                )
            else:
                exact += 1
                assert increase == shown, (path.name, a["timestamp"], b["timestamp"])
    assert exact >= 8
    assert checked > exact


def test_ndc_counters_printout_matches_the_snapshots(dataset: Path) -> None:
    seen = 0
    for path in sorted((dataset / "ej").glob("*.txt")):
        lines = path.read_text().split("\n")
        snaps = [
            s
            for s in counters(dataset / "counters" / path.name.replace(".txt", ".json"))[
                "snapshots"
            ]
            if s["reason"] == "replenishment"
        ]
        titles = [
            i
            for i, line in enumerate(lines)
            if "COUNTERS" in line and ("EXCHANGE" in line or "REPLENISHMENT" in line)
        ]
        assert len(titles) == len(snaps)
        for index, snap in zip(titles, snaps, strict=True):
            assert lines[index][:8] == snap["timestamp"][11:]
            for n, unit in enumerate(snap["cash_units"][:4], start=1):
                numbers = [int(x) for x in lines[index + 1 + n].split() if x.isdigit()]
                assert numbers[-6:] == [
                    unit["ulValues"],
                    unit["ulInitialCount"],
                    unit["ulDispensedCount"],
                    unit["ulRejectCount"],
                    unit["ulRetractedCount"],
                    unit["ulCount"],
                ]
            bin_text = " ".join(
                line[9:] if line[:1].isdigit() else line
                for line in lines[index + 6 : index + 8]
                if "BIN" in line
            )
            bins = [int(x) for x in bin_text.split() if x.isdigit()]
            assert bins == [snap["cash_units"][4]["ulCount"], snap["cash_units"][5]["ulCount"]]
            seen += 1
    assert seen >= 4
