"""Fixtures for the simulator tests: sample journals and counters in a scratch directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.protocol.support import sample_dir

TERMINAL = "T1000001"


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
