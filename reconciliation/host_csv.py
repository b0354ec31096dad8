"""Parser for the switch's settlement export (``host/<YYYYMMDD>.csv``).

Comma-separated, header line, no quoting, every column read as text. One
pattern validates a whole row, so a row with a wrong column count, a
non-numeric amount or a bad date is reported with its line number and reason
instead of being half-read; the header line is checked and counted as used.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from reconciliation.model import HostMessage, HostParse, SkippedLine
from reconciliation.textutil import printable

HEADER = (
    b"terminal_id,business_date,local_time,stan,rrn,pan_masked,processing_code,amount_minor,"
    b"currency,response_code,auth_code,msg_type,original_stan,actual_amount_minor"
)
_ROW = re.compile(
    rb"^(?P<tid>[^,\n]{1,16}),(?P<date>\d{4}-\d\d-\d\d),(?P<time>\d\d:\d\d:\d\d),(?P<stan>\d{6}),"
    rb"(?P<rrn>\d{12}),(?P<pan>[^,\n]*),(?P<pc>\d{6}),(?P<amount>\d{1,12}),(?P<cur>\d{3}),"
    rb"(?P<rc>\w\w),(?P<auth>\w{0,6}),(?P<mti>0210|0420),(?P<orig>\d{6})?,(?P<actual>\d{1,12})?\r?\n",
    re.M,
)


def _reason(line: bytes) -> str:
    parts = line.split(b",")
    if len(parts) != 14:
        return f"expected 14 columns, found {len(parts)}"
    names = HEADER.split(b",")
    checks = (
        (1, rb"\d{4}-\d\d-\d\d"),
        (2, rb"\d\d:\d\d:\d\d"),
        (3, rb"\d{6}"),
        (4, rb"\d{12}"),
        (7, rb"\d{1,12}"),
        (11, rb"0210|0420"),
    )
    for index, pattern in checks:
        if re.fullmatch(pattern, parts[index]) is None:
            return f"column {names[index].decode()} has an invalid value"
    return "row does not follow the export's layout"


def line_chunks(
    read: Callable[[int, int], bytes], size: int, chunk: int
) -> list[tuple[int, int, int]]:
    """Cut an export into pieces of about ``chunk`` bytes on line boundaries.

    Returns ``(start, end, number of the first line)`` triples.
    """
    pieces: list[tuple[int, int, int]] = []
    start, first_line = 0, 1
    while start < size:
        cut = min(start + chunk, size)
        if cut < size:
            tail = read(cut, min(cut + 65536, size))
            newline = tail.find(b"\n")
            cut = size if newline == -1 else cut + newline + 1
        pieces.append((start, cut, first_line))
        first_line += _count_newlines(read, start, cut)
        start = cut
    return pieces or [(0, 0, 1)]


def _count_newlines(read: Callable[[int, int], bytes], start: int, end: int) -> int:
    total = 0
    position = start
    while position < end:
        upper = min(position + (16 << 20), end)
        total += read(position, upper).count(b"\n")
        position = upper
    return total


def parse_csv(buffer: bytes, *, source: str, first_line: int = 1) -> HostParse:
    """Parse a CSV export, or the piece of it that starts at line ``first_line``
    (only the first piece has the header). Never raises on content."""
    messages: list[HostMessage] = []
    skipped: list[SkippedLine] = []
    if buffer and not buffer.endswith(b"\n"):
        buffer += b"\n"
    if not buffer:
        return HostParse(source, "csv", messages, skipped, 0, 0)
    if first_line == 1:
        first_end = buffer.find(b"\n")
        header = buffer[:first_end].rstrip(b"\r")
        line = 1
        position = first_end + 1
        if header != HEADER:
            skipped.append(
                SkippedLine(source, 1, "header line is not the export's", printable(header))
            )
            if _ROW.match(buffer, 0):
                position, line = 0, 0
    else:
        position, line = 0, first_line - 1

    def skip_region(start: int, end: int) -> None:
        nonlocal line
        for raw in buffer[start:end].split(b"\n")[:-1]:
            line += 1
            text = raw.rstrip(b"\r")
            reason = "empty line" if not text.strip() else _reason(text)
            skipped.append(SkippedLine(source, line, reason, printable(text)))

    for match in _ROW.finditer(buffer, position):
        if match.start() != position:
            skip_region(position, match.start())
        position = match.end()
        line += 1
        g = match.group
        mti = g("mti").decode()
        actual = g("actual")
        messages.append(
            HostMessage(
                source,
                line,
                mti,
                g("tid").decode(),
                g("date").decode(),
                g("stan").decode(),
                g("rrn").decode(),
                g("time").decode(),
                "",
                g("pc").decode(),
                int(g("amount")),
                g("rc").decode(),
                g("auth").decode(),
                g("pan").decode(),
                (g("orig") or b"").decode(),
                int(actual) if actual is not None else (0 if mti == "0420" else -1),
            )
        )
    if position < len(buffer):
        skip_region(position, len(buffer))
    return HostParse(source, "csv", messages, skipped, line - first_line + 1, len(buffer))
