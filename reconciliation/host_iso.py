"""Parser for the switch's ISO 8583 message log (``host/<YYYYMMDD>.iso``).

Records are a 2-byte big-endian length and an ISO 8583:1987 ASCII message in
pyiso8583's ``default_ascii`` layout. pyiso8583 is the reference decoder; the
hot path slices messages whose bitmap it has already seen at offsets computed
once per (bitmap, PAN length) from the same spec, and hands anything unusual
to ``iso8583.decode`` so that its validation and error messages apply. A record
that cannot be decoded is reported with its record number and byte offset, and
the run goes on; a truncated last record is reported too.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import iso8583
import polars as pl
from iso8583.specs import default_ascii

from reconciliation.model import HostMessage, HostParse, SkippedLine

try:
    from reconciliation._speedups import iso_collect as _compiled_collect
    from reconciliation._speedups import iso_columns as _compiled_columns
    from reconciliation._speedups import iso_gather as _compiled_gather
    from reconciliation._speedups import iso_locate as _compiled_locate
    from reconciliation._speedups import iso_walk as _compiled_walk
except ImportError:  # built without a C compiler: the Python loops below
    _compiled_columns = None  # type: ignore[assignment]
    _compiled_collect = None  # type: ignore[assignment]
    _compiled_gather = None  # type: ignore[assignment]
    _compiled_locate = None  # type: ignore[assignment]
    _compiled_walk = None  # type: ignore[assignment]

_WANTED = ("2", "3", "4", "7", "11", "12", "13", "37", "38", "39", "41", "49", "90", "95")
_Layout = tuple[tuple[str, int, int], ...]
_LAYOUTS: dict[tuple[bytes, int], _Layout | None] = {}
_DATES: dict[tuple[str, date], str] = {}
MTIS = frozenset(("0200", "0210", "0420"))
_STRIPPED = " \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f"  # what str.strip() removes, of ASCII


def _layout(bitmaps: bytes, pan_length: int) -> _Layout | None:
    """Field offsets for a message with these bitmaps, or ``None`` if not fixed."""
    try:
        bits = int(bitmaps, 16)
    except ValueError:
        return None
    width = len(bitmaps) * 4
    present = [field for field in range(1, width + 1) if bits >> (width - field) & 1]
    offset = 4 + len(bitmaps)
    layout: list[tuple[str, int, int]] = []
    for field in present:
        if field == 1:
            continue
        spec: dict[str, Any] | None = default_ascii.get(str(field))
        if spec is None:
            return None
        len_type = int(spec["len_type"])
        if len_type == 0:
            size = int(spec["max_len"])
        elif field == 2 and len_type == 2:
            offset += 2
            size = pan_length
        else:
            return None
        layout.append((str(field), offset, offset + size))
        offset += size
    layout.append(("", offset, offset))
    return tuple(layout)


def _fast_fields(message: bytes) -> dict[str, str] | None:
    if len(message) < 22:
        return None
    secondary = message[4:5] in b"89ABCDEF" and message[4:5] != b""
    bitmaps = message[4:36] if secondary else message[4:20]
    try:
        pan_length = int(message[len(bitmaps) + 4 : len(bitmaps) + 6])
    except ValueError:
        return None
    key = (bitmaps, pan_length)
    layout = _LAYOUTS.get(key, ())
    if layout == ():
        layout = _layout(bitmaps, pan_length)
        if len(_LAYOUTS) < 1024:
            _LAYOUTS[key] = layout
    if layout is None or layout[-1][1] != len(message):
        return None
    text = message.decode("ascii")
    fields = {"t": text[:4]}
    for name, start, end in layout[:-1]:
        fields[name] = text[start:end]
    for name in ("3", "4", "7", "11", "12", "13"):
        value = fields.get(name)
        if value is not None and not value.isdigit():
            return None
    return fields


_Slices = tuple[tuple[int, int] | None, ...]
_SLICES: dict[tuple[bytes, int], _Slices | None] = {}
_SLICE_FIELDS = ("2", "3", "4", "7", "11", "12", "13", "37", "38", "39", "41", "90", "95")
_MTI_OK = frozenset(("0200", "0210", "0420"))


def _slices(bitmaps: bytes, pan_length: int, size: int) -> _Slices | None:
    key = (bitmaps, pan_length)
    found = _SLICES.get(key, ())
    if found == ():
        layout = _layout(bitmaps, pan_length)
        if layout is None:
            found = None
        else:
            where = {name: (start, end) for name, start, end in layout[:-1]}
            found = (*(where.get(name) for name in _SLICE_FIELDS), (layout[-1][1], 0))
            if any(where.get(name) is None for name in ("3", "4", "11", "12", "13", "41")):
                found = None
        if len(_SLICES) < 1024:
            _SLICES[key] = found
    if found is None or found[-1] is None or found[-1][0] != size:
        return None
    return found


def _fast_message(message: bytes, source: str, seq: int, year_hint: date) -> HostMessage | None:
    """The hot path: slice a message whose layout is known; ``None`` to fall back."""
    size = len(message)
    if size < 22:
        return None
    secondary = message[4] in b"89ABCDEF"
    bitmaps = message[4:36] if secondary else message[4:20]
    digits = message[len(bitmaps) + 4 : len(bitmaps) + 6]
    if not digits.isdigit():
        return None
    where = _slices(bitmaps, int(digits), size)
    if where is None:
        return None
    try:
        text = message.decode("ascii")
    except UnicodeDecodeError:
        return None
    mti = text[:4]
    if mti not in _MTI_OK:
        return None
    values = [text[w[0] : w[1]] if w is not None else "" for w in where[:-1]]
    pan, de3, de4, de7, de11, de12, de13, de37, de38, de39, de41, de90, de95 = values
    if not (de3 + de4 + de7 + de11 + de12 + de13).isdigit():
        return None
    business_date = _DATES.get((de13, year_hint))
    if business_date is None:
        return None
    actual = -1
    if mti == "0420":
        if de95 and not de95[:12].isdigit():
            return None
        actual = int(de95[:12]) if de95 else 0
    return HostMessage(
        source,
        seq,
        mti,
        de41.strip(),
        business_date,
        de11,
        de37,
        f"{de12[:2]}:{de12[2:4]}:{de12[4:]}",
        de7,
        de3,
        int(de4),
        de39,
        de38,
        f"{pan[:6]}******{pan[-4:]}" if len(pan) >= 10 else pan,
        de90[4:10] if mti == "0420" else "",
        actual,
    )


def _reference_fields(message: bytes) -> dict[str, str]:
    decoded, _ = iso8583.decode(bytearray(message), default_ascii)
    return {key: value for key, value in decoded.items() if isinstance(value, str)}


def business_year(month_day: str, year_hint: date) -> int:
    """The year of a DE13 ``MMDD`` nearest to the file's own date."""
    month, day = int(month_day[:2]), int(month_day[2:])
    best = year_hint.year
    best_distance = None
    for year in (year_hint.year - 1, year_hint.year, year_hint.year + 1):
        try:
            distance = abs((date(year, month, day) - year_hint).days)
        except ValueError:
            continue
        if best_distance is None or distance < best_distance:
            best, best_distance = year, distance
    return best


