"""Fixtures for the lock-control tests: a fixed lock key, policy and start time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lockctl import LockControl, LockFirmware, LockKey, LockPolicy

T0 = datetime(2026, 11, 16, 8, 10, tzinfo=UTC)  # inside window 498560 (08:00-09:00)
LOCK = "CX-000123"


@pytest.fixture
def key() -> LockKey:
    return LockKey(LOCK, 1, bytes(range(32)))


@pytest.fixture
def policy() -> LockPolicy:
    return LockPolicy()


@pytest.fixture
def control(policy: LockPolicy) -> LockControl:
    return LockControl(policy)


@pytest.fixture
def firmware(key: LockKey, policy: LockPolicy) -> LockFirmware:
    return LockFirmware(key, policy)
