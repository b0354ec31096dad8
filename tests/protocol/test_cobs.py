"""COBS: round trip, no zero bytes, bounded overhead, and only CobsError on garbage."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_agent.protocol import cobs
from device_agent.protocol.errors import CobsError

# The examples of Cheshire and Baker's paper as listed in the COBS literature.
EXAMPLES = [
    ("", "01"),
    ("00", "0101"),
    ("0000", "010101"),
    ("001100", "01021101"),
    ("11220033", "0311220233"),
    ("11223344", "0511223344"),
    ("11000000", "0211010101"),
    (bytes(range(1, 255)).hex(), "ff" + bytes(range(1, 255)).hex()),
    ((b"\x00" + bytes(range(1, 255))).hex(), "01ff" + bytes(range(1, 255)).hex()),
    (bytes(range(1, 256)).hex(), "ff" + bytes(range(1, 255)).hex() + "02ff"),
    ((bytes(range(2, 256)) + b"\x00").hex(), "ff" + bytes(range(2, 256)).hex() + "0101"),
    ((bytes(range(3, 256)) + b"\x00\x01").hex(), "fe" + bytes(range(3, 256)).hex() + "0201"),
]


@pytest.mark.parametrize(("data", "encoded"), EXAMPLES)
def test_known_encodings(data: str, encoded: str) -> None:
    assert cobs.encode(bytes.fromhex(data)).hex() == encoded
    assert cobs.decode(bytes.fromhex(encoded)).hex() == data


@given(st.binary(max_size=2000))
def test_round_trip(data: bytes) -> None:
    encoded = cobs.encode(data)
    assert 0 not in encoded
    assert len(encoded) <= cobs.max_encoded_size(len(data))
    assert cobs.decode(encoded) == data


@given(st.binary(max_size=600).filter(lambda b: 0 not in b))
def test_data_without_zeros_costs_one_byte_per_254(data: bytes) -> None:
    assert len(cobs.encode(data)) == len(data) + max(1, -(-len(data) // 254))


@given(st.binary(max_size=600))
def test_garbage_raises_only_cobs_error(data: bytes) -> None:
    with contextlib.suppress(CobsError):
        cobs.decode(data)


@pytest.mark.parametrize(
    ("encoded", "message"),
    [("0311", "claims 2 bytes"), ("021100", "zero byte"), ("00", "zero byte at position 0")],
)
def test_invalid_encodings_say_what_is_wrong(encoded: str, message: str) -> None:
    with pytest.raises(CobsError, match=message):
        cobs.decode(bytes.fromhex(encoded))
