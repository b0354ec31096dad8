"""``atm-recon run``: a good run, unusable input, malformed lines."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = str(Path(sys.executable).parent / "atm-recon")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SCRIPT, "run", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def _folders(sample: Path) -> list[str]:
    return [
        "--ej", str(sample / "ej"),
        "--paper", str(sample / "paper"),
        "--host", str(sample / "host"),
        "--counters", str(sample / "counters"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def good_run(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("out")
    result = _run(*_folders(sample), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out, result.stdout


def test_good_run_writes_every_report(good_run: tuple[Path, str], sample: Path) -> None:
    out, stdout = good_run
    names = sorted(path.name for path in out.iterdir())
    assert names == [
        "discrepancies.csv",
        "discrepancies.jsonl",
        "report.html",
        "report.xlsx",
        "settlement.csv",
        "summary.json",
    ]
    lines = (out / "discrepancies.jsonl").read_text().splitlines()
    truth = (sample / "truth.jsonl").read_text().splitlines()
    assert len(lines) == len(truth)
    for line in lines:
        record = json.loads(line)
        for field in ("terminal_id", "business_date", "kind", "stan", "rrn", "amount_minor"):
            assert field in record
        assert isinstance(record["amount_minor"], int)
    assert "111 discrepancies" in stdout
    assert "owed to customers" in stdout


def test_summary_counts_and_accounting(good_run: tuple[Path, str]) -> None:
    out, _ = good_run
    summary = json.loads((out / "summary.json").read_text())
    assert summary["discrepancies"] == 111
    assert summary["by_kind"]["paper_gap"] == 16
    assert summary["units_skipped"] == 0
    assert {source["kind"] for source in summary["sources"]} == {
        "ej", "paper", "iso", "csv", "counters"
    }  # fmt: skip
    assert summary["owed_minor"]["customer"] > 0


def test_missing_folder_is_unusable(tmp_path: Path) -> None:
    result = _run("--ej", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no such folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_empty_folders_are_unusable(tmp_path: Path) -> None:
    (tmp_path / "ej").mkdir()
    (tmp_path / "ej" / "notes.md").write_text("not a journal")
    result = _run("--ej", str(tmp_path / "ej"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no usable input files" in result.stderr
    assert "notes.md" in result.stderr


def test_no_ej_and_no_host_is_unusable(sample: Path, tmp_path: Path) -> None:
    result = _run("--paper", str(sample / "paper"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert "no EJ and no host" in result.stderr


def test_malformed_lines_are_listed_and_the_run_goes_on(sample: Path, tmp_path: Path) -> None:
    copy = tmp_path / "sample"
    shutil.copytree(sample, copy)
    for path in copy.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    ej = copy / "ej" / "T1000002_20261116.txt"
    lines = ej.read_text().splitlines(keepends=True)
    lines.insert(9, "#### smudged line ####\n")
    ej.write_text("".join(lines))
    csv = copy / "host" / "20261116.csv"
    csv.write_text(csv.read_text() + "T1000002,not,a,row\n")
    (copy / "ej" / "README.txt").write_text("stray file")
    out = tmp_path / "out"
    result = _run(*_folders(copy), "--out", str(out))
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    skipped = {(Path(s["source"]).name, s["line"], s["reason"]) for s in summary["skipped"]}
    assert ("T1000002_20261116.txt", 10, "unrecognised line") in skipped
    assert ("20261116.csv", 251, "expected 14 columns, found 4") in skipped
    assert [Path(i["file"]).name for i in summary["ignored_files"]] == ["README.txt"]
    assert summary["discrepancies"] == 111
    assert "T1000002_20261116.txt:10: unrecognised line" in result.stdout
