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

import mmap
import os
from array import array
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import polars as pl

from reconciliation.classify import HOST_SCHEMA, host_frame
from reconciliation.errors import SourceUnreadable
from reconciliation.host_csv import line_chunks, parse_csv_frame
from reconciliation.host_iso import (
    THIN_COLUMNS,
    collect_records,
    gather_records,
    in_record_order,
    locate_records,
    parse_iso_frame,
    parse_iso_parts,
    record_chunks,
)
from reconciliation.model import SkippedLine, SourceAccount
from reconciliation.sources import Source


@dataclass(frozen=True, slots=True)
class LogFile:
    """An ISO 8583 log on disk as the run found it when it cut it into pieces: what
    a worker process maps to take its batch's records from (:class:`RoutedRecords`)."""

    path: str
    size: int
    modified: int  # st_mtime_ns

    @classmethod
    def of(cls, source: Source) -> LogFile | None:
        """The log file of ``source``; ``None`` for bytes in memory, or where it
        cannot be looked at (its pieces then fail to read, as they would anyway)."""
        if source.kind != "iso" or source.path is None:
            return None
        try:
            stat = source.path.stat()
        except OSError:
            return None
        return cls(str(source.path), stat.st_size, stat.st_mtime_ns)

    def is_(self, stat: os.stat_result) -> bool:
        """Whether ``stat`` is of this file as the run found it (size and time)."""
        return (stat.st_size, stat.st_mtime_ns) == (self.size, self.modified)

    def collect(self, offsets: bytes, name: str) -> bytes:
        """The records at ``offsets`` (native int64) of the file, from this
        process's map of it (:func:`_mapped`). :class:`SourceUnreadable` where
        the file cannot be mapped, or is no longer the one the run located them in."""
        try:
            return collect_records(_mapped(self, name), offsets)
        except ValueError as exc:  # an offset that holds no whole record
            raise _changed(name, f" ({exc})") from exc


def _changed(name: str, detail: str = "") -> SourceUnreadable:
    """The error for the log ``name`` found other than the run located its records in."""
    return SourceUnreadable(f"{name} changed while the run read it{detail}")


# the logs this process has mapped, most recently used last: a worker takes the
# records of each of its batches from the same map
_MAPS: OrderedDict[LogFile, mmap.mmap] = OrderedDict()
_MAPS_KEPT = 8


def _mapped(file: LogFile, name: str) -> mmap.mmap:
    """This process's read-only map of ``file``, made once and kept for the batches
    that follow (at most ``_MAPS_KEPT`` files, the least recently used unmapped).

    Mapped rather than read: its pages are the system's file cache, which the
    run's processes share, with nothing zeroed or copied to make them."""
    found = _MAPS.get(file)
    try:
        if found is not None:
            # the file as the map sees it (one cut short would fault where its pages
            # were: SIGBUS), and the file now under its name
            if found.size() != file.size or not file.is_(os.stat(file.path)):
                raise _changed(name)
            _MAPS.move_to_end(file)
            return found
        with open(file.path, "rb") as handle:
            if not file.is_(os.fstat(handle.fileno())):
                raise _changed(name)
            found = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError) as exc:  # ValueError: an empty file, which maps nothing
        raise SourceUnreadable(f"cannot read {name}: {exc}") from exc
    _MAPS[file] = found
    while len(_MAPS) > _MAPS_KEPT:
        _MAPS.popitem(last=False)[1].close()
    return found


@dataclass(frozen=True, slots=True)
class HostPiece:
    """A byte range of a host file, with the number of its first record or line."""

    source: Source
    start: int
    end: int
    first: int
    file: LogFile | None = None  # an ISO 8583 log on disk


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
    # an ISO 8583 piece: its bytes, its first record's number and the messages its
    # columnar pass read (which ``route`` hands over as records, to be read again)
    data: bytes = b""
    first: int = 1
    start: int = 0  # the piece's first byte in its log
    file: LogFile | None = None  # the log on disk (None: bytes in memory)
    columnar: pl.DataFrame | None = None
    one_by_one: pl.DataFrame | None = None


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
    file = LogFile.of(source)
    return [HostPiece(source, start, end, first, file) for start, end, first in ranges]