def _message(fields: dict[str, str], source: str, seq: int, year_hint: date) -> HostMessage:
    """Build a record; raises ``KeyError``/``ValueError`` naming a bad field."""
    mti = fields["t"]
    if mti not in MTIS:
        raise ValueError(f"unexpected MTI {mti}")
    for required in ("3", "4", "11", "12", "13", "41"):
        if required not in fields:
            raise ValueError(f"DE{required} missing")
    de12, de13 = fields["12"], fields["13"]
    if len(de12) != 6 or len(de13) != 4 or not (de12 + de13).isdigit():
        raise ValueError("DE12/DE13 not numeric time and date")
    business_date = _DATES.get((de13, year_hint))
    if business_date is None:
        year = business_year(de13, year_hint)
        business_date = f"{year:04d}-{de13[:2]}-{de13[2:]}"
        date.fromisoformat(business_date)
        _DATES[(de13, year_hint)] = business_date
    pan = fields.get("2", "")
    de90 = fields.get("90", "")
    de95 = fields.get("95", "")
    actual = -1
    if mti == "0420":
        actual = int(de95[:12]) if de95 else 0
    return HostMessage(
        source,
        seq,
        mti,
        fields["41"].strip(),
        business_date,
        fields["11"],
        fields.get("37", ""),
        f"{de12[:2]}:{de12[2:4]}:{de12[4:]}",
        fields.get("7", ""),
        fields["3"],
        int(fields["4"]),
        fields.get("39", ""),
        fields.get("38", ""),
        f"{pan[:6]}******{pan[-4:]}" if len(pan) >= 10 else pan,
        de90[4:10] if mti == "0420" else "",
        actual,
    )


