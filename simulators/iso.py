"""ISO 8583:1987 ASCII messages of the switch log, laid out as pyiso8583's ``default_ascii``.

The log holds three message types with fixed field sets (``shared/formats``):
0200 request, 0210 response (DE38 on approvals only) and 0420 reversal advice
(DE90, plus DE95 for a partial reversal). :func:`pack` writes them by
concatenation, which is what ``iso8583.encode(fields, default_ascii)`` produces for
these fields, only without the per-field bookkeeping, because the generator
writes hundreds of thousands of messages a second. :func:`pack_with_pyiso8583`
is the reference path through the library; the tests hold the two byte-equal,
and :func:`decode` reads a message back with the library.
"""

from __future__ import annotations

from typing import Any

import iso8583
from iso8583.specs import default_ascii

ACQUIRER_ID = "00000123456"
FORWARDER_ID = "00000000000"
PROC_WITHDRAWAL = "010000"
PROC_BALANCE = "310000"
CURRENCY = "840"

# reversal reasons (DE39 of a 0420)
REASON_RETRACTED = "17"
REASON_NO_DISPENSE = "22"
REASON_PARTIAL = "32"
REASON_LATE = "68"

_BITMAP_0200 = "7238000008808000"
_BITMAP_0210_APPROVED = "723800000E808000"
_BITMAP_0210_DECLINED = "723800000A808000"
_BITMAP_0420 = "F23800000E808000"
_SECONDARY_0420 = "0000004000000000"
_SECONDARY_0420_PARTIAL = "0000004200000000"


def pack(fields: dict[str, str]) -> bytes:
    """Encode one message of the log; ``fields`` uses pyiso8583's keys (``"t"``, ``"2"`` ...)."""
    mti = fields["t"]
    pan = fields["2"]
    common = (
        f"{len(pan):02d}{pan}{fields['3']}{fields['4']}{fields['7']}"
        f"{fields['11']}{fields['12']}{fields['13']}{fields['37']}"
    )
    tail = f"{fields['41']}{fields['49']}"
    if mti == "0200":
        text = f"0200{_BITMAP_0200}{common}{tail}"
    elif mti == "0210":
        auth = fields.get("38")
        if auth is None:
            text = f"0210{_BITMAP_0210_DECLINED}{common}{fields['39']}{tail}"
        else:
            text = f"0210{_BITMAP_0210_APPROVED}{common}{auth}{fields['39']}{tail}"
    elif mti == "0420":
        de95 = fields.get("95")
        secondary = _SECONDARY_0420 if de95 is None else _SECONDARY_0420_PARTIAL
        text = (
            f"0420{_BITMAP_0420}{secondary}{common}{fields['38']}{fields['39']}{tail}"
            f"{fields['90']}{de95 or ''}"
        )
    else:
        raise ValueError(f"the switch log holds 0200, 0210 and 0420 messages, not {mti!r}")
    return text.encode("ascii")


def pack_with_pyiso8583(fields: dict[str, str]) -> bytes:
    """Encode with pyiso8583 itself (the reference for :func:`pack`)."""
    raw, _ = iso8583.encode(dict(fields), default_ascii)
    return bytes(raw)


def decode(message: bytes) -> dict[str, Any]:
    """Decode one message with pyiso8583's ``default_ascii`` spec."""
    decoded, _ = iso8583.decode(message, default_ascii)
    return dict(decoded)


def de90(original_stan: str, original_de7: str) -> str:
    """Original data elements: MTI 0200, STAN, DE7, acquirer and forwarder IDs."""
    return f"0200{original_stan}{original_de7}{ACQUIRER_ID}{FORWARDER_ID}"


def de95(actual_minor: int) -> str:
    """Replacement amounts of a partial reversal: actual, actual settlement, two zero fees."""
    return f"{actual_minor:012d}{actual_minor:012d}C00000000C00000000"


def frame(message: bytes) -> bytes:
    """A log record: 2-byte big-endian length, then the message."""
    return len(message).to_bytes(2, "big") + message


def read_records(data: bytes) -> list[bytes]:
    """Split a log file into its messages; a truncated tail raises ValueError."""
    messages = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ValueError(f"truncated length prefix at byte {offset}")
        length = int.from_bytes(data[offset : offset + 2], "big")
        end = offset + 2 + length
        if end > len(data):
            raise ValueError(f"record at byte {offset} runs past the end of the log")
        messages.append(data[offset + 2 : end])
        offset = end
    return messages
