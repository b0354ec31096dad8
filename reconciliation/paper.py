"""Parser for the OCR-transcribed paper journal (``paper/<TID>_<YYYYMMDD>.txt``).

The roll holds the receipt copy of each transaction, blocks separated by an
empty line, pages headed ``--- PAGE n ---`` (exact). Everything else is OCR
output: look-alike characters swapped (``0``/``O``, ``1``/``l``/``I``,
``5``/``S``, ``8``/``B``), characters dropped, doubled or followed by a stray
space, and lines merged, so a block boundary can vanish.

This module cuts the text into blocks (page markers removed; a block also ends
when it already holds a receipt's two asterisk markers) and reads from each
block every number that could be a STAN (6 digits), an RRN (12) or a time,
after undoing the look-alikes. It does not decide which transaction a block
is: :mod:`reconciliation.paper_match` does, knowing what to expect.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import polars as pl

from reconciliation.model import PaperBlock, PaperParse

if TYPE_CHECKING:  # NumPy is imported where _runs needs it: without the compiled module
    import numpy as np

try:
    from reconciliation._speedups import paper_events as _compiled_events
    from reconciliation._speedups import paper_readings as _compiled_readings
    from reconciliation._speedups import paper_runs as _compiled_runs
except ImportError:  # built without a C compiler: the Python, NumPy and Polars versions below
    _compiled_events = None  # type: ignore[assignment]
    _compiled_readings = None  # type: ignore[assignment]
    _compiled_runs = None  # type: ignore[assignment]

PAGE_MARKER = re.compile(rb"--- PAGE \d+ ---")
_PAGE_LINE = re.compile(rb"^[ \t]*--- PAGE \d+ ---[ \t\r]*\n", re.M)
_STRUCTURE = re.compile(
    rb"^(?:(?P<blank>[ \t\r]*\n)|(?P<page>[ \t]*--- PAGE \d+ ---[ \t\r]*\n)"
    rb"|(?P<marker>[^\n]*\*\*[^\n]*\n))",
    re.M,
)
_LOOKALIKES = bytes.maketrans(b"OoDQlIi|SsBZ", b"000011115582")


def _marker_count(line: bytes) -> int:
    """Asterisk markers on a line (two when an END and a START were merged)."""
    stars = line.count(b"*")
    if stars < 8:
        return 0
    if stars >= 55:
        return 2
    if len(line) - stars > 12:
        letters = len(line.translate(None, _NOT_LETTERS))
        if letters > 12:  # a marker merged with a field line
            return 1
        upper = line.upper().replace(b" ", b"")
        if b"START" in upper and b"END" in upper:
            return 2
    return 1


_NOT_LETTERS = bytes(value for value in range(256) if not chr(value).isalpha() or value > 127)
# a time (colons, perhaps doubled, perhaps a stray space) or 5+ digits with single stray spaces
_READING_PATTERN = r"\d\d:+ ?\d\d:+ ?\d\d|\d(?:\d| \d){4,}\*?"
_TOKEN = re.compile(_READING_PATTERN.encode())


def candidates(normal: bytes) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Every STAN-like, RRN-like and time-like reading of a block's text.

    ``normal`` is the block's text with the look-alikes already undone
    (``text.translate(LOOKALIKES)``). Returns ``(numbers, rrns, times)``:
    ``numbers`` holds every digit run of 5-7 digits (a STAN with at most one
    digit dropped or doubled) that is not a card number's BIN, ``rrns`` every
    run of 11-13 digits, ``times`` every ``HHMMSS`` reading. A single stray
    space inside a number is ignored; two spaces end it.
    """
    numbers: list[str] = []
    rrns: list[str] = []
    times: list[str] = []
    for token in _TOKEN.findall(normal):
        if token[2] == 58 or token[3] == 58:  # ":": a time
            times.append(token.translate(None, b": ").decode())
        elif token[-1] != 42:  # "*": the BIN of a masked card number
            if 32 in token:
                token = token.replace(b" ", b"")
            size = len(token)
            if size <= 7:
                numbers.append(token.decode())
            elif 11 <= size <= 13:
                rrns.append(token.decode())
    return tuple(numbers), tuple(rrns), tuple(times)