def record_chunks(
    read: Callable[[int, int], bytes], size: int, chunk: int
) -> list[tuple[int, int, int]]:
    """Cut a log into pieces of about ``chunk`` bytes on record boundaries.

    Returns ``(start, end, first record number)`` triples; ``read(start, end)``
    gives bytes of the log. A truncated tail stays in the last piece, whose
    parser reports it.
    """
    pieces: list[tuple[int, int, int]] = []
    start, start_record = 0, 1
    record, offset = 1, 0
    window_start, window = 0, b""
    while offset < size:
        if offset + 2 > window_start + len(window):
            window_start = offset
            window = read(offset, min(offset + (8 << 20), size))
            if len(window) < 2:
                break
        # to the first record ending at least ``chunk`` bytes into the piece
        local, walked, zero = _walk(window, offset - window_start, start + chunk - window_start)
        offset = window_start + local
        record += walked
        if zero:
            break
        if offset - start >= chunk and offset < size:
            pieces.append((start, offset, start_record))
            start, start_record = offset, record
    pieces.append((start, size, start_record))
    return pieces


def _walk(buffer: bytes, offset: int, target: int) -> tuple[int, int, bool]:
    """Records from ``offset`` until one ends at or past ``target``, a record's length
    prefix lies beyond ``buffer``, or a record declares zero bytes: the offset reached,
    the records walked and whether a zero length stopped the walk. Compiled where the
    package was built with ``reconciliation/csrc/``."""
    if _compiled_walk is not None:
        return _compiled_walk(buffer, offset, target)
    walked, length = 0, len(buffer)
    while offset < target and offset + 2 <= length:
        size = buffer[offset] << 8 | buffer[offset + 1]
        if size == 0:
            return offset, walked, True
        offset += 2 + size
        walked += 1
    return offset, walked, False


def parse_iso(
    buffer: bytes, *, source: str, file_date: date, first_record: int = 1, base_offset: int = 0
) -> HostParse:
    """Parse one ISO 8583 log (or the piece of it that starts at byte
    ``base_offset`` with record ``first_record``). Never raises on content."""
    messages: list[HostMessage] = []
    skipped: list[SkippedLine] = []
    offset = 0
    record = first_record - 1
    length = len(buffer)
    while offset < length:
        record += 1
        if offset + 2 > length:
            skipped.append(SkippedLine(source, record, _unusable(buffer, offset, base_offset), ""))
            break
        size = buffer[offset] << 8 | buffer[offset + 1]
        body_start = offset + 2
        if size == 0 or body_start + size > length:
            skipped.append(SkippedLine(source, record, _unusable(buffer, offset, base_offset), ""))
            break
        message = buffer[body_start : body_start + size]
        offset = body_start + size
        try:
            fast = _fast_message(message, source, record, file_date)
            if fast is not None:
                messages.append(fast)
                continue
            fields = _fast_fields(message)
            if fields is None:
                fields = _reference_fields(message)
            messages.append(_message(fields, source, record, file_date))
        except (iso8583.DecodeError, ValueError, KeyError, UnicodeDecodeError) as exc:
            skipped.append(
                SkippedLine(
                    source,
                    record,
                    f"record at byte {base_offset + body_start - 2} not decodable: {exc}",
                    message[:60].decode("ascii", "backslashreplace"),
                )
            )
    return HostParse(source, "iso", messages, skipped, record - first_record + 1, length)


