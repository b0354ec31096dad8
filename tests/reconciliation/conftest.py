"""Fixtures for the reconciliation tests: where the reference sample lives."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.samples import sample_dir


def find_sample() -> Path:
    """``shared/formats/sample`` of the repository."""
    return sample_dir()


@pytest.fixture(scope="session")
def sample() -> Path:
    return sample_dir()
