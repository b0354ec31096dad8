"""Small conversions shared by the parsers and reports: amounts, times, note lists,
line numbers, escaping many values at once.

Amounts printed as major units with two decimals (``200.00``) become integer
minor units without going through floats.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from reconciliation.model import Notes

_AMOUNT = re.compile(rb"^(\d+)\.(\d\d)$")


def minor_units(text: bytes | str) -> int:
    """``b"200.00"`` -> ``20000``. Raises ``ValueError`` on anything else."""
    raw = text.encode("ascii") if isinstance(text, str) else text
    match = _AMOUNT.match(raw.strip())
    if match is None:
        raise ValueError(f"not an amount with two decimals: {raw!r}")
    return int(match.group(1)) * 100 + int(match.group(2))


def seconds(hhmmss: str) -> int:
    """``"08:39:56"`` -> seconds since midnight; -1 when empty or malformed."""
    if len(hhmmss) != 8 or hhmmss[2] != ":" or hhmmss[5] != ":":
        return -1
    try:
        return int(hhmmss[0:2]) * 3600 + int(hhmmss[3:5]) * 60 + int(hhmmss[6:8])
    except ValueError:
        return -1


def notes_csv(text: bytes) -> Notes:
    """``b"0,0,3,0"`` -> ``(0, 0, 3, 0)``; raises ``ValueError`` unless four counts."""
    parts = text.split(b",")
    if len(parts) != 4:
        raise ValueError(f"expected four note counts: {text!r}")
    return (int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]))


def count_lines(buffer: bytes) -> int:
    """Number of lines, counting a last line without its newline."""
    if not buffer:
        return 0
    return buffer.count(b"\n") + (0 if buffer.endswith(b"\n") else 1)


def printable(raw: bytes, limit: int = 200) -> str:
    """A line as text for a report: ASCII, control bytes escaped, shortened."""
    text = raw[:limit].decode("ascii", "backslashreplace")
    return text + ("..." if len(raw) > limit else "")


def escape_each(
    values: list[str], escape: Callable[[str], str], one: Callable[[str], str] | None = None
) -> list[str]:
    """``[one(value) for value in values]``, escaped as one text: the values are
    joined by NUL, ``escape`` runs once over the whole and the result is split
    again. A report escapes a hundred thousand values and more, and the calls per
    value were most of its time.

    ``escape`` must change characters one at a time and leave NUL as it is (as
    HTML and XML escaping do); ``one`` (``escape`` when not given) is used value
    by value when a value holds a NUL itself.
    """
    joined = "\0".join(values)
    if not values or joined.count("\0") != len(values) - 1:
        return [(one or escape)(value) for value in values]
    return escape(joined).split("\0")