def _all_candidates(
    texts: list[bytes],
) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
    """:func:`candidates` of many blocks at once: the tokens are found by Polars
    (Rust's regex engine, several times quicker here than a scan per block),
    then sorted into numbers, RRNs and times exactly as :func:`candidates` does."""
    if not texts:
        return []
    found = (
        pl.Series(values=[text.decode("latin-1") for text in texts], dtype=pl.Utf8)
        .str.extract_all(_READING_PATTERN)
        .to_list()
    )
    readings: list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = []
    for tokens in found:
        numbers: list[str] = []
        rrns: list[str] = []
        times: list[str] = []
        for token in tokens or ():
            if token[2] == ":" or token[3] == ":":  # a time
                times.append(token.replace(":", "").replace(" ", ""))
            elif token[-1] != "*":  # not the BIN of a masked card number
                if " " in token:
                    token = token.replace(" ", "")
                size = len(token)
                if size <= 7:
                    numbers.append(token)
                elif 11 <= size <= 13:
                    rrns.append(token)
        readings.append((tuple(numbers), tuple(rrns), tuple(times)))
    return readings


def _blocks(normal: bytes, spans: list[Span]) -> list[PaperBlock]:
    """A block for every span, with the :func:`candidates` of its text; compiled where
    the package was built with its C module (``reconciliation/csrc/``)."""
    if _compiled_readings is not None:
        return _compiled_readings(normal, spans, PaperBlock)
    readings = _all_candidates([normal[start:end] for _, _, start, end in spans])
    return [
        PaperBlock(position, first, last, start, end, *found)
        for position, ((first, last, start, end), found) in enumerate(
            zip(spans, readings, strict=True)
        )
    ]


LOOKALIKES = _LOOKALIKES


def block_text(raw: bytes) -> str:
    """A block's bytes as text for a report, page markers removed."""
    text = _PAGE_LINE.sub(b"", raw if raw.endswith(b"\n") else raw + b"\n")
    return text.rstrip(b"\n").decode("ascii", "backslashreplace")


def block_lines(raw: bytes, first_line: int) -> list[tuple[int, bytes]]:
    """The numbered lines of a block's bytes, page-marker lines left out."""
    numbered: list[tuple[int, bytes]] = []
    for offset, line in enumerate(raw.rstrip(b"\n").split(b"\n")):
        if not PAGE_MARKER.fullmatch(line.strip()):
            numbered.append((first_line + offset, line))
    return numbered


class _Lines:
    """Line numbers of offsets asked for in increasing order (counted incrementally)."""

    __slots__ = ("at", "buffer", "counted")

    def __init__(self, buffer: bytes) -> None:
        self.buffer = buffer
        self.at = 1  # line number at offset ``counted``
        self.counted = 0

    def of(self, offset: int) -> int:
        self.at += self.buffer.count(b"\n", self.counted, offset)
        self.counted = offset
        return self.at


Span = tuple[int, int, int, int]  # first line, last line, start, end


