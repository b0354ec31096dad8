"""Frames: the 8-byte header, the payload and the CRC-32, and how they go on the line.

A frame before stuffing is::

    offset  size  field
    0       1     version       protocol version, 1
    1       1     type          message type (see messages.MessageType)
    2       2     seq           sequence number of a sequenced message, else 0
    4       2     ack           cumulative acknowledgement: the next sequence number
                                the sender of this frame expects from its peer
    6       2     length        payload length in bytes
    8       n     payload
    8+n     4     crc           CRC-32 (ISO-HDLC, as zlib.crc32) of the binding,
                                then bytes 0 .. 8+n

All integers are unsigned big-endian. On the line a frame is COBS-encoded and
followed by a single 0x00 (see :mod:`device_agent.protocol.cobs`).
:class:`FrameReader` cuts a byte stream back into frames, dropping whatever is
damaged: a frame is either whole and intact or not delivered at all.

The *binding* is a prefix the CRC covers but the line does not carry. Every frame
of a session, except the HELLO that opens it, is bound to that session: its
binding is :func:`session_binding` (the sender's session id, then the
receiver's), so a frame of another session, one the line delayed or repeated
across a restart, fails the CRC at the receiver like a damaged one. A HELLO's
binding is empty.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from device_agent.protocol import cobs
from device_agent.protocol.errors import (
    ChecksumError,
    DecodeError,
    EncodeError,
    FrameError,
    UnsupportedVersion,
)

VERSION = 1
HEADER = struct.Struct(">BBHHH")
CRC = struct.Struct(">I")
HEADER_SIZE = HEADER.size
CRC_SIZE = CRC.size
OVERHEAD = HEADER_SIZE + CRC_SIZE
MAX_PAYLOAD = 4096
"""The largest payload any frame may carry; a peer announces its own, smaller, limit."""
DELIMITER = b"\x00"


SESSION_BINDING = struct.Struct(">II")


def crc32(data: bytes, prefix: bytes = b"") -> int:
    """CRC-32/ISO-HDLC of ``prefix`` then ``data``: polynomial 0x04C11DB7 reflected,
    init and final XOR 0xFFFFFFFF."""
    return zlib.crc32(data, zlib.crc32(prefix)) & 0xFFFFFFFF


def session_binding(sender: int, receiver: int) -> bytes:
    """The binding of a frame from session ``sender`` to session ``receiver`` (8 bytes)."""
    for name, session in (("sender", sender), ("receiver", receiver)):
        if not 0 <= session <= 0xFFFFFFFF:
            raise EncodeError(f"a session id is 32 bits, got {session}", field=name)
    return SESSION_BINDING.pack(sender, receiver)


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame: its header fields and its payload."""

    type: int
    seq: int
    ack: int
    payload: bytes

    def __post_init__(self) -> None:
        for name, value, limit in (
            ("type", self.type, 0xFF),
            ("seq", self.seq, 0xFFFF),
            ("ack", self.ack, 0xFFFF),
        ):
            if not 0 <= value <= limit:
                raise EncodeError(f"must be 0..{limit}, got {value}", field=name)
        if len(self.payload) > MAX_PAYLOAD:
            raise EncodeError(
                f"{len(self.payload)} bytes, the limit is {MAX_PAYLOAD}", field="payload"
            )


def encode_frame(frame: Frame, binding: bytes = b"") -> bytes:
    """The frame's bytes before stuffing: header, payload, CRC-32 (over binding and frame)."""
    body = HEADER.pack(VERSION, frame.type, frame.seq, frame.ack, len(frame.payload)) + bytes(
        frame.payload
    )
    return body + CRC.pack(crc32(body, binding))


def decode_frame(raw: bytes, binding: bytes = b"") -> Frame:
    """The frame in ``raw`` (unstuffed bytes); a :class:`DecodeError` if it is not intact.

    The CRC is checked over ``binding`` and the frame: a frame bound to another
    session fails it (:class:`ChecksumError`).
    """
    if len(raw) < OVERHEAD:
        raise FrameError(f"{len(raw)} bytes is shorter than a header and CRC ({OVERHEAD})")
    version, type_code, seq, ack, length = HEADER.unpack_from(raw)
    if len(raw) != OVERHEAD + length:
        # Checked before the CRC so that a truncated frame is reported as such; the CRC
        # still guards every byte, the length field included.
        raise FrameError(
            f"length field says {length} payload bytes, the frame has {len(raw) - OVERHEAD}"
        )
    (expected,) = CRC.unpack_from(raw, len(raw) - CRC_SIZE)
    actual = crc32(raw[: len(raw) - CRC_SIZE], binding)
    if actual != expected:
        raise ChecksumError(f"CRC-32 is 0x{actual:08x}, the frame says 0x{expected:08x}")
    if version != VERSION:
        raise UnsupportedVersion(version)
    return Frame(type_code, seq, ack, bytes(raw[HEADER_SIZE : HEADER_SIZE + length]))


