"""Checks shared by the constructors: lock ids, user numbers, key bytes and times.

Each raises :class:`~lockctl.errors.InvalidArgument` naming the parameter, so
bad input never reaches the cryptography as an obscure ``TypeError``.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from lockctl.errors import InvalidArgument

LOCK_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
MAX_USER = 999_999_999  # nine digits on the lock's keypad
KEY_BYTES = 32


def lock_id(value: object, name: str = "lock_id") -> str:
    """A lock id: 1-32 characters of letters, digits, ``.``, ``_``, ``-``, not starting with
    punctuation."""
    if not isinstance(value, str) or not LOCK_ID_PATTERN.fullmatch(value):
        raise InvalidArgument(
            f"{name} must be 1-32 letters, digits, '.', '_' or '-' starting with a letter "
            f"or digit, got {value!r}"
        )
    return value


def user(value: object, name: str = "user") -> int:
    """A user number as keyed on the lock: an integer from 1 to 999,999,999."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_USER:
        raise InvalidArgument(f"{name} must be an integer from 1 to {MAX_USER}, got {value!r}")
    return value


def key_bytes(value: object, name: str = "key") -> bytes:
    if not isinstance(value, bytes) or len(value) != KEY_BYTES:
        size = len(value) if isinstance(value, bytes) else type(value).__name__
        raise InvalidArgument(f"{name} must be {KEY_BYTES} bytes, got {size}")
    return value


def seal_bytes(value: object, name: str = "seal") -> bytes:
    if not isinstance(value, bytes) or len(value) != KEY_BYTES:
        raise InvalidArgument(f"{name} must be a {KEY_BYTES}-byte seal value")
    return value


def non_negative(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgument(f"{name} must be a non-negative integer, got {value!r}")
    return value


def in_range(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{name} must be an integer from {low} to {high}, got {value!r}")
    return value


def aware(value: object, name: str = "now") -> datetime:
    """A timezone-aware datetime (naive times are refused: their zone is a guess)."""
    if not isinstance(value, datetime) or value.utcoffset() is None:
        raise InvalidArgument(f"{name} must be a timezone-aware datetime, got {value!r}")
    return value


def epoch_seconds(value: object, name: str = "now") -> int:
    """Whole seconds since 1970-01-01T00:00:00Z, rounded down."""
    moment = aware(value, name)
    return int(moment.timestamp() // 1)


def from_epoch(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def rfc3339(value: datetime) -> str:
    """UTC time with seconds and a ``Z``: ``2026-11-16T08:00:00Z``."""
    return aware(value, "time").astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
