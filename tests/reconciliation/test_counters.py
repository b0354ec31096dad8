"""Counters snapshots: read as XFS cash units; bad parts reported by name."""

from __future__ import annotations

import json
from pathlib import Path

from reconciliation.counters import parse_counters
from tests.reconciliation.builders import counters_file, snapshot


def _parse(data: bytes) -> object:
    return parse_counters(data, source="c.json", terminal_id="T9000001", business_date="2026-11-16")


def test_sample_files(sample: Path) -> None:
    for path in sorted((sample / "counters").iterdir()):
        tid, day = path.stem.split("_")
        parse = parse_counters(
            path.read_bytes(),
            source=path.name,
            terminal_id=tid,
            business_date=f"{day[:4]}-{day[4:6]}-{day[6:]}",
        )
        assert parse.skipped == []
        assert parse.snapshots[0].reason == "start_of_day"
        assert parse.snapshots[-1].reason == "end_of_day"
        for snap in parse.snapshots:
            units = {unit.number: unit for unit in snap.units}
            assert units[5].notes == sum(units[n].rejected for n in range(1, 5))
            assert units[6].notes == sum(units[n].retracted for n in range(1, 5))


def test_invalid_json_is_reported_with_its_line() -> None:
    parse = _parse(b'{"snapshots": [\n  {"timestamp": }\n]}')
    assert parse.snapshots == []
    assert parse.skipped[0].line == 2
    assert "invalid JSON" in parse.skipped[0].reason


def test_a_unit_without_a_field_is_skipped_by_name() -> None:
    good = snapshot("2026-11-16T00:00:00", "start_of_day", (100, 100, 100, 100))
    bad = snapshot("2026-11-16T23:59:59", "end_of_day", (90, 100, 100, 100))
    del bad["cash_units"][0]["ulCount"]  # type: ignore[index]
    parse = _parse(counters_file([good, bad]))
    assert len(parse.snapshots) == 2
    assert len(parse.snapshots[1].units) == 5
    assert "ulCount" in parse.skipped[0].reason


def test_inop_and_missing_status_are_accepted() -> None:
    snap = snapshot("2026-11-16T00:00:00", "start_of_day", (100, 100, 100, 100))
    snap["cash_units"][0]["usStatus"] = 5  # type: ignore[index]
    snap["cash_units"][1]["usStatus"] = 6  # type: ignore[index]
    parse = _parse(counters_file([snap]))
    assert parse.skipped == []
    assert [unit.status for unit in parse.snapshots[0].units[:2]] == [5, 6]


def test_a_file_for_another_terminal_is_refused() -> None:
    data = json.dumps({"terminal_id": "T0000000", "snapshots": []}).encode()
    parse = _parse(data)
    assert "contradicts the file name" in parse.skipped[0].reason
