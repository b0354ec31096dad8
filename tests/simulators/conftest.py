"""Fixtures for the simulator tests: generated data sets (once per session), the
reference sample, and sample journals and counters in a scratch directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from simulators.generate import FleetOptions, generate
from tests.samples import sample_dir

TERMINAL = "T1000001"


@pytest.fixture(scope="session")
def sample() -> Path:
    return sample_dir()


MIXED = FleetOptions(
    terminals=6,
    days=2,
    seed=11,
    discrepancy_rate=0.25,
    mean_transactions=70,
    count_error_rate=0.6,
    visit_interval=(1, 2),
)


@pytest.fixture(scope="session")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six terminals of both dialects over two days, many discrepancies."""
    out = tmp_path_factory.mktemp("mixed")
    generate(MIXED, out)
    return out


def kinds_options(dialect: str) -> FleetOptions:
    return FleetOptions(
        terminals=4,
        days=3,
        seed=7,
        dialect=dialect,
        discrepancy_rate=0.3,
        mean_transactions=100,
        count_error_rate=1.0,
        visit_interval=(1, 2),
    )


@pytest.fixture(scope="session", params=["ndc", "procash"])
def dialect_dataset(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A data set of one dialect with every kind of discrepancy in it."""
    out = tmp_path_factory.mktemp(request.param)
    generate(kinds_options(request.param), out)
    return out


@pytest.fixture
def journal_dir(tmp_path: Path) -> Path:
    """The sample journals of T1000001 (and one of another terminal, to be ignored)."""
    source = sample_dir("ej")
    target = tmp_path / "ej"
    target.mkdir()
    for path in sorted(source.glob(f"{TERMINAL}_*.txt")):
        shutil.copy(path, target / path.name)
    shutil.copy(source / "T1000002_20261116.txt", target / "T1000002_20261116.txt")
    (target / "notes.txt").write_text("not a journal\n")
    return target


@pytest.fixture
def counters_file() -> Path:
    return sample_dir("counters") / f"{TERMINAL}_20261117.json"