def _by_events(buffer: bytes, low: int, high: int, spans: list[Span], lines: _Lines) -> int:
    """The structure state machine over ``buffer[low:high]`` (whole lines, starting
    after an empty line or at the start); returns the structural lines it saw.
    Compiled where the package was built with ``reconciliation/csrc/``."""
    if _compiled_events is not None:
        structural, found = _compiled_events(buffer, low, high, lines.of(low))
        spans.extend(found)
        return structural
    count = buffer.count
    structural = 0
    block_start = -1  # offset of the block's first line, -1 when none is open
    page_lines = 0  # page-marker lines inside the open block
    markers = 0

    def close(end: int) -> None:
        nonlocal block_start, page_lines, markers
        if block_start >= 0:
            inside = count(b"\n", block_start, end)
            if inside > page_lines:
                first = lines.of(block_start)
                spans.append((first, first + inside - 1, block_start, end))
        block_start, page_lines, markers = -1, 0, 0

    position = low  # end of the last line handled
    for match in _STRUCTURE.finditer(buffer, low, high):
        offset, end = match.span()
        kind = match.lastgroup
        if offset < position or (kind == "marker" and count(b"*", offset, end) < 8):
            continue  # a line already handled, or "**" in a card number: block text
        if block_start < 0 and offset > position:
            block_start = position
        if kind == "blank":
            structural += 1
            close(offset)
        elif kind == "page":
            structural += 1
            if block_start < 0:
                block_start = offset
            page_lines += 1
        else:
            found = _marker_count(buffer[offset:end])
            if found and markers >= 2:
                close(offset)
            if block_start < 0:
                block_start = offset
            markers += found
        position = end
    if position < high and block_start < 0:
        block_start = position
    close(high)
    return structural


# lines of spaces or tabs only: blank to the parser, so empty lines alone do not cut blocks;
# searched for from the newline before them, which the regex engine looks for quickly
_SPACE_LINE_FIRST = re.compile(rb"[ \t\r]+\n")
_SPACE_LINE = re.compile(rb"\n[ \t\r]+\n")


def _has_space_line(buffer: bytes) -> bool:
    """Whether a line holds only spaces, tabs or carriage returns."""
    return _SPACE_LINE_FIRST.match(buffer) is not None or _SPACE_LINE.search(buffer) is not None