# --- columnar hot path --------------------------------------------------------------

_FRAME_FIELDS = ("2", "3", "4", "7", "11", "12", "13", "37", "38", "39", "41", "90", "95")


def parse_iso_frame(
    buffer: bytes, *, source: str, file_date: date, first_record: int = 1, base_offset: int = 0
) -> tuple[pl.DataFrame, list[SkippedLine], int]:
    """The same records as :func:`parse_iso`, as a Polars frame (``HOST_SCHEMA``),
    in record order; see :func:`parse_iso_parts`."""
    columnar, one_by_one, skipped, units = parse_iso_parts(
        buffer,
        source=source,
        file_date=file_date,
        first_record=first_record,
        base_offset=base_offset,
    )
    return in_record_order(columnar, one_by_one), skipped, units


def in_record_order(columnar: pl.DataFrame, one_by_one: pl.DataFrame) -> pl.DataFrame:
    """The two frames of :func:`parse_iso_parts` as one, in record order, of the
    first one's columns."""
    if not one_by_one.height:
        return columnar
    one_by_one = one_by_one.select(columnar.columns)
    if not columnar.height:
        return one_by_one
    return pl.concat([columnar, one_by_one]).sort("seq")


def parse_iso_parts(
    buffer: bytes,
    *,
    source: str,
    file_date: date,
    first_record: int = 1,
    base_offset: int = 0,
    thin: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame, list[SkippedLine], int]:
    """The records of :func:`parse_iso` in two frames (``HOST_SCHEMA``, each in
    record order): those read by the columnar pass, then those read one by one;
    the skipped records and the number of records met. With ``thin``, the first
    frame has only the columns ``THIN_COLUMNS``, which is what the run's
    process keeps of a log whose records its workers read again.

    Where the package was built with ``reconciliation/csrc/``, one compiled pass
    splits the records and cuts the fields of every record whose layout the spec
    fixes into columns that Polars takes without a Python object per value;
    otherwise :func:`_frame_by_layout` slices them in Polars per layout. Anything
    the layout does not explain (another length, a non-digit where a number
    belongs, an unknown MTI) is decoded one by one by :func:`parse_iso`'s path,
    which also words the reasons for what it cannot use. A record the columnar
    pass reads is read by it again wherever it is (:func:`gather_records`).
    """
    from reconciliation.classify import HOST_SCHEMA, host_frame

    wanted = list(THIN_COLUMNS if thin else HOST_SCHEMA)
    if _compiled_columns is not None:
        columns, odd, count, stop = _compiled_columns(
            buffer, _field_lengths(), _date_table(file_date), first_record, thin
        )
        names = THIN_COLUMNS if thin else _COLUMNS
        fast = pl.DataFrame(
            [pl.Series(column).alias(name) for name, column in zip(names, columns, strict=True)]
        )
        frames = [fast.select(pl.lit(source).alias("source"), pl.all()).select(wanted)]
    else:
        frames, odd, count, stop = _frame_by_layout(buffer, source, file_date, first_record)
        frames = [frame.select(wanted) for frame in frames]
    skipped: list[SkippedLine] = []
    record, length = first_record - 1 + count, len(buffer)
    if stop < length:  # the split stopped at record ``record``
        skipped.append(SkippedLine(source, record, _unusable(buffer, stop, base_offset), ""))
    units = record - first_record + 1
    messages: list[HostMessage] = []
    for index, at, message in sorted(odd):
        one = parse_iso(
            len(message).to_bytes(2, "big") + message,
            source=source,
            file_date=file_date,
            first_record=first_record + index,
            base_offset=base_offset + at,
        )
        messages.extend(one.messages)
        skipped.extend(one.skipped)
    empty = pl.DataFrame(schema=HOST_SCHEMA)
    columnar = frames[0] if frames else empty.select(wanted)
    skipped.sort(key=lambda item: item.line)
    return columnar, host_frame(messages) if messages else empty, skipped, units


