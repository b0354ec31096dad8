"""Cash-unit records on the wire: the CEN/XFS 3.x ``WFSCDMCASHUNIT`` fields, fixed layout.

A cash unit is the dict the device reports (field names as in the counters
format, ``shared/formats/README.md``); on the line it is 51 bytes, or 55 when it
carries the ``physical_count`` an engineer took at a cassette exchange::

    offset  size  field
    0       2     usNumber           u16
    2       2     usType             u16
    4       5     cUnitID            ASCII, padded with 0x00 when shorter than 5
    9       3     cCurrencyID        ASCII, exactly 3 characters
    12      4     ulValues           u32
    16      4     ulInitialCount     u32
    20      4     ulCount            u32
    24      4     ulRejectCount      u32
    28      4     ulMinimum          u32
    32      4     ulMaximum          u32
    36      2     usStatus           u16
    38      4     ulDispensedCount   u32
    42      4     ulPresentedCount   u32
    46      4     ulRetractedCount   u32
    50      1     flags              bit 0: physical_count follows; other bits 0
    51      4     physical_count     u32, only when flag bit 0 is set

Integers are big-endian. Decoding gives back a dict with exactly these keys, in
this order, so ``decode(encode(units)) == units``.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence

from device_agent.protocol.errors import EncodeError, PayloadError

FIELDS: tuple[tuple[str, str], ...] = (
    ("usNumber", "H"),
    ("usType", "H"),
    ("cUnitID", "5s"),
    ("cCurrencyID", "3s"),
    ("ulValues", "I"),
    ("ulInitialCount", "I"),
    ("ulCount", "I"),
    ("ulRejectCount", "I"),
    ("ulMinimum", "I"),
    ("ulMaximum", "I"),
    ("usStatus", "H"),
    ("ulDispensedCount", "I"),
    ("ulPresentedCount", "I"),
    ("ulRetractedCount", "I"),
)
OPTIONAL = "physical_count"
UNIT = struct.Struct(">" + "".join(code for _, code in FIELDS) + "B")
PHYSICAL = struct.Struct(">I")
FLAG_PHYSICAL = 0x01
MAX_UNITS = 32
_LIMITS = {"H": 0xFFFF, "I": 0xFFFFFFFF}
_NAMES = frozenset(name for name, _ in FIELDS) | {OPTIONAL}


def _ascii(value: object, field: str, *, min_size: int, max_size: int) -> bytes:
    if not isinstance(value, str) or not value.isascii() or "\x00" in value:
        raise EncodeError(f"must be an ASCII string, got {value!r}", field=field)
    if not min_size <= len(value) <= max_size:
        size = f"{min_size}" if min_size == max_size else f"{min_size} to {max_size}"
        raise EncodeError(f"must be {size} characters, got {value!r}", field=field)
    return value.encode("ascii")


def _integer(value: object, field: str, code: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise EncodeError(f"must be an integer, got {value!r}", field=field)
    if not 0 <= value <= _LIMITS[code]:
        raise EncodeError(f"must be 0..{_LIMITS[code]}, got {value}", field=field)
    return value


def encode_unit(unit: Mapping[str, object], index: int = 0) -> bytes:
    """The wire form of one cash unit; :class:`EncodeError` names a missing or bad field."""
    where = f"cash_units[{index}]"
    if not isinstance(unit, Mapping):
        raise EncodeError(f"must be a mapping, got {type(unit).__name__}", field=where)
    unknown = sorted(str(key) for key in unit if key not in _NAMES)
    if unknown:
        raise EncodeError(f"unknown field(s) {', '.join(unknown)}", field=where)
    values: list[object] = []
    for name, code in FIELDS:
        field = f"{where}.{name}"
        if name not in unit:
            raise EncodeError("missing", field=field)
        value = unit[name]
        if name == "cUnitID":
            values.append(_ascii(value, field, min_size=1, max_size=5))
        elif name == "cCurrencyID":
            values.append(_ascii(value, field, min_size=3, max_size=3))
        else:
            values.append(_integer(value, field, code))
    physical = unit.get(OPTIONAL)
    flags = FLAG_PHYSICAL if OPTIONAL in unit else 0
    data = UNIT.pack(*values, flags)
    if flags:
        data += PHYSICAL.pack(_integer(physical, f"{where}.{OPTIONAL}", "I"))
    return data


def encode_units(units: Sequence[Mapping[str, object]]) -> bytes:
    """A count byte followed by each unit."""
    if isinstance(units, Mapping | str | bytes) or not isinstance(units, Sequence):
        raise EncodeError("must be a list of cash-unit dicts", field="cash_units")
    if len(units) > MAX_UNITS:
        raise EncodeError(f"{len(units)} units, at most {MAX_UNITS}", field="cash_units")
    return bytes([len(units)]) + b"".join(encode_unit(unit, i) for i, unit in enumerate(units))


def decode_units(data: bytes, offset: int = 0) -> list[dict[str, object]]:
    """The cash units in ``data[offset:]``, which must hold exactly them."""
    if offset >= len(data):
        raise PayloadError("cash units: the count byte is missing")
    count = data[offset]
    if count > MAX_UNITS:
        raise PayloadError(f"cash units: {count} units, at most {MAX_UNITS}")
    position = offset + 1
    units: list[dict[str, object]] = []
    for index in range(count):
        if position + UNIT.size > len(data):
            raise PayloadError(f"cash units: unit {index} is cut short")
        values = UNIT.unpack_from(data, position)
        position += UNIT.size
        unit: dict[str, object] = {}
        for (name, _), value in zip(FIELDS, values[:-1], strict=True):
            if name == "cUnitID":
                unit[name] = _decode_ascii(value.rstrip(b"\x00"), index, name, min_size=1)
            elif name == "cCurrencyID":
                unit[name] = _decode_ascii(value, index, name, min_size=3)
            else:
                unit[name] = value
        flags = values[-1]
        if flags & ~FLAG_PHYSICAL:
            raise PayloadError(f"cash units: unit {index} has reserved flag bits 0x{flags:02x}")
        if flags & FLAG_PHYSICAL:
            if position + PHYSICAL.size > len(data):
                raise PayloadError(f"cash units: unit {index} physical_count is cut short")
            (unit[OPTIONAL],) = PHYSICAL.unpack_from(data, position)
            position += PHYSICAL.size
        units.append(unit)
    if position != len(data):
        raise PayloadError(f"cash units: {len(data) - position} bytes after the last unit")
    return units


def _decode_ascii(raw: bytes, index: int, name: str, *, min_size: int) -> str:
    if len(raw) < min_size or 0 in raw or not raw.isascii():
        raise PayloadError(f"cash units: unit {index} {name} is not {min_size}+ ASCII characters")
    return raw.decode("ascii")
