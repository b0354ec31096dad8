"""Fixtures for the reconciliation tests: where the reference sample lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.samples import sample_dir


@pytest.fixture(scope="session")
def sample() -> Path:
    return sample_dir()
