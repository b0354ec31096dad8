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

from reconciliation.model import PaperBlock, PaperParse, SkippedLine

PAGE_MARKER = re.compile(rb"--- PAGE \d+ ---")
_LOOKALIKES = bytes.maketrans(b"OoDQlIi|SsBZ", b"000011115582")
_DIGIT_RUN = re.compile(rb"\d(?:\d| (?=\d))*")
_TIME = re.compile(rb"(\d\d):+ ?(\d\d):+ ?(\d\d)")


def _is_marker(line: bytes) -> bool:
    return line.count(b"*") >= 8 and b"**" in line


def _marker_count(line: bytes) -> int:
    """Asterisk markers on a line (two when an END and a START were merged)."""
    if not _is_marker(line):
        return 0
    runs = [run for run in re.split(rb"[^*]+", line.strip()) if len(run) >= 3]
    letters = re.sub(rb"[^A-Za-z]", b"", line)
    if len(letters) > 12:  # a marker merged with a field line
        return 1
    if b"START" in line.upper().replace(b" ", b"") and b"END" in line.upper().replace(b" ", b""):
        return 2
    stars = sum(len(run) for run in runs)
    return 2 if stars >= 55 else 1


def candidates(text: bytes) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Every STAN-like, RRN-like and time-like reading of a block's text.

    Returns ``(numbers, rrns, times)``: ``numbers`` holds every digit run of
    5-7 digits (a STAN with at most one digit dropped or doubled), ``rrns`` every
    run of 11-13 digits, ``times`` every ``HHMMSS`` reading.
    """
    normal = text.translate(_LOOKALIKES)
    numbers: list[str] = []
    rrns: list[str] = []
    for run in _DIGIT_RUN.findall(normal):
        digits = run.replace(b" ", b"")
        size = len(digits)
        # a card number's BIN is followed by asterisks, not a STAN
        if 5 <= size <= 7:
            numbers.append(digits.decode())
        elif 11 <= size <= 13:
            rrns.append(digits.decode())
    for masked in re.findall(rb"(\d{5,7})\*", normal):
        value = masked.decode()
        if value in numbers:
            numbers.remove(value)
    times = tuple(
        (hours + minutes + secs).decode() for hours, minutes, secs in _TIME.findall(normal)
    )
    return tuple(numbers), tuple(rrns), times


def parse_paper(
    buffer: bytes, *, source: str, terminal_id: str, business_date: str
) -> PaperParse:
    """Cut a paper journal into blocks. Never raises on content.

    Line accounting: page markers and empty lines are structural; every other
    line belongs to exactly one block. Whether a block's lines count as used
    is decided when blocks are matched to transactions.
    """
    blocks: list[PaperBlock] = []
    skipped: list[SkippedLine] = []
    structural = 0
    lines: list[tuple[int, int, int, bytes]] = []  # number, start, end, text
    markers = 0

    def flush() -> None:
        nonlocal lines, markers
        if lines:
            text = b"\n".join(line[3] for line in lines)
            numbers, rrns, times = candidates(text)
            blocks.append(
                PaperBlock(
                    len(blocks),
                    lines[0][0],
                    lines[-1][0],
                    lines[0][1],
                    lines[-1][2],
                    numbers,
                    rrns,
                    times,
                    text.decode("ascii", "backslashreplace"),
                )
            )
        lines = []
        markers = 0

    offset = 0
    number = 0
    length = len(buffer)
    while offset < length:
        newline = buffer.find(b"\n", offset)
        end = length if newline == -1 else newline
        raw = buffer[offset:end].rstrip(b"\r")
        start = offset
        offset = end + 1
        number += 1
        if PAGE_MARKER.fullmatch(raw.strip()):
            structural += 1
            continue
        if not raw.strip():
            structural += 1
            flush()
            continue
        count = _marker_count(raw)
        if count and markers >= 2:
            flush()
        lines.append((number, start, end, raw))
        markers += count
    flush()
    return PaperParse(
        source, terminal_id, business_date, blocks, skipped, number, structural, length
    )
