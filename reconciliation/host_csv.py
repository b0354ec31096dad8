"""Parser for the switch's settlement export (``host/<YYYYMMDD>.csv``).

Comma-separated, header line, no quoting, every column read as text. One
pattern validates a whole row, so a row with a wrong column count, a
non-numeric amount or a bad date is reported with its line number and reason
instead of being half-read; the header line is checked and counted as used.

:func:`parse_csv_frame` is the hot path for a large export: Polars reads the
text, the same row pattern validates every row at once, and only a piece with
a row that does not fit is read again row by row by :func:`parse_csv`, which
words the reasons.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import polars as pl

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


_NAMES = HEADER.decode().split(",")
# the row pattern, column by column (``None``: any text, may be empty)
_COLUMN_CHECKS: dict[str, tuple[str, bool]] = {  # name: (pattern, may be empty)
    "terminal_id": (r"^.{1,16}$", False),
    "business_date": (r"^\d{4}-\d\d-\d\d$", False),
    "local_time": (r"^\d\d:\d\d:\d\d$", False),
    "stan": (r"^\d{6}$", False),
    "rrn": (r"^\d{12}$", False),
    "processing_code": (r"^\d{6}$", False),
    "amount_minor": (r"^\d{1,12}$", False),
    "currency": (r"^\d{3}$", False),
    "response_code": (r"^\w\w$", False),
    "auth_code": (r"^\w{0,6}$", True),
    "msg_type": (r"^(?:0210|0420)$", False),
    "original_stan": (r"^\d{6}$", True),
    "actual_amount_minor": (r"^\d{1,12}$", True),
}


def parse_csv_frame(
    buffer: bytes, *, source: str, first_line: int = 1
) -> tuple[pl.DataFrame, list[SkippedLine], int]:
    """The messages of :func:`parse_csv` as a Polars frame (``HOST_SCHEMA``),
    with the skipped lines and the number of lines read."""
    from reconciliation.classify import HOST_SCHEMA, host_frame

    lines = buffer.count(b"\n") + (1 if buffer and not buffer.endswith(b"\n") else 0)
    header = first_line == 1
    frame: pl.DataFrame | None = None
    if lines and b"\r" not in buffer and (not header or buffer.startswith(HEADER + b"\n")):
        try:
            raw = pl.read_csv(
                buffer,
                has_header=header,
                new_columns=None if header else _NAMES,
                schema=dict.fromkeys(_NAMES, pl.String),
                quote_char=None,
            )
        except pl.exceptions.PolarsError:
            raw = None
        if raw is not None and raw.height == lines - int(header):
            checks = [
                pl.col(name).str.contains(pattern).fill_null(empty_ok)
                for name, (pattern, empty_ok) in _COLUMN_CHECKS.items()
            ]
            if all(raw.select(check.all() for check in checks).row(0)):
                frame = _frame(raw, source, 2 if header else first_line)
    if frame is None:
        parsed = parse_csv(buffer, source=source, first_line=first_line)
        return host_frame(parsed.messages), parsed.skipped, parsed.units_total
    assert frame.columns == list(HOST_SCHEMA)
    return frame, [], lines


def _frame(raw: pl.DataFrame, source: str, first_seq: int) -> pl.DataFrame:
    mti = pl.col("msg_type")
    actual = pl.col("actual_amount_minor")
    return raw.select(
        pl.lit(source).alias("source"),
        (pl.int_range(pl.len(), dtype=pl.Int64) + first_seq).alias("seq"),
        mti.alias("mti"),
        pl.col("terminal_id"),
        pl.col("business_date"),
        pl.col("stan"),
        pl.col("rrn"),
        pl.col("local_time").alias("time"),
        pl.lit("").alias("sent"),
        pl.col("processing_code"),
        pl.col("amount_minor").cast(pl.Int64),
        pl.col("response_code"),
        pl.col("auth_code").fill_null(""),
        pl.col("pan_masked").fill_null(""),
        pl.col("original_stan").fill_null(""),
        pl.when(actual.is_not_null())
        .then(actual.cast(pl.Int64))
        .when(mti == "0420")
        .then(pl.lit(0, pl.Int64))
        .otherwise(pl.lit(-1, pl.Int64))
        .alias("actual_minor"),
    )