def _line_markers(buffer: bytes, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Asterisk markers on each line (:func:`_marker_count`), vectorised.

    A line counts only with eight asterisks or more, two of them adjacent.
    Sixty-odd asterisks are two markers; a line with at most twelve other
    characters is one. Anything else (a marker merged with text) is read by
    :func:`_marker_count` itself; marker lines repeat, so each text once.
    """
    import numpy as np

    star = np.frombuffer(buffer, dtype=np.uint8) == 42
    size = len(starts)
    # per line: the sum from its first byte to the next line's (its newline is no "*")
    stars = np.add.reduceat(star, starts, dtype=np.int64)
    pair = np.zeros(len(star), dtype=bool)  # "**" starting here
    np.logical_and(star[:-1], star[1:], out=pair[:-1])
    pairs = np.add.reduceat(pair, starts, dtype=np.int64)
    length = ends - starts + 1  # with the newline, as _marker_count sees the line
    candidate = (stars >= 8) & (pairs > 0)
    markers = np.zeros(size, dtype=np.int64)
    markers[candidate & (stars >= 55)] = 2
    markers[candidate & (stars < 55) & (length - stars <= 12)] = 1
    mixed = np.flatnonzero(candidate & (stars < 55) & (length - stars > 12))
    if len(mixed):
        known: dict[bytes, int] = {}
        for index, start, end in zip(
            mixed.tolist(), starts[mixed].tolist(), ends[mixed].tolist(), strict=True
        ):
            line = buffer[start : end + 1]
            found = known.get(line)
            if found is None:
                found = known[line] = _marker_count(line)
            markers[index] = found
    return markers


def _page_lines(buffer: bytes, starts: np.ndarray) -> list[int]:
    """Indexes of the page-marker lines (``starts``: offset of each line)."""
    import numpy as np

    seen: list[int] = []
    find = buffer.find
    at = find(b"--- PAGE")
    while at >= 0:
        seen.append(at)
        at = find(b"--- PAGE", at + 8)
    candidates = np.unique(np.searchsorted(starts, seen, side="right") - 1).tolist()
    match = _PAGE_LINE.match
    return [
        line
        for line, start in zip(candidates, starts[candidates].tolist(), strict=True)
        if match(buffer, start)
    ]


Runs = tuple[int, list[Span], list[tuple[int, int, int]], int]


def _by_runs(buffer: bytes, runs: Runs, spans: list[Span], lines: _Lines) -> int:
    """The same blocks as :func:`_by_events` for a text whose blank lines are all
    empty, from its ``runs`` (:func:`_runs`, compiled where built): each run of
    non-empty lines is one block unless it holds more than two receipts' markers
    (a lost boundary); only such a run goes through the state machine, which cuts
    it."""
    structural, found, lost, _ = runs
    if not lost:
        spans.extend(found)
        return structural
    cut: list[Span] = []
    for start, end, _ in lost:
        structural += _by_events(buffer, start, end, cut, lines)
    spans.extend(sorted(found + cut, key=lambda span: span[2]))
    return structural


def _runs(buffer: bytes) -> Runs | None:
    """The runs of non-empty lines of ``buffer`` (which ends with a newline), with
    NumPy over the whole text: the structural lines outside runs with a lost
    boundary (empty lines, page lines), a span for each run that is one block,
    ``(start, end, lines)`` of each run holding more than two receipts' markers,
    and the number of lines. ``None`` if a line holds only spaces, tabs or
    carriage returns: such a line is blank to the parser without being empty, so
    the runs would not be its blocks."""
    if _has_space_line(buffer):
        return None
    import numpy as np  # here alone: the compiled paper_runs spares a run NumPy's start-up

    ends = np.flatnonzero(np.frombuffer(buffer, dtype=np.uint8) == 10)
    total = len(ends)
    if not total:
        return 0, [], [], 0
    starts = np.empty(total, dtype=np.int64)
    starts[0] = 0
    starts[1:] = ends[:-1] + 1
    filled = (ends > starts).astype(np.int8)
    edges = np.diff(np.concatenate(([0], filled, [0])))
    first = np.flatnonzero(edges == 1)  # index of a run's first line
    stop = np.flatnonzero(edges == -1)  # one past its last line
    if not len(first):
        return total, [], [], total
    markers = np.add.reduceat(_line_markers(buffer, starts, ends), first)
    if b"--- PAGE" in buffer:
        page = np.zeros(total, dtype=np.int64)
        page[_page_lines(buffer, starts)] = 1
        pages = np.add.reduceat(page, first)
    else:
        pages = np.zeros(len(first), dtype=np.int64)
    inside = stop - first
    run_start = starts[first]
    run_end = ends[stop - 1] + 1
    lost = markers > 2
    plain = ~lost & (inside > pages)
    structural = total - int(inside.sum()) + int(pages[~lost].sum())
    found = list(
        zip(
            (first[plain] + 1).tolist(),
            (first[plain] + inside[plain]).tolist(),
            run_start[plain].tolist(),
            run_end[plain].tolist(),
            strict=True,
        )
    )
    lost_runs = list(
        zip(run_start[lost].tolist(), run_end[lost].tolist(), inside[lost].tolist(), strict=True)
    )
    return structural, found, lost_runs, total


def parse_paper(buffer: bytes, *, source: str, terminal_id: str, business_date: str) -> PaperParse:
    """Cut a paper journal into blocks. Never raises on content.

    Line accounting: page markers and empty lines are structural; every other
    line belongs to exactly one block. Whether a block's lines count as used
    is decided when blocks are matched to transactions.
    """
    return _parse(buffer, source, terminal_id, business_date, runs=True)


def _parse(
    buffer: bytes, source: str, terminal_id: str, business_date: str, *, runs: bool
) -> PaperParse:
    size = len(buffer)
    if b"\r" in buffer:
        buffer = buffer.replace(b"\r\n", b"\n")
    if buffer and not buffer.endswith(b"\n"):
        buffer += b"\n"
    spans: list[Span] = []
    lines = _Lines(buffer)
    found = (_runs if _compiled_runs is None else _compiled_runs)(buffer) if runs else None
    if found is not None:
        structural = _by_runs(buffer, found, spans, lines)
        count = found[3]
    else:
        structural = _by_events(buffer, 0, len(buffer), spans, lines)
        count = buffer.count(b"\n")
    blocks = _blocks(buffer.translate(_LOOKALIKES), spans)
    return PaperParse(
        source,
        terminal_id,
        business_date,
        blocks,
        [],
        count,
        structural,
        size,
    )