def gather_records(buffer: bytes, owners: Any, count: int) -> list[bytes]:
    """The records of a log (or piece of one) sorted into ``count`` groups:
    ``owners`` is a buffer of native int32, one per record, the group of each
    (from 0; any other value leaves the record out). Each group's records come
    whole (length prefix and message) in the log's order, so that
    :func:`parse_iso_parts` reads them as it read them here. Compiled where the
    package was built with ``reconciliation/csrc/``."""
    if _compiled_gather is not None:
        return _compiled_gather(buffer, owners, count)
    groups = [bytearray() for _ in range(count)]
    each = memoryview(owners).cast("B").cast("i")
    for owner, (start, end) in zip(each, _whole_records(buffer), strict=False):
        if 0 <= owner < count:
            groups[owner] += buffer[start:end]
    return [bytes(group) for group in groups]


def locate_records(buffer: bytes, owners: Any, count: int, base: int) -> list[bytes]:
    """Where the records of a log (or of a piece of one starting at byte ``base``)
    lie, sorted into ``count`` groups as :func:`gather_records` sorts them: each
    group's offsets in the log of its records' length prefixes, in the log's
    order, as native int64 values, for :func:`collect_records` to take the
    records from the log itself. Compiled where the package was built with
    ``reconciliation/csrc/``."""
    if _compiled_locate is not None:
        return _compiled_locate(buffer, owners, count, base)
    groups = [array("q") for _ in range(count)]
    each = memoryview(owners).cast("B").cast("i")
    for owner, (start, _end) in zip(each, _whole_records(buffer), strict=False):
        if 0 <= owner < count:
            groups[owner].append(base + start)
    return [group.tobytes() for group in groups]


def collect_records(buffer: Any, offsets: Any) -> bytes:
    """The records whose length prefixes lie at ``offsets`` (native int64) of
    ``buffer`` (a log, or a map of its file), whole and in that order: what
    :func:`parse_iso_parts` reads. ``ValueError`` where an offset does not hold a
    whole record (the file is not the one located). Compiled where the package
    was built with ``reconciliation/csrc/``."""
    if _compiled_collect is not None:
        return _compiled_collect(buffer, offsets)
    view = memoryview(buffer).cast("B")
    out = bytearray()
    for at in memoryview(offsets).cast("B").cast("q"):
        end = _record_end(view, at) if at >= 0 else None
        if end is None:
            raise ValueError(f"no whole record at offset {at}")
        out += view[at:end]
    return bytes(out)


def _record_end(buffer: Any, offset: int) -> int | None:
    """Where the length-prefixed record at ``offset`` ends; ``None`` where its
    length prefix is cut off, or its length is zero or more than remains."""
    if offset + 2 > len(buffer):
        return None
    size = buffer[offset] << 8 | buffer[offset + 1]
    end = offset + 2 + size
    return None if size == 0 or end > len(buffer) else end


def _whole_records(buffer: bytes) -> Iterator[tuple[int, int]]:
    """Where each length-prefixed record of ``buffer`` starts and ends, from the
    first until one's length prefix is cut off, or its length is zero or more
    than remains (where the split stops)."""
    offset = 0
    while (end := _record_end(buffer, offset)) is not None:
        yield offset, end
        offset = end


# what a thin pass keeps (see parse_iso_parts), in the order of HOST_SCHEMA and of
# the compiled pass's thin columns
THIN_COLUMNS = (
    "seq",
    "mti",
    "terminal_id",
    "business_date",
    "stan",
    "amount_minor",
    "response_code",
)

# the compiled pass's columns, in its order
_COLUMNS = (
    "seq",
    "mti",
    "terminal_id",
    "business_date",
    "stan",
    "rrn",
    "time",
    "sent",
    "processing_code",
    "amount_minor",
    "response_code",
    "auth_code",
    "pan_masked",
    "original_stan",
    "actual_minor",
)


