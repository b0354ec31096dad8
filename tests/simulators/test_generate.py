"""Generation is deterministic by seed, independent of the worker count, and refuses bad options."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from simulators.cash import CashUnits
from simulators.cli import app
from simulators.errors import ConfigurationError
from simulators.generate import FleetOptions, generate

SMALL = FleetOptions(terminals=3, days=2, seed=5, discrepancy_rate=0.2, mean_transactions=40)


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    one = generate(SMALL, tmp_path / "a")
    generate(replace(SMALL, workers=2), tmp_path / "b")
    generate(replace(SMALL, seed=6), tmp_path / "c")
    a, b, c = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert a == b
    assert set(a) == set(c)
    assert a != c
    assert len(a) == 3 * 2 * 3 + 2 * 2 + 1
    assert one.transactions > 150
    assert one.discrepancies > 10


def test_pyiso8583_encoder_writes_the_same_log(tmp_path: Path) -> None:
    generate(replace(SMALL, iso_encoder="fast"), tmp_path / "fast")
    generate(replace(SMALL, iso_encoder="pyiso8583"), tmp_path / "lib")
    assert _digest(tmp_path / "fast") == _digest(tmp_path / "lib")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"terminals": 0}, "--terminals"),
        ({"days": 0}, "--days"),
        ({"dialect": "diebold"}, "--dialect"),
        ({"discrepancy_rate": 1.5}, "--discrepancy-rate"),
        ({"workers": 0}, "--workers"),
    ],
)
def test_bad_options_are_named(change: dict[str, object], message: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=message):
        generate(replace(SMALL, **change), tmp_path)  # type: ignore[arg-type]


def test_cli_generate_and_refusals(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(
        app, ["generate", "--out", str(tmp_path), "--terminals", "2", "--days", "1", "--seed", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "transactions/s" in result.output
    assert (tmp_path / "truth.jsonl").exists()
    assert (tmp_path / "host" / "20261116.iso").exists()
    bad = runner.invoke(app, ["generate", "--out", str(tmp_path), "--dialect", "x"])
    assert bad.exit_code == 2
    assert "--dialect" in bad.output
    assert "Traceback" not in bad.output
    bad_date = runner.invoke(app, ["generate", "--out", str(tmp_path), "--start", "2026-13-01"])
    assert bad_date.exit_code == 2
    assert "2026-13-01" in bad_date.output


def test_greedy_mix_and_statuses() -> None:
    cash = CashUnits((20, 50, 100, 100), (10, 10, 2, 10))
    assert cash.mix(120) == [1, 0, 1, 0]
    assert cash.mix(370) == [1, 1, 2, 1]  # cassette 3 empties first, then 4
    assert cash.mix(30) is None  # the greedy mix cannot make it
    assert CashUnits((20, 20, 20, 20), (50, 50, 50, 50)).mix(20 * 41) is None  # over 40 notes
    cash.book([0, 0, 2, 0], [0, 0, 0, 0], False)
    assert cash.cassettes[2].status == 4
    assert cash.mix(100) == [0, 0, 0, 1]
    cash.book([9, 0, 0, 0], [0, 0, 0, 0], True)
    assert cash.cassettes[0].status == 3
    assert cash.retract_bin.count == 9
