"""Electronic journals of either dialect: detect the dialect, parse, account for lines.

``parse_ej`` is what the rest of the package calls. It normalises line ends,
tries the dialect's whole-buffer fast path and falls back to its tolerant
line-by-line parser, so a file is read at full speed when it is clean and line
by line only when it needs to be.
"""

from __future__ import annotations

import re
from types import ModuleType

from reconciliation import ej_ndc, ej_procash
from reconciliation.ej_assembly import Scanned
from reconciliation.model import EjEvent, EjParse, EjTransaction, SkippedLine

try:
    from reconciliation._speedups import ej_tiles as _compiled_tiles
except ImportError:  # built without a C compiler: the Python loop of tiles()
    _compiled_tiles = None  # type: ignore[assignment]

DIALECTS = ("ndc", "procash")


def detect_dialect(buffer: bytes) -> str:
    """``"ndc"`` or ``"procash"`` from the first recognisable marker in the text (its
    first 64 KiB, looked at in its first 4 KiB before, where a journal's markers
    usually are); without any, from its headers."""
    find = buffer.find
    for head in (4096, 65536):  # the buffer is not copied
        found = [
            (at, dialect) for marker, dialect in _MARKERS if (at := find(marker, 0, head)) >= 0
        ]
        if found:
            return min(found)[1]
    count = buffer.count
    return "procash" if count(b"ATM ID", 0, 65536) > count(b"TERMINAL  :", 0, 65536) else "ndc"


# the markers that tell the dialects apart
_MARKERS = (
    (b"-> TRANSACTION START", "procash"),
    (b"CASH COUNTERS", "procash"),
    (b"\n" + b"*" * 31 + b"\n", "procash"),
    (b"Card Inserted (", "ndc"),
    (b" *****START*****", "ndc"),
)


def normalise(buffer: bytes) -> bytes:
    """LF line ends and a final newline: byte offsets in the records refer to this."""
    if b"\r" in buffer:
        buffer = buffer.replace(b"\r\n", b"\n")
    if buffer and not buffer.endswith(b"\n"):
        buffer += b"\n"
    return buffer


def _shift_txn(txn: EjTransaction, offset: int, lines: int) -> EjTransaction:
    return txn._replace(
        start=txn.start + offset,
        end=txn.end + offset,
        line=txn.line + lines,
        last_line=txn.last_line + lines,
    )


def _shift_event(event: EjEvent, offset: int, lines: int) -> EjEvent:
    return event._replace(
        start=event.start + offset, end=event.end + offset, line=event.line + lines
    )


Tiles = tuple[list[EjTransaction], list[tuple[int, int, re.Match[bytes]]], int]


def tiles(items: list[Scanned], size: int) -> Tiles | None:
    """Of a scan's items, when they tile a buffer of ``size`` bytes without a gap:
    the records the compiled reader made, in order, every other item as ``(line,
    lines, found)`` with the number of its first line, and the number of lines;
    otherwise ``None``. Compiled where the package was built with
    ``reconciliation/csrc/``."""
    if _compiled_tiles is not None:
        return _compiled_tiles(items, EjTransaction, size)
    records: list[EjTransaction] = []
    others: list[tuple[int, int, re.Match[bytes]]] = []
    position, line = 0, 1
    for start, end, lines, found in items:
        if start != position:
            return None
        if type(found) is EjTransaction:
            records.append(found)
        else:
            others.append((line, lines, found))
        line += lines
        position = end
    if position != size:
        return None
    return records, others, line - 1


Tiled = tuple[list[EjTransaction], list[EjEvent], list[SkippedLine], int, bool]


def _tiled(module: ModuleType, buffer: bytes, items: list[Scanned]) -> Tiled | None:
    """The common case of :func:`_tile`, without a loop over the blocks in Python: the
    scan tiles the buffer, every block was read by the compiled reader and every other
    piece is a device line or printout that converts. ``None`` otherwise."""
    found = tiles(items, len(buffer))
    if found is None:
        return None
    transactions, others, lines = found
    events: list[EjEvent] = []
    convert = module.convert
    for line, lines_in, match in others:
        if match.group("stan") is not None:  # a block left to the dialect's Python reader
            return None
        if not convert(match, buffer, line, lines_in, transactions, events):
            return None
    return transactions, events, [], lines, True