@functools.cache
def _field_lengths() -> tuple[int, ...]:
    """By field number (0 to 128), what ``_layout`` reads: the fixed length, -1 for
    DE2's two-digit length, 0 for a field the columnar paths do not read."""
    lengths = [0] * 129
    for number in range(2, 129):
        spec: dict[str, Any] | None = default_ascii.get(str(number))
        if spec is None:
            continue
        if int(spec["len_type"]) == 0:
            lengths[number] = int(spec["max_len"])
        elif number == 2 and int(spec["len_type"]) == 2:
            lengths[number] = -1
    return tuple(lengths)


@functools.lru_cache(maxsize=16)
def _date_table(file_date: date) -> list[str | None]:
    """The business date of each DE13 value ``0000`` to ``9999`` in a log of this day."""
    return [_business_date(f"{value:04d}", file_date) for value in range(10000)]


def _frame_by_layout(
    buffer: bytes, source: str, file_date: date, first_record: int
) -> tuple[list[pl.DataFrame], list[tuple[int, int, bytes]], int, int]:
    """The columnar path in Polars: the frames of the records whose layout (bitmap,
    PAN length) fixes their fields; the others as (index, offset, bytes); the
    number of records met; the offset where the split stopped."""
    texts, indexes, offsets, odd_records, count, stop = _split_records(buffer)
    odd = list(odd_records)
    raw = pl.DataFrame(
        {"m": texts, "seq": indexes, "off": offsets},
        schema={"m": pl.Utf8, "seq": pl.Int64, "off": pl.Int64},
    ).with_columns(pl.col("seq") + first_record)
    secondary = pl.col("m").str.slice(4, 1).is_in(list("89ABCDEF"))
    raw = raw.with_columns(
        bm=pl.when(secondary)
        .then(pl.col("m").str.slice(4, 32))
        .otherwise(pl.col("m").str.slice(4, 16)),
        pl_=pl.when(secondary)
        .then(pl.col("m").str.slice(36, 2))
        .otherwise(pl.col("m").str.slice(20, 2)),
        size=pl.col("m").str.len_bytes(),
    )
    frames: list[pl.DataFrame] = []
    leftovers: list[pl.DataFrame] = []
    for (bitmaps, pan_digits), group in raw.group_by(["bm", "pl_"]):
        where = None
        if isinstance(pan_digits, str) and pan_digits.isdigit() and isinstance(bitmaps, str):
            layout = _layout(bitmaps.encode(), int(pan_digits))
            if layout is not None:
                where = {name: (start, end) for name, start, end in layout[:-1]}
                total = layout[-1][1]
                if any(name not in where for name in ("3", "4", "11", "12", "13", "41")):
                    where = None
        if where is None:
            leftovers.append(group)
            continue
        fits = group.filter(pl.col("size") == total)
        leftovers.append(group.filter(pl.col("size") != total))
        columns = {
            name: (
                pl.col("m").str.slice(where[name][0], where[name][1] - where[name][0])
                if name in where
                else pl.lit("")
            ).alias(f"f{name}")
            for name in _FRAME_FIELDS
        }
        sliced = fits.with_columns(pl.col("m").str.slice(0, 4).alias("mti"), *columns.values())
        numeric = pl.concat_str([pl.col(f"f{n}") for n in ("3", "4", "7", "11", "12", "13")])
        good = (
            pl.col("mti").is_in(sorted(MTIS))
            & numeric.str.contains(r"^[0-9]+$")
            & ((pl.col("mti") != "0420") | pl.col("f95").str.slice(0, 12).str.contains(r"^[0-9]*$"))
        )
        frames.append(sliced.filter(good))
        leftovers.append(sliced.filter(~good).select(raw.columns))
    parsed = pl.concat(frames) if frames else None
    result_frames: list[pl.DataFrame] = []
    if parsed is not None and parsed.height:
        dates = {
            value: _business_date(value, file_date)
            for value in parsed.get_column("f13").unique().to_list()
        }
        bad_dates = [value for value, day in dates.items() if day is None]
        if bad_dates:
            leftovers.append(parsed.filter(pl.col("f13").is_in(bad_dates)).select(raw.columns))
            parsed = parsed.filter(~pl.col("f13").is_in(bad_dates))
        pan = pl.col("f2")
        is_reversal = pl.col("mti") == "0420"
        result_frames.append(
            parsed.sort("seq").select(
                pl.lit(source).alias("source"),
                pl.col("seq"),
                pl.col("mti"),
                pl.col("f41").str.strip_chars(_STRIPPED).alias("terminal_id"),
                pl.col("f13").replace_strict(dates, return_dtype=pl.Utf8).alias("business_date"),
                pl.col("f11").alias("stan"),
                pl.col("f37").alias("rrn"),
                pl.concat_str(
                    [
                        pl.col("f12").str.slice(0, 2),
                        pl.col("f12").str.slice(2, 2),
                        pl.col("f12").str.slice(4, 2),
                    ],
                    separator=":",
                ).alias("time"),
                pl.col("f7").alias("sent"),
                pl.col("f3").alias("processing_code"),
                pl.col("f4").cast(pl.Int64).alias("amount_minor"),
                pl.col("f39").alias("response_code"),
                pl.col("f38").alias("auth_code"),
                pl.when(pan.str.len_bytes() >= 10)
                .then(pl.concat_str([pan.str.slice(0, 6), pl.lit("******"), pan.str.slice(-4)]))
                .otherwise(pan)
                .alias("pan_masked"),
                pl.when(is_reversal)
                .then(pl.col("f90").str.slice(4, 6))
                .otherwise(pl.lit(""))
                .alias("original_stan"),
                pl.when(is_reversal)
                .then(
                    pl.when(pl.col("f95") != "")
                    .then(pl.col("f95").str.slice(0, 12).cast(pl.Int64, strict=False))
                    .otherwise(pl.lit(0))
                )
                .otherwise(pl.lit(-1))
                .cast(pl.Int64)
                .alias("actual_minor"),
            )
        )
    for left in leftovers:
        for text, number, at in left.select("m", "seq", "off").iter_rows():
            odd.append((number - first_record, at, text.encode("ascii")))
    return result_frames, odd, count, stop


