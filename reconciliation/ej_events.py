"""Device and operator lines of both EJ dialects, mapped to one vocabulary.

NDC writes ``CASSETTE 2 LOW``, ProCash ``CASH UNIT 2 LOW``; both become
``("cassette_low", 2)``. Unknown event texts map to ``None`` and the parser
reports the line as skipped.
"""

from __future__ import annotations

import re

_UNIT_EVENT = re.compile(rb"^(?:CASSETTE|CASH UNIT) ([1-4]) (LOW|EMPTY|REMOVED|INSERTED)$")

_UNIT_CODES = {
    b"LOW": "cassette_low",
    b"EMPTY": "cassette_empty",
    b"REMOVED": "cassette_removed",
    b"INSERTED": "cassette_inserted",
}

_PLAIN: dict[bytes, str] = {
    b"SUPERVISOR MODE ENTRY": "supervisor_entry",
    b"SUPERVISOR MODE EXIT": "supervisor_exit",
    b"OPERATOR MODE ENTRY": "supervisor_entry",
    b"OPERATOR MODE EXIT": "supervisor_exit",
    b"COUNTERS BEFORE EXCHANGE": "counters_before",
    b"COUNTERS AFTER EXCHANGE": "counters_after",
    b"CASH COUNTERS BEFORE REPLENISHMENT": "counters_before",
    b"CASH COUNTERS AFTER REPLENISHMENT": "counters_after",
    b"POWER UP": "power_up",
    b"SYSTEM STARTUP": "power_up",
    b"JOURNAL PAPER OUT": "paper_out",
    b"JOURNAL PAPER REPLENISHED": "paper_in",
    b"JOURNAL PAPER LOADED": "paper_in",
}

_CACHE: dict[bytes, tuple[str, int] | None] = {}


def event_code(text: bytes) -> tuple[str, int] | None:
    """``b"CASSETTE 3 LOW"`` -> ``("cassette_low", 3)``; ``None`` if unknown."""
    cached = _CACHE.get(text, False)
    if cached is not False:
        return cached  # type: ignore[return-value]
    result: tuple[str, int] | None
    plain = _PLAIN.get(text)
    if plain is not None:
        result = (plain, 0)
    else:
        match = _UNIT_EVENT.match(text)
        result = None if match is None else (_UNIT_CODES[match.group(2)], int(match.group(1)))
    if len(_CACHE) < 4096:
        _CACHE[text] = result
    return result
