"""Line noise: the right rate, reproducible, every hit a real change, split-invariant."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from simulators.noise import ByteCorrupter, NoisyPort


def test_clean_line_changes_nothing() -> None:
    corrupter = ByteCorrupter(0.0, random.Random(1))
    data = bytes(range(256)) * 10
    assert corrupter(data) == data
    assert corrupter.corrupted == 0


def test_rate_matches_the_probability() -> None:
    corrupter = ByteCorrupter(1e-3, random.Random(2))
    data = bytes(1000)
    changed = sum(sum(1 for b in corrupter(data) if b) for _ in range(1000))
    expected = 1e-3 * 1_000_000
    assert abs(changed - expected) < 5 * math.sqrt(expected)
    assert changed == corrupter.corrupted
    assert corrupter.seen == 1_000_000


@given(
    st.binary(min_size=1, max_size=3000), st.lists(st.integers(0, 3000), max_size=5), st.integers()
)
def test_the_same_seed_damages_the_same_bytes_however_the_stream_is_cut(
    data: bytes, cuts: list[int], seed: int
) -> None:
    whole = ByteCorrupter(0.01, random.Random(seed))(data)
    pieces = ByteCorrupter(0.01, random.Random(seed))
    points = sorted({min(c, len(data)) for c in cuts})
    out = b"".join(
        pieces(data[a:b]) for a, b in zip([0, *points], [*points, len(data)], strict=True)
    )
    assert out == whole
    assert sum(a != b for a, b in zip(whole, data, strict=True)) == pieces.corrupted


def test_probability_is_checked() -> None:
    with pytest.raises(ValueError, match="probability"):
        ByteCorrupter(1.0, random.Random())


class RecordingPort:
    def __init__(self, incoming: bytes) -> None:
        self.incoming = incoming
        self.written = b""

    def read(self, size: int, timeout: float) -> bytes:
        data, self.incoming = self.incoming[:size], self.incoming[size:]
        return data

    def write(self, data: bytes) -> None:
        self.written += data

    def close(self) -> None:
        pass


def test_noisy_port_damages_both_directions_independently() -> None:
    inner = RecordingPort(bytes(50_000))
    port = NoisyPort(inner, 0.01, random.Random(3))
    received = port.read(50_000, 0.0)
    port.write(bytes(50_000))
    assert 300 < sum(1 for b in received if b) == port.incoming.corrupted < 700
    assert 300 < sum(1 for b in inner.written if b) == port.outgoing.corrupted < 700
    assert received != inner.written
