"""Consistent Overhead Byte Stuffing (Cheshire and Baker, 1999).

Each frame goes on the line COBS-encoded and followed by one 0x00 byte, so a
zero byte on the line always means "end of frame": a receiver that starts in the
middle of a frame, or loses bytes, finds the next frame boundary at the next zero.
The encoding costs one byte per 254 bytes of data (plus one), whatever the data.
"""

from __future__ import annotations

from device_agent.protocol.errors import CobsError

MAX_BLOCK = 254


def encode(data: bytes) -> bytes:
    """The COBS encoding of ``data``: no zero byte, at most ``len(data) // 254 + 1`` longer."""
    out = bytearray()
    segments = bytes(data).split(b"\x00")
    last_index = len(segments) - 1
    for index, segment in enumerate(segments):
        position = 0
        while len(segment) - position >= MAX_BLOCK:
            out.append(0xFF)
            out += segment[position : position + MAX_BLOCK]
            position += MAX_BLOCK
        rest = segment[position:]
        if index == last_index and not rest and position > 0:
            break  # the data ends on a full block: no final code byte is needed
        out.append(len(rest) + 1)
        out += rest
    return bytes(out)


def decode(encoded: bytes) -> bytes:
    """The data that ``encoded`` stands for; :class:`CobsError` if it is not valid COBS."""
    out = bytearray()
    size = len(encoded)
    index = 0
    while index < size:
        code = encoded[index]
        if code == 0:
            raise CobsError(f"zero byte at position {index} inside a COBS block")
        end = index + code
        if end > size:
            raise CobsError(
                f"block at position {index} claims {code - 1} bytes, {size - index - 1} left"
            )
        block = encoded[index + 1 : end]
        if 0 in block:
            raise CobsError(f"zero byte inside the block at position {index}")
        out += block
        index = end
        if code != 0xFF and index < size:
            out.append(0)
    return bytes(out)


def max_encoded_size(size: int) -> int:
    """The longest COBS encoding of ``size`` bytes."""
    return size + size // MAX_BLOCK + 1