def parse_piece(piece: HostPiece, *, thin: bool = False) -> PieceResult:
    """Read one piece. With ``thin``, its frame keeps only the columns
    ``THIN_COLUMNS`` of the records that the columnar pass read: what the run's
    process needs of the messages that its workers read again (:func:`route`)."""
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
        columnar, one_by_one, skipped, units = parse_iso_parts(
            data,
            source=source.name,
            file_date=date.fromisoformat(source.business_date),
            first_record=piece.first,
            base_offset=piece.start,
            thin=thin,
        )
        return PieceResult(
            source.name,
            source.kind,
            source.business_date,
            in_record_order(columnar, one_by_one),
            skipped,
            units,
            len(data),
            data=data,
            first=piece.first,
            start=piece.start,
            file=piece.file,
            columnar=columnar,
            one_by_one=one_by_one,
        )
    frame, skipped, units = parse_csv_frame(data, source=source.name, first_line=piece.first)
    return PieceResult(
        source.name, source.kind, source.business_date, frame, skipped, units, len(data)
    )


def combine(
    results: list[PieceResult], *, thin: bool = False
) -> tuple[
    pl.DataFrame, list[SourceAccount], list[SkippedLine], list[str], Callable[[], list[str]]
]:
    """One frame of the messages to use, per-file accounts, skipped lines, observations,
    and the comparison of the CSV exports with the ISO 8583 logs of the same days.
    With ``thin`` (pieces read so), the frame has the columns ``THIN_COLUMNS``.

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
    columns = list(THIN_COLUMNS if thin else HOST_SCHEMA)
    empty = pl.DataFrame(schema=HOST_SCHEMA).select(columns)
    iso = pl.concat(iso_frames) if iso_frames else empty
    csv = pl.concat([frame.select(columns) for frame in csv_frames]) if csv_frames else empty
    in_iso_days = pl.col("business_date").is_in(_days_with_a_log(iso_frames))
    used = pl.concat([iso, csv.filter(~in_iso_days)]) if csv.height else iso

    def compare() -> list[str]:
        # the compared columns only, before any filter copies them
        covered = csv.select(_COMPARED).filter(in_iso_days)
        if not covered.height:
            return []
        return _compare(iso.select(_COMPARED).filter(pl.col("mti") != "0200"), covered)

    return used, sorted(accounts.values(), key=lambda a: a.source), skipped, observations, compare


def _days_with_a_log(iso_frames: list[pl.DataFrame]) -> list[str]:
    """The business days of the messages of the ISO 8583 logs: the days whose CSV
    export is compared with them rather than used."""
    if not iso_frames:
        return []
    days = pl.concat([frame.select("business_date") for frame in iso_frames])
    return days.get_column("business_date").unique().to_list()


# what the CSV export and the ISO 8583 log must agree on, message by message
_COMPARED = ["terminal_id", "business_date", "stan", "mti", "response_code", "amount_minor"]


def _compare(iso: pl.DataFrame, csv: pl.DataFrame) -> list[str]:
    """Observations on the messages of ``iso`` and ``csv`` (both of the columns
    ``_COMPARED``) that are not on both sides as many times."""
    key = _COMPARED
    if _same_rows(iso, csv):
        return []  # the usual case, found without grouping
    # one grouping of both sides, each row marked with its side
    both = pl.concat([iso.with_columns(side=pl.lit(True)), csv.with_columns(side=pl.lit(False))])
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


# -- handing each batch its messages (a run with worker processes) ---------------------


@dataclass(frozen=True, slots=True)
class RoutedRecords:
    """Records of one ISO 8583 log for one batch, in the log's order, with their
    record numbers, to be read again where the batch runs: where they lie in the
    log's file (``data`` holds their offsets in ``file``), or, for a log held in
    memory (no ``file``), gathered whole (``data`` holds the records)."""

    rank: int  # the log's place among the run's host files (see ``route``)
    source: str
    business_date: str  # the log's date, which gives DE13 its year
    data: bytes  # native int64 offsets of the length prefixes in ``file``, or the records
    numbers: pl.Series  # Int64, one per record
    file: LogFile | None = None

    def frame(self) -> pl.DataFrame:
        records = self.data if self.file is None else self.file.collect(self.data, self.source)
        frame, skipped, _units = parse_iso_frame(
            records, source=self.source, file_date=date.fromisoformat(self.business_date)
        )
        # the columnar pass read each of them where the log was read first: other
        # records here are another file under the log's name
        if frame.height != self.numbers.len() or skipped:
            raise _changed(self.source)
        return frame.with_columns(
            self.numbers.gather(frame.get_column("seq") - 1).alias("seq"),
            _rank=pl.lit(self.rank, pl.Int32),
        )


@dataclass(frozen=True, slots=True)
class BatchHost:
    """The host messages of one batch, as the run's process hands them over: its
    ISO 8583 records to read, and the messages already read (decoded one by
    one, or from the CSV export of a day without a log) with their ``_rank``."""

    records: list[RoutedRecords]
    others: pl.DataFrame

    def frame(self) -> pl.DataFrame:
        """The batch's messages (``HOST_SCHEMA``) in the order of the run's host
        frame: by host file, then record or line number."""
        frames = [item.frame() for item in self.records]  # each log's, by rank
        if not self.others.height:
            return pl.concat(frames).drop("_rank") if frames else pl.DataFrame(schema=HOST_SCHEMA)
        frames.append(self.others)
        return pl.concat(frames).sort("_rank", "seq", maintain_order=True).drop("_rank")


def route(results: list[PieceResult], owner: dict[str, int], count: int) -> list[BatchHost]:
    """The messages of the pieces for ``count`` batches (``owner``: terminal ->
    batch), in the shape :func:`combine`'s frame has them (the ISO 8583 logs'
    messages, then those of the CSV exports of days without a log).

    The records that a piece's columnar pass read go to the batch's process to
    be read again, which took a fraction of what handing over their columns did
    (cutting the frame by batch, writing and reading it). From a log on disk they
    go as where they lie in it (:func:`~reconciliation.host_iso.locate_records`),
    eight bytes a record, and the batch's process takes them from its map of the
    file; this process then copies none of them. From a log in memory they go
    gathered whole (:func:`~reconciliation.host_iso.gather_records`). The other
    messages go as rows. A terminal in no batch gets nothing.
    """
    readable = [result for result in results if not result.unreadable]
    ranks: dict[str, int] = {}
    for kind in ("iso", "csv"):
        for result in readable:
            if result.kind == kind:
                ranks.setdefault(result.source, len(ranks))
    # per batch, per log: the records (or their offsets) of each piece, and their numbers
    gathered: list[dict[int, tuple[list[bytes], list[pl.Series]]]] = [{} for _ in range(count)]
    others: list[pl.DataFrame] = []
    iso = [result for result in readable if result.kind == "iso"]
    iso_days = _days_with_a_log([result.frame for result in iso])
    batch = pl.col("terminal_id").replace_strict(owner, default=None, return_dtype=pl.Int32)
    for result in iso:
        rank = ranks[result.source]
        columnar, one_by_one = result.columnar, result.one_by_one
        if one_by_one is not None and one_by_one.height:
            others.append(one_by_one.with_columns(_rank=pl.lit(rank, pl.Int32)))
        if columnar is None or not columnar.height:
            continue
        owned = columnar.select("seq", _batch=batch).filter(pl.col("_batch").is_not_null())
        owners = (
            pl.repeat(-1, result.units, dtype=pl.Int32, eager=True)
            .scatter(owned.get_column("seq") - result.first, owned.get_column("_batch"))
            .to_list()
        )
        if result.file is not None:
            groups = locate_records(result.data, array("i", owners), count, result.start)
        else:
            groups = gather_records(result.data, array("i", owners), count)
        for (index,), numbers in owned.partition_by(
            "_batch", as_dict=True, include_key=False, maintain_order=True
        ).items():
            pieces_of_log = gathered[index].setdefault(rank, ([], []))
            pieces_of_log[0].append(groups[index])
            pieces_of_log[1].append(numbers.get_column("seq"))
    logs = {ranks[result.source]: result for result in iso}
    records = [
        [
            RoutedRecords(
                rank,
                logs[rank].source,
                logs[rank].business_date,
                b"".join(data),
                pl.concat(numbers),
                logs[rank].file,
            )
            for rank, (data, numbers) in sorted(by_log.items())
        ]
        for by_log in gathered
    ]
    for result in readable:
        if result.kind == "csv":
            days = result.frame.filter(~pl.col("business_date").is_in(iso_days))
            if days.height:
                others.append(days.with_columns(_rank=pl.lit(ranks[result.source], pl.Int32)))
    empty = pl.DataFrame(schema={**HOST_SCHEMA, "_rank": pl.Int32})
    parts = (
        pl.concat(others)
        .with_columns(_batch=batch)
        .partition_by("_batch", as_dict=True, include_key=False, maintain_order=True)
        if others
        else {}
    )
    return [BatchHost(records[index], parts.get((index,), empty)) for index in range(count)]
