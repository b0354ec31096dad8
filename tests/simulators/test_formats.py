"""Every generated file follows the grammar of shared/formats, as the reference sample does."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.simulators.files import csv_rows, iso_messages, truth
from tests.simulators.grammar import check_ej

FIELDS = {
    "0200": {"t", "p", "2", "3", "4", "7", "11", "12", "13", "37", "41", "49"},
    "0210": {"t", "p", "2", "3", "4", "7", "11", "12", "13", "37", "39", "41", "49"},
    "0420": {"t", "p", "1", "2", "3", "4", "7", "11", "12", "13", "37", "38", "39", "41", "49", "90"},  # noqa: E501
}  # fmt: skip
CSV_COLUMNS = {
    "terminal_id": r"[A-Z0-9]{8}",
    "business_date": r"\d{4}-\d\d-\d\d",
    "local_time": r"\d\d:\d\d:\d\d",
    "stan": r"\d{6}",
    "rrn": r"\d{12}",
    "pan_masked": r"\d{6}\*{6}\d{4}",
    "processing_code": r"010000|310000",
    "amount_minor": r"0|[1-9]\d*",
    "currency": r"840",
    "response_code": r"00|05|51|55|17|22|32|68",
    "auth_code": r"(\d{6})?",
    "msg_type": r"0210|0420",
    "original_stan": r"(\d{6})?",
    "actual_amount_minor": r"(0|[1-9]\d*)?",
}


@pytest.mark.parametrize("source", ["sample", "dataset"])
def test_ej_files_follow_the_grammar(source: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(source)
    assert {"ndc", "procash"} <= _check_all_ej(root)


def test_ej_files_of_one_dialect_follow_the_grammar(dialect_dataset: Path) -> None:
    assert len(_check_all_ej(dialect_dataset)) == 1


def _check_all_ej(root: Path) -> set[str]:
    dialects = set()
    files = sorted((root / "ej").glob("*.txt"))
    assert files
    for path in files:
        assert re.fullmatch(r"[A-Z0-9]{8}_\d{8}\.txt", path.name)
        dialects.add(check_ej(path.read_text()))
    return dialects


@pytest.mark.parametrize("source", ["sample", "dataset"])
def test_paper_pages_and_blocks(source: str, request: pytest.FixtureRequest) -> None:
    root: Path = request.getfixturevalue(source)
    for path in sorted((root / "paper").glob("*.txt")):
        text = path.read_text()
        assert text.isascii()
        assert text.endswith("\n")
        assert "\r" not in text
        lines = text.split("\n")[:-1]
        markers = [i for i, line in enumerate(lines) if line.startswith("--- PAGE")]
        assert markers[0] == 0
        for n, index in enumerate(markers, start=1):
            assert lines[index] == f"--- PAGE {n} ---"
        sizes = [b - a - 1 for a, b in zip(markers, [*markers[1:], len(lines)], strict=True)]
        assert all(56 <= size <= 64 for size in sizes[:-1]), sizes
        assert 1 <= sizes[-1] <= 64
        # the receipts are there, under the noise: most block openers survive intact
        openers = sum(1 for line in lines if line in ("*****START*****", "*" * 31))
        assert openers >= 3


def test_csv_columns_and_order(sample: Path, dataset: Path) -> None:
    sample_header, _ = csv_rows(next((sample / "host").glob("*.csv")))
    for path in sorted((dataset / "host").glob("*.csv")):
        header, rows = csv_rows(path)
        assert header == sample_header == list(CSV_COLUMNS)
        assert rows
        for row in rows:
            for column, pattern in CSV_COLUMNS.items():
                assert re.fullmatch(pattern, row[column]), (column, row)
            assert row["business_date"].replace("-", "") == path.stem
            if row["msg_type"] == "0420":
                assert row["original_stan"] == row["stan"]
                assert row["actual_amount_minor"] != ""
            else:
                assert row["original_stan"] == row["actual_amount_minor"] == ""
            assert (row["auth_code"] == "") == (row["response_code"] in ("05", "51", "55"))
        keys = [(r["terminal_id"], r["local_time"]) for r in rows]
        assert keys == sorted(keys)


def test_iso_messages_decode_and_have_the_readme_fields(dataset: Path) -> None:
    for path in sorted((dataset / "host").glob("*.iso")):
        messages = iso_messages(path)
        assert messages
        seen = set()
        last = ("", "")
        for m in messages:
            mti = m["t"]
            expected = set(FIELDS[mti])
            if mti == "0210" and m["39"] == "00":
                expected.add("38")
            if mti == "0420" and "95" in m:
                expected.add("95")
            assert set(m) - {"raw"} == expected, (mti, sorted(m))
            assert m["3"] in ("010000", "310000")
            assert m["49"] == "840"
            assert m["7"][:4] == m["13"] == path.stem[4:]
            assert m["37"][6:] == m["11"]
            assert m["37"][4:6] == m["12"][:2]
            if mti == "0420":
                assert m["90"] == f"0200{m['11']}{m['13']}{m['12']}0000012345600000000000"
                if "95" in m:
                    assert re.fullmatch(r"(\d{12})\1C00000000C00000000", m["95"])
                    assert m["39"] == "32"
                    assert int(m["95"][:12]) < int(m["4"])
                else:
                    assert m["39"] in ("17", "22", "68")
            key = (m["7"], m["41"])
            if m["raw"] in seen:
                continue  # a duplicated pair is logged again later, out of order
            seen.add(m["raw"])
            assert key >= last, f"{path.name}: log order broken at {key}"
            last = key


def test_iso_log_and_csv_export_agree(dataset: Path) -> None:
    for iso_path in sorted((dataset / "host").glob("*.iso")):
        _, rows = csv_rows(iso_path.with_suffix(".csv"))
        exported = sorted(tuple(sorted(r.items())) for r in rows)
        derived = []
        date = f"{iso_path.stem[:4]}-{iso_path.stem[4:6]}-{iso_path.stem[6:]}"
        for m in iso_messages(iso_path):
            if m["t"] == "0200":
                continue
            partial = m.get("95")
            row = {
                "terminal_id": m["41"],
                "business_date": date,
                "local_time": f"{m['12'][:2]}:{m['12'][2:4]}:{m['12'][4:]}",
                "stan": m["11"],
                "rrn": m["37"],
                "pan_masked": f"{m['2'][:6]}******{m['2'][-4:]}",
                "processing_code": m["3"],
                "amount_minor": str(int(m["4"])),
                "currency": m["49"],
                "response_code": m["39"],
                "auth_code": m.get("38", ""),
                "msg_type": m["t"],
                "original_stan": m["90"][4:10] if m["t"] == "0420" else "",
                "actual_amount_minor": (
                    str(int(partial[:12])) if partial else "0" if m["t"] == "0420" else ""
                ),
            }
            derived.append(tuple(sorted(row.items())))
        assert sorted(derived) == exported


def test_counters_files_have_the_sample_layout(sample: Path, dataset: Path) -> None:
    reference = json.loads((sample / "counters" / "T1000002_20261116.json").read_text())
    unit_keys = list(reference["snapshots"][0]["cash_units"][0])

    def shape(line: str) -> str:
        return re.sub(r"\d+", "9", re.sub(r'"[A-Z0-9]{8}"|"\d{4}-\d\d-\d\d[T\d:]*"', '"X"', line))

    allowed = {
        shape(line)
        for path in (sample / "counters").glob("*.json")
        for line in path.read_text().split("\n")
    }
    for path in sorted((dataset / "counters").glob("*.json")):
        text = path.read_text()
        data = json.loads(text)
        assert list(data) == ["terminal_id", "business_date", "snapshots"]
        assert path.name == f"{data['terminal_id']}_{data['business_date'].replace('-', '')}.json"
        for snapshot in data["snapshots"]:
            assert snapshot["reason"] in ("start_of_day", "replenishment", "end_of_day")
            for unit in snapshot["cash_units"]:
                keys = list(unit)
                if snapshot.get("phase") == "before_exchange":
                    assert keys == [*unit_keys, "physical_count"]
                else:
                    assert keys == unit_keys
        for line in text.split("\n"):
            assert shape(line) in allowed, line


def test_truth_records_have_the_sample_fields_per_kind(sample: Path, dialect_dataset: Path) -> None:
    reference = {}
    for record in truth(sample / "truth.jsonl"):
        reference[record["kind"]] = (list(record), list(record["detail"]))
    records = truth(dialect_dataset / "truth.jsonl")
    assert {r["kind"] for r in records} == set(reference)
    for record in records:
        assert (list(record), list(record["detail"])) == reference[record["kind"]], record
    keys = [(r["terminal_id"], r["business_date"]) for r in records]
    assert keys == sorted(keys)
