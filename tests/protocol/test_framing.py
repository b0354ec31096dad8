"""Frames: round trip, and every corruption, truncation or splice is detected, never used."""

from __future__ import annotations

import contextlib
import zlib

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from device_agent.protocol.errors import (
    ChecksumError,
    DecodeError,
    EncodeError,
    FrameError,
    UnsupportedVersion,
)
from device_agent.protocol.framing import (
    CRC,
    HEADER,
    MAX_PAYLOAD,
    Frame,
    FrameReader,
    crc32,
    decode_frame,
    encode_frame,
    frame_from_wire,
    frame_to_wire,
    max_wire_size,
    session_binding,
)

frames = st.builds(
    Frame,
    type=st.integers(0, 255),
    seq=st.integers(0, 0xFFFF),
    ack=st.integers(0, 0xFFFF),
    payload=st.binary(max_size=1200),
)


def bitwise_crc32(data: bytes) -> int:
    """CRC-32/ISO-HDLC one bit at a time, independent of zlib."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def test_crc_check_value() -> None:
    assert crc32(b"123456789") == 0xCBF43926 == bitwise_crc32(b"123456789")


@given(st.binary(max_size=300))
def test_crc_matches_the_bitwise_definition(data: bytes) -> None:
    assert crc32(data) == bitwise_crc32(data) == zlib.crc32(data)


@given(frames)
def test_round_trip(frame: Frame) -> None:
    raw = encode_frame(frame)
    assert len(raw) == HEADER.size + len(frame.payload) + CRC.size
    assert decode_frame(raw) == frame
    wire = frame_to_wire(frame)
    assert wire.endswith(b"\x00")
    assert 0 not in wire[:-1]
    assert len(wire) - 1 <= max_wire_size(len(frame.payload))
    assert frame_from_wire(wire[:-1]) == frame


@given(frames, st.data())
def test_any_burst_of_up_to_four_bytes_is_detected(frame: Frame, data: st.DataObject) -> None:
    """CRC-32 detects every error burst of 32 bits or less, wherever it falls."""
    raw = bytearray(encode_frame(frame))
    start = data.draw(st.integers(0, len(raw) - 1))
    width = data.draw(st.integers(1, min(4, len(raw) - start)))
    noise = data.draw(st.binary(min_size=width, max_size=width))
    assume(any(noise))
    for index, value in enumerate(noise):
        raw[start + index] ^= value
    with pytest.raises(DecodeError):
        decode_frame(bytes(raw))


@given(frames, st.data())
def test_scattered_corruption_is_detected(frame: Frame, data: st.DataObject) -> None:
    raw = bytearray(encode_frame(frame))
    positions = data.draw(st.sets(st.integers(0, len(raw) - 1), min_size=1, max_size=8))
    for position in positions:
        raw[position] ^= data.draw(st.integers(1, 255))
    with pytest.raises(DecodeError):
        decode_frame(bytes(raw))


@given(frames, st.data())
def test_truncation_and_extension_are_detected(frame: Frame, data: st.DataObject) -> None:
    raw = encode_frame(frame)
    cut = data.draw(st.integers(0, len(raw) - 1))
    with pytest.raises(DecodeError):
        decode_frame(raw[:cut])
    with pytest.raises(DecodeError):
        decode_frame(raw + data.draw(st.binary(min_size=1, max_size=8)))


@given(st.binary(max_size=1500))
def test_garbage_raises_only_decode_errors(garbage: bytes) -> None:
    with contextlib.suppress(DecodeError):
        frame_from_wire(garbage)


def test_errors_name_the_fault() -> None:
    raw = encode_frame(Frame(0x21, 1, 2, b"abc"))
    with pytest.raises(FrameError, match="length field says 3"):
        decode_frame(raw[:-1])
    with pytest.raises(FrameError, match="shorter than a header"):
        decode_frame(raw[:5])
    damaged = bytearray(raw)
    damaged[9] ^= 0x40
    with pytest.raises(ChecksumError):
        decode_frame(bytes(damaged))
    body = b"\x02" + raw[1:-4]
    with pytest.raises(UnsupportedVersion, match="version 2"):
        decode_frame(body + CRC.pack(crc32(body)))


def test_frame_fields_are_checked() -> None:
    with pytest.raises(EncodeError, match="seq"):
        Frame(0x21, 0x10000, 0, b"")
    with pytest.raises(EncodeError, match="payload"):
        Frame(0x21, 0, 0, bytes(MAX_PAYLOAD + 1))


@given(st.lists(frames, min_size=1, max_size=6), st.data())
def test_reader_splits_a_stream_in_any_pieces(frame_list: list[Frame], data: st.DataObject) -> None:
    stream = b"".join(frame_to_wire(f) for f in frame_list)
    cuts = sorted(data.draw(st.sets(st.integers(0, len(stream)), max_size=10)))
    reader = FrameReader()
    got: list[Frame] = []
    for start, end in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        got += reader.feed(stream[start:end])
    assert got == frame_list
    assert reader.stats.dropped == 0


def _is_subsequence(got: list[Frame], sent: list[Frame]) -> bool:
    remaining = iter(sent)
    return all(any(frame == candidate for candidate in remaining) for frame in got)


def _damage(stream: bytearray, data: st.DataObject, actions: list[str]) -> None:
    for _ in range(data.draw(st.integers(1, 6))):
        if not stream:
            return
        position = data.draw(st.integers(0, len(stream) - 1))
        action = data.draw(st.sampled_from(actions))
        if action == "flip":
            stream[position] ^= data.draw(st.integers(1, 255))
        elif action == "drop":
            del stream[position : position + data.draw(st.integers(1, 40))]
        elif action == "insert":
            stream[position:position] = data.draw(st.binary(min_size=1, max_size=20))
        elif action == "repeat":
            end = position + data.draw(st.integers(1, 60))
            stream[position:position] = stream[position:end]
        else:
            stream[position] = 0


@given(st.lists(frames, min_size=1, max_size=6), st.data())
def test_damaged_stream_yields_only_intact_frames_in_order(
    frame_list: list[Frame], data: st.DataObject
) -> None:
    """Corrupt, truncate, cut or pad line bytes: what comes out is some of the frames sent."""
    stream = bytearray(b"".join(frame_to_wire(f) for f in frame_list))
    _damage(stream, data, ["flip", "drop", "insert", "zero"])
    got = FrameReader().feed(bytes(stream))
    assert _is_subsequence(got, frame_list)


@given(st.lists(frames, min_size=1, max_size=6), st.data())
def test_duplicated_bytes_yield_only_frames_that_were_sent(
    frame_list: list[Frame], data: st.DataObject
) -> None:
    stream = bytearray(b"".join(frame_to_wire(f) for f in frame_list))
    _damage(stream, data, ["flip", "drop", "insert", "zero", "repeat"])
    for frame in FrameReader().feed(bytes(stream)):
        assert frame in frame_list


def test_reader_drops_overlong_garbage_and_recovers() -> None:
    reader = FrameReader(max_payload=256)
    good = Frame(0x21, 5, 6, b"journal bytes")
    got = reader.feed(b"\x55" * 5000)
    got += reader.feed(b"\x55" * 100 + b"\x00" + frame_to_wire(good))
    assert got == [good]
    assert reader.stats.overlong == 1


def test_a_reader_takes_only_frames_bound_to_its_session() -> None:
    ours, theirs = session_binding(0x1A2B3C4D, 0x5E6F7081), session_binding(0x1A2B3C4D, 7)
    hello = Frame(0x01, 0, 0, b"hello")
    data = Frame(0x21, 5, 6, b"journal bytes")
    reader = FrameReader(unbound_types=frozenset({0x01}))
    reader.binding = ours
    stream = (
        frame_to_wire(hello)
        + frame_to_wire(data, ours)
        + frame_to_wire(data, theirs)  # the same frame of another session
        + frame_to_wire(data)  # unbound
        + frame_to_wire(hello, ours)  # a HELLO is never bound
    )
    assert reader.feed(stream) == [hello, data]
    assert reader.stats.checksum_errors == 3
    reader.binding = None  # no session: only HELLO passes
    assert reader.feed(frame_to_wire(data, ours) + frame_to_wire(hello)) == [hello]
    assert reader.stats.unbound == 1


@given(frames, st.integers(0, 0xFFFFFFFF), st.integers(0, 0xFFFFFFFF), st.data())
def test_a_frame_of_the_session_before_a_restart_fails_the_crc(
    frame: Frame, sender: int, receiver: int, data: st.DataObject
) -> None:
    """A restart changes one end's id; CRC-32 detects every change within 32 bits."""
    changed = data.draw(st.integers(0, 0xFFFFFFFF).filter(lambda n: n not in (sender, receiver)))
    raw = encode_frame(frame, session_binding(sender, receiver))
    assert decode_frame(raw, session_binding(sender, receiver)) == frame
    for other in (session_binding(changed, receiver), session_binding(sender, changed)):
        with pytest.raises(ChecksumError):
            decode_frame(raw, other)


def test_session_ids_in_a_binding_are_32_bits() -> None:
    with pytest.raises(EncodeError, match="receiver"):
        session_binding(1, 1 << 32)