def _unusable(buffer: bytes, offset: int, base_offset: int) -> str:
    """Why the record at ``offset``, and the rest of the log, cannot be read: its
    length prefix is cut off, or it declares zero bytes or more than remain."""
    if offset + 2 > len(buffer):
        return f"truncated length prefix at byte {base_offset + offset}"
    return (
        f"record at byte {base_offset + offset} declares "
        f"{buffer[offset] << 8 | buffer[offset + 1]} bytes but "
        f"{len(buffer) - offset - 2} remain; rest of file not used"
    )


def _split_records(
    buffer: bytes,
) -> tuple[list[str], list[int], list[int], list[tuple[int, int, bytes]], int, int]:
    """The length-prefixed records of ``buffer``: the ASCII ones as text with their
    index (from 0) and offset, the others as (index, offset, bytes), the number of
    records met (the last one perhaps unusable) and the offset where the split
    stopped (``len(buffer)`` when every record was whole). The compiled module
    splits the log inside its own columnar pass (``iso_columns``)."""
    texts: list[str] = []
    indexes: list[int] = []
    offsets: list[int] = []
    odd: list[tuple[int, int, bytes]] = []
    whole = stop = 0
    for whole, (start, end) in enumerate(_whole_records(buffer), 1):
        message = buffer[start + 2 : end]
        if message.isascii():
            texts.append(message.decode("ascii"))
            indexes.append(whole - 1)
            offsets.append(start)
        else:
            odd.append((whole - 1, start, message))
        stop = end
    # the record where the split stopped counts as met
    return texts, indexes, offsets, odd, whole + (stop < len(buffer)), stop


def _business_date(month_day: str, year_hint: date) -> str | None:
    if len(month_day) != 4 or not month_day.isdigit():
        return None
    found = _DATES.get((month_day, year_hint))
    if found is None:
        try:
            year = business_year(month_day, year_hint)
            found = f"{year:04d}-{month_day[:2]}-{month_day[2:]}"
            date.fromisoformat(found)
        except ValueError:
            return None
        _DATES[(month_day, year_hint)] = found
    return found