def _tile(module: ModuleType, buffer: bytes, source: str) -> Tiled:
    """Fast scan where the text is well formed, the state machine where it is not.

    Matches of the whole-buffer scan are used as they come; a stretch they do
    not cover (a truncated block, a garbage line, a block with a line missing)
    is widened to the next complete transaction block, so that any device
    line caught up in it is seen in context, and parsed line by line.
    """
    items = module.scan(buffer)
    quick = _tiled(module, buffer, items)
    if quick is not None:
        return quick
    transactions: list[EjTransaction] = []
    events: list[EjEvent] = []
    skipped: list[SkippedLine] = []
    count = buffer.count
    convert = module.convert
    position, line = 0, 1  # line number at ``position``
    region: tuple[int, int] | None = None  # (offset, line) where a slow stretch starts
    slow = False

    def flush(end: int) -> None:
        nonlocal region, slow
        assert region is not None
        start, first_line = region
        region = None
        slow = True
        found, seen, bad, _ = module.parse_slow(buffer[start:end], source)
        shift = first_line - 1
        transactions.extend(_shift_txn(txn, start, shift) for txn in found)
        events.extend(_shift_event(event, start, shift) for event in seen)
        skipped.extend(item._replace(line=item.line + shift) for item in bad)

    previous_block: tuple[int, int, int, int] | None = None  # offset, line, records before

    for start, end, lines_in, found in items:
        if start != position:
            if region is None:
                if previous_block is not None:
                    # the stretch may continue the block just read (a status record after
                    # a stray line): read that block again, line by line, with it
                    block_start, block_line, txn_count, event_count = previous_block
                    del transactions[txn_count:], events[event_count:]
                    region = (block_start, block_line)
                else:
                    region = (position, line)
            line += count(b"\n", position, start)
        record = found if isinstance(found, EjTransaction) else None
        is_block = record is not None or found.group("stan") is not None
        if region is not None and not is_block:
            pass  # a device line inside a stretch being parsed line by line
        else:
            if region is not None:
                flush(start)
            before = len(transactions), len(events)
            if record is not None:
                transactions.append(record)  # a block the compiled reader read
            elif not convert(found, buffer, line, lines_in, transactions, events):
                del transactions[before[0] :], events[before[1] :]
                region = (start, line)
            if is_block and region is None:  # a block read: a stray line after it rereads it
                previous_block = (start, line, before[0], before[1])
                line += lines_in
                position = end
                continue
        previous_block = None
        line += lines_in
        position = end
    if position != len(buffer) and region is None:
        if previous_block is not None:
            block_start, block_line, txn_count, event_count = previous_block
            del transactions[txn_count:], events[event_count:]
            region = (block_start, block_line)
        else:
            region = (position, line)
    if region is not None:
        flush(len(buffer))
        line = count(b"\n") + 1
    if slow:
        transactions.sort(key=lambda txn: txn.start)
        events.sort(key=lambda event: event.start)
    return transactions, events, skipped, line - 1, not slow


def parse_ej(
    buffer: bytes,
    *,
    source: str,
    terminal_id: str,
    business_date: str,
    dialect: str | None = None,
) -> EjParse:
    """Parse one EJ (one terminal, one business day). Never raises on content."""
    size = len(buffer)
    buffer = normalise(buffer)
    chosen = dialect or detect_dialect(buffer)
    module = ej_ndc if chosen == "ndc" else ej_procash
    transactions, events, skipped, lines, fast = _tile(module, buffer, source)
    return EjParse(
        source,
        terminal_id,
        business_date,
        chosen,
        transactions,
        events,
        skipped,
        lines,
        size,
        fast,
    )
