"""Host files into one Polars frame: parsed in pieces, checked against each other.

A switch log covers every terminal of a day, so it is the one large file of a
run. It is cut on record (ISO 8583) or line (CSV) boundaries into pieces that
parse independently, two at a time on threads of the run's process (the
compiled ISO 8583 pass and Polars' CSV reader release the GIL); each piece
becomes an Arrow-backed frame.

Where a day has an ISO 8583 log, its messages are used and that day's CSV
export is compared with them (responses and reversals by terminal, day, STAN,
type, code and amount); a difference is reported as an observation. A day with
only a CSV uses the CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl

from reconciliation.classify import HOST_SCHEMA, host_frame
from reconciliation.errors import SourceUnreadable
from reconciliation.host_csv import line_chunks, parse_csv_frame
from reconciliation.host_iso import parse_iso_frame, record_chunks
from reconciliation.model import SkippedLine, SourceAccount
from reconciliation.sources import Source


@dataclass(frozen=True, slots=True)
class HostPiece:
    """A byte range of a host file, with the number of its first record or line."""

    source: Source
    start: int
    end: int
    first: int


@dataclass(slots=True)
class PieceResult:
    source: str
    kind: str
    business_date: str
    frame: pl.DataFrame
    skipped: list[SkippedLine]
    units: int
    size: int
    unreadable: str = ""


def pieces(source: Source, chunk: int) -> list[HostPiece]:
    """Cut a host file into pieces; an unreadable file gives one piece that fails."""
    size = source.size()
    try:
        if source.kind == "iso":
            ranges = record_chunks(source.read_raw, size, chunk)
        else:
            ranges = line_chunks(source.read_raw, size, chunk)
    except SourceUnreadable:
        ranges = [(0, size, 1)]
    return [HostPiece(source, start, end, first) for start, end, first in ranges]


def parse_piece(piece: HostPiece) -> PieceResult:
    source = piece.source
    try:
        data = source.read_raw(piece.start, piece.end)
    except SourceUnreadable as exc:
        return PieceResult(
            source.name,
            source.kind,
            source.business_date,
            host_frame([]),
            [],
            0,
            0,
            exc.message,
        )
    if source.kind == "iso":
        frame, skipped, units = parse_iso_frame(
            data,
            source=source.name,
            file_date=date.fromisoformat(source.business_date),
            first_record=piece.first,
            base_offset=piece.start,
        )
        return PieceResult(
            source.name, source.kind, source.business_date, frame, skipped, units, len(data)
        )
    frame, skipped, units = parse_csv_frame(data, source=source.name, first_line=piece.first)
    return PieceResult(
        source.name, source.kind, source.business_date, frame, skipped, units, len(data)
    )


def combine(
    results: list[PieceResult],
) -> tuple[
    pl.DataFrame, list[SourceAccount], list[SkippedLine], list[str], Callable[[], list[str]]
]:
    """One frame of the messages to use, per-file accounts, skipped lines, observations,
    and the comparison of the CSV exports with the ISO 8583 logs of the same days.

    The comparison is returned to be called later (it only adds observations), so
    that a caller may first hand the frame to those waiting for it.
    """
    accounts: dict[str, SourceAccount] = {}
    skipped: list[SkippedLine] = []
    observations: list[str] = []
    iso_frames: list[pl.DataFrame] = []
    csv_frames: list[pl.DataFrame] = []
    for result in results:
        if result.unreadable:
            observations.append(f"{result.source}: not read ({result.unreadable})")
            continue
        account = accounts.get(result.source)
        if account is None:
            account = accounts[result.source] = SourceAccount(
                result.source, result.kind, "", result.business_date, 0, 0, 0, 0
            )
        account.size += result.size
        account.units_total += result.units
        account.units_skipped += len(result.skipped)
        account.records += result.frame.height
        skipped.extend(result.skipped)
        (iso_frames if result.kind == "iso" else csv_frames).append(result.frame)
    empty = pl.DataFrame(schema=HOST_SCHEMA)
    iso = pl.concat(iso_frames) if iso_frames else empty
    csv = pl.concat(csv_frames) if csv_frames else empty
    iso_days = iso.get_column("business_date").unique().to_list()
    in_iso_days = pl.col("business_date").is_in(iso_days)
    used = pl.concat([iso, csv.filter(~in_iso_days)]) if csv.height else iso

    def compare() -> list[str]:
        # the compared columns only, before any filter copies them
        covered = csv.select(_COMPARED).filter(in_iso_days)
        if not covered.height:
            return []
        return _compare(iso.select(_COMPARED).filter(pl.col("mti") != "0200"), covered)

    return used, sorted(accounts.values(), key=lambda a: a.source), skipped, observations, compare


# what the CSV export and the ISO 8583 log must agree on, message by message
_COMPARED = ["terminal_id", "business_date", "stan", "mti", "response_code", "amount_minor"]


def _compare(iso: pl.DataFrame, csv: pl.DataFrame) -> list[str]:
    """Observations on the messages of ``iso`` and ``csv`` (both of the columns
    ``_COMPARED``) that are not on both sides as many times."""
    key = _COMPARED
    if _same_rows(iso, csv):
        return []  # the usual case, found without grouping
    # one grouping of both sides, each row marked with its side
    both = pl.concat(
        [iso.with_columns(side=pl.lit(True)), csv.with_columns(side=pl.lit(False))]
    )
    counts = both.group_by(key).agg(
        iso=pl.col("side").sum().cast(pl.Int64), csv=(~pl.col("side")).sum().cast(pl.Int64)
    )
    differing = counts.filter(pl.col("iso") != pl.col("csv")).sort(key)
    notes: list[str] = []
    for row in differing.head(20).iter_rows(named=True):
        notes.append(
            f"host {row['terminal_id']} {row['business_date']} STAN {row['stan']} "
            f"{row['mti']} code {row['response_code']} amount {row['amount_minor']}: "
            f"{row['iso']} in the ISO 8583 log, {row['csv']} in the CSV export"
        )
    if differing.height > 20:
        notes.append(f"{differing.height - 20} more differences between ISO 8583 log and CSV")
    return notes


def _same_rows(first: pl.DataFrame, second: pl.DataFrame) -> bool:
    """Whether two frames hold the same rows, in any order, as far as a 64-bit hash
    of each row tells: equal sorted hashes. Different rows whose hashes would make
    up for each other are the only way to be wrong (odds of about 2^-64 per
    differing row), and a ``False`` only costs the exact comparison."""
    if first.height != second.height:
        return False
    hashes = [
        frame.select(pl.struct(pl.all()).hash()).to_series().sort() for frame in (first, second)
    ]
    return hashes[0].equals(hashes[1])