def frame_to_wire(frame: Frame, binding: bytes = b"") -> bytes:
    """What goes on the line for ``frame``: its COBS encoding and the 0x00 delimiter."""
    return cobs.encode(encode_frame(frame, binding)) + DELIMITER


def frame_from_wire(chunk: bytes, binding: bytes = b"") -> Frame:
    """The frame in one chunk of line bytes between two delimiters (delimiters excluded)."""
    return decode_frame(cobs.decode(chunk), binding)


def max_wire_size(max_payload: int = MAX_PAYLOAD) -> int:
    """The longest stuffed frame (without delimiter) for payloads up to ``max_payload``."""
    return cobs.max_encoded_size(OVERHEAD + max_payload)


@dataclass
class ReaderStats:
    """What a :class:`FrameReader` has seen: frames, and chunks it had to drop, by reason."""

    frames: int = 0
    bytes: int = 0
    dropped: int = 0
    cobs_errors: int = 0
    checksum_errors: int = 0
    frame_errors: int = 0
    overlong: int = 0
    unbound: int = 0
    """Chunks of a bound type that came while the reader had no binding (no session)."""


class FrameReader:
    """Cuts a stream of line bytes into intact frames.

    ``feed`` takes whatever the port returned and gives back every frame completed by
    it. A chunk that is not an intact frame is counted in :attr:`stats` and dropped; a
    run of bytes longer than any valid frame is dropped up to the next delimiter, so
    garbage on the line costs bounded memory.

    Frames are checked against :attr:`binding` (see the module docstring), except
    those of the ``unbound_types``, which are checked against none. While
    :attr:`binding` is None, only frames of the unbound types are taken.
    """

    def __init__(
        self, max_payload: int = MAX_PAYLOAD, *, unbound_types: frozenset[int] = frozenset()
    ) -> None:
        self._limit = max_wire_size(max_payload)
        self._buffer = bytearray()
        self._discarding = False
        self._unbound_types = unbound_types
        self.binding: bytes | None = b""
        self.stats = ReaderStats()
        self.last_error: DecodeError | None = None

    def feed(self, data: bytes) -> list[Frame]:
        self.stats.bytes += len(data)
        frames: list[Frame] = []
        start = 0
        while True:
            end = data.find(0, start)
            if end < 0:
                self._append(data[start:])
                return frames
            self._append(data[start:end])
            chunk, discarding = bytes(self._buffer), self._discarding
            self._buffer.clear()
            self._discarding = False
            start = end + 1
            if discarding or not chunk:
                continue
            try:
                frame = self._decode(chunk)
            except DecodeError as exc:
                self._count(exc)
                continue
            if frame is None:
                self.stats.dropped += 1
                self.stats.unbound += 1
                continue
            self.stats.frames += 1
            frames.append(frame)

    def _decode(self, chunk: bytes) -> Frame | None:
        raw = cobs.decode(chunk)
        # The type is read before the CRC is checked, to choose the binding; a damaged
        # type byte fails the CRC whichever binding it chose.
        binding = b"" if len(raw) > 1 and raw[1] in self._unbound_types else self.binding
        if binding is None:
            return None  # no session to check it against, whether damaged or not
        return decode_frame(raw, binding)

    def _append(self, data: bytes) -> None:
        if self._discarding:
            return
        self._buffer += data
        if len(self._buffer) > self._limit:
            self._buffer.clear()
            self._discarding = True
            self.stats.dropped += 1
            self.stats.overlong += 1

    def _count(self, exc: DecodeError) -> None:
        self.last_error = exc
        self.stats.dropped += 1
        if isinstance(exc, ChecksumError):
            self.stats.checksum_errors += 1
        elif isinstance(exc, FrameError):
            self.stats.frame_errors += 1
        else:
            self.stats.cobs_errors += 1
