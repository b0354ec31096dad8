"""Fixtures for the reconciliation tests: where the reference sample lives."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def find_sample() -> Path | None:
    """``shared/formats/sample`` in the repository or beside it."""
    for base in (ROOT, *ROOT.parents):
        candidate = base / "shared" / "formats" / "sample"
        if (candidate / "truth.jsonl").is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def sample() -> Path:
    found = find_sample()
    if found is None:
        pytest.fail("shared/formats/sample not found in the repository or beside it")
    return found
