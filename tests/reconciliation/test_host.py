"""Host files: the ISO 8583 log against pyiso8583 and the README's vectors, the CSV export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import iso8583
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from iso8583.specs import default_ascii

from reconciliation.classify import host_frame
from reconciliation.host_csv import HEADER, parse_csv, parse_csv_frame
from reconciliation.host_iso import _fast_fields, business_year, parse_iso, parse_iso_frame
from tests.reconciliation.speedups import needs_speedups, speedups

FIRST = (
    b"0200723800000880800016535110443552721701000000000001200011160002486451040002481116"
    b"632000645104T1000003840"
)
PARTIAL = (
    b"0420F23800000E80800000000042000000001645320156228675850100000000000040001116164731"
    b"750123164721111663201675012367576732T1000006840020075012311161647210000012345600000"
    b"000000000000002000000000002000C00000000C00000000"
)
DAY = date(2026, 11, 16)


def _record(message: bytes) -> bytes:
    return len(message).to_bytes(2, "big") + message


def test_readme_vectors() -> None:
    parse = parse_iso(_record(FIRST) + _record(PARTIAL), source="h.iso", file_date=DAY)
    assert parse.skipped == []
    first, partial = parse.messages
    assert (first.mti, first.terminal_id, first.stan, first.amount_minor) == (
        "0200",
        "T1000003",
        "645104",
        12000,
    )
    assert (first.sent, first.time, first.rrn, first.business_date) == (
        "1116000248",
        "00:02:48",
        "632000645104",
        "2026-11-16",
    )
    assert first.pan_masked == "535110******7217"
    assert (partial.mti, partial.stan, partial.response_code, partial.auth_code) == (
        "0420",
        "750123",
        "32",
        "675767",
    )
    assert (partial.amount_minor, partial.actual_minor, partial.original_stan) == (
        4000,
        2000,
        "750123",
    )


def test_fast_slicing_equals_pyiso8583_on_every_sample_record(sample: Path) -> None:
    for path in sorted((sample / "host").glob("*.iso")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            size = int.from_bytes(data[offset : offset + 2], "big")
            message = data[offset + 2 : offset + 2 + size]
            offset += 2 + size
            fast = _fast_fields(message)
            decoded, _ = iso8583.decode(bytearray(message), default_ascii)
            reference = {k: v for k, v in decoded.items() if k not in ("p", "1")}
            assert fast == reference


def test_sample_logs_parse_completely(sample: Path) -> None:
    for path in sorted((sample / "host").glob("*.iso")):
        parse = parse_iso(path.read_bytes(), source=path.name, file_date=DAY)
        assert parse.skipped == []
        assert {m.mti for m in parse.messages} == {"0200", "0210", "0420"}


def test_bad_and_truncated_records_are_reported_by_number() -> None:
    bad = FIRST.replace(b"000000012000", b"0000000120X0")
    data = _record(FIRST) + _record(bad) + _record(PARTIAL) + b"\x00\x50ABC"
    parse = parse_iso(data, source="h.iso", file_date=DAY)
    assert [m.stan for m in parse.messages] == ["645104", "750123"]
    assert [s.line for s in parse.skipped] == [2, 4]
    assert "not decodable" in parse.skipped[0].reason
    assert "declares 80 bytes" in parse.skipped[1].reason


def test_year_of_a_date_near_new_year() -> None:
    assert business_year("1231", date(2027, 1, 1)) == 2026
    assert business_year("0101", date(2026, 12, 31)) == 2027
    assert business_year("1116", date(2026, 11, 17)) == 2026


@given(st.binary(max_size=400))
def test_iso_garbage_never_crashes(data: bytes) -> None:
    parse = parse_iso(data, source="g.iso", file_date=DAY)
    assert len(parse.messages) + len(parse.skipped) >= parse.units_total - 1


def test_csv_sample_and_bad_rows(sample: Path) -> None:
    data = (sample / "host" / "20261116.csv").read_bytes()
    parse = parse_csv(data, source="h.csv")
    assert parse.skipped == []
    assert parse.units_total == data.count(b"\n")
    assert len(parse.messages) == parse.units_total - 1
    lines = data.split(b"\n")
    lines[2] = lines[2].replace(b",010000,", b",010000,12a,", 1)
    lines.insert(5, b"")
    broken = b"\n".join(lines)
    parse = parse_csv(broken, source="h.csv")
    assert [(s.line, s.reason) for s in parse.skipped] == [
        (3, "expected 14 columns, found 15"),
        (6, "empty line"),
    ]
    assert len(parse.messages) == broken.count(b"\n") - 1 - 2


def test_csv_header_is_checked() -> None:
    parse = parse_csv(HEADER.replace(b"stan", b"trace") + b"\n", source="h.csv")
    assert parse.skipped[0].reason == "header line is not the export's"


@given(st.lists(st.text(alphabet="0123456789,T-:*\n", max_size=60), max_size=20))
def test_csv_every_line_is_a_message_or_skipped(lines: list[str]) -> None:
    data = HEADER + b"\n" + "\n".join(lines).encode()
    parse = parse_csv(data, source="g.csv")
    assert len(parse.messages) + len(parse.skipped) + 1 == parse.units_total


def _csv_both(data: bytes, first_line: int = 1) -> None:
    frame, skipped, units = parse_csv_frame(data, source="h.csv", first_line=first_line)
    reference = parse_csv(data, source="h.csv", first_line=first_line)
    assert frame.equals(host_frame(reference.messages))
    assert skipped == reference.skipped
    assert units == reference.units_total


def test_csv_columnar_path_equals_the_row_path(sample: Path) -> None:
    data = (sample / "host" / "20261116.csv").read_bytes()
    _csv_both(data)
    cut = data.index(b"\n", len(data) // 2) + 1
    _csv_both(data[cut:], first_line=data[:cut].count(b"\n") + 1)
    lines = data.split(b"\n")
    for broken in (
        lines[2].replace(b",010000,", b",010000,12a,", 1),
        b"",
        lines[2].replace(b",0210,", b",0200,", 1),
        b"," + lines[2].partition(b",")[2],
        lines[2] + b",extra",
    ):
        _csv_both(b"\n".join([*lines[:3], broken, *lines[3:]]))
    _csv_both(data.replace(b"\n", b"\r\n"))
    _csv_both(HEADER.replace(b"stan", b"trace") + b"\n" + b"\n".join(lines[1:]))


@given(st.lists(st.text(alphabet="0123456789,T-:*\n", max_size=60), max_size=20))
def test_csv_columnar_path_equals_the_row_path_on_anything(lines: list[str]) -> None:
    _csv_both(HEADER + b"\n" + "\n".join(lines).encode())


def test_hot_path_builds_the_same_records_as_pyiso8583(sample: Path) -> None:
    from reconciliation.host_iso import _fast_message, _message, _reference_fields

    data = (sample / "host" / "20261117.iso").read_bytes()
    parse_iso(data[:200], source="warm", file_date=date(2026, 11, 17))  # learn the date
    offset, record, fast_hits = 0, 0, 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 2], "big")
        message = data[offset + 2 : offset + 2 + size]
        offset += 2 + size
        record += 1
        reference = _message(_reference_fields(message), "h", record, date(2026, 11, 17))
        fast = _fast_message(message, "h", record, date(2026, 11, 17))
        if fast is not None:
            fast_hits += 1
            assert fast == reference
    assert fast_hits == record


def test_pieces_keep_record_and_line_numbers(sample: Path, tmp_path: Path) -> None:
    from reconciliation import Options, Sources, reconcile

    iso = (sample / "host" / "20261116.iso").read_bytes()
    size = int.from_bytes(iso[:2], "big")
    records = []
    offset = 0
    while offset < len(iso):
        size = int.from_bytes(iso[offset : offset + 2], "big")
        records.append(iso[offset : offset + 2 + size])
        offset += 2 + size
    records[300] = records[300][:2] + b"9999" + records[300][6:]  # an unknown MTI
    host = tmp_path / "host"
    host.mkdir()
    (host / "20261116.iso").write_bytes(b"".join(records))
    csv_lines = (sample / "host" / "20261116.csv").read_bytes().split(b"\n")
    csv_lines[200] = b"broken row"
    (host / "20261116.csv").write_bytes(b"\n".join(csv_lines))
    sources = Sources.from_dirs(ej=sample / "ej", host=host)
    whole = reconcile(sources)
    cut = reconcile(sources, options=Options(host_chunk_bytes=4096))
    assert [(s.source, s.line) for s in cut.skipped] == [(s.source, s.line) for s in whole.skipped]
    assert sorted((Path(s.source).name, s.line) for s in cut.skipped) == [
        ("20261116.csv", 201),
        ("20261116.iso", 301),
    ]
    assert cut.host_messages == whole.host_messages
    accounts = {a.kind: (a.units_total, a.units_skipped) for a in cut.accounts if a.kind != "ej"}
    assert accounts == {"csv": (len(csv_lines) - 1, 1), "iso": (len(records), 1)}


def _both(data: bytes) -> None:
    """The columnar paths (compiled where built, and Polars) give what the record
    path gives: the same messages in record order, skipped records and count."""
    from reconciliation import host_iso
    from reconciliation.classify import host_frame

    reference = parse_iso(data, source="h.iso", file_date=DAY, first_record=5, base_offset=100)
    expected = host_frame(reference.messages)
    for compiled in {host_iso._compiled_columns, None}:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(host_iso, "_compiled_columns", compiled)
            frame, skipped, units = host_iso.parse_iso_frame(
                data, source="h.iso", file_date=DAY, first_record=5, base_offset=100
            )
        assert frame.equals(expected), compiled
        assert skipped == reference.skipped
        assert units == reference.units_total


def test_columnar_path_equals_the_record_path(sample: Path) -> None:
    data = (sample / "host" / "20261116.iso").read_bytes()
    _both(data)
    broken = bytearray(data)
    broken[700:704] = b"ZZZZ"
    _both(bytes(broken) + b"\x00\x10short")


@given(
    st.lists(
        st.sampled_from([FIRST, PARTIAL, FIRST[:-3] + b"XYZ", b"0200", FIRST + b"1"]), max_size=8
    ),
    st.binary(max_size=30),
)
def test_columnar_path_equals_the_record_path_on_anything(
    records: list[bytes], tail: bytes
) -> None:
    _both(b"".join(_record(record) for record in records) + tail)


def _variants() -> st.SearchStrategy[bytes]:
    """Well-formed messages with one byte changed, cut or grown: a layout that no
    longer fits, a non-digit in a number, another MTI, spaces around DE41, a
    lower-case bitmap, a date that does not exist."""
    changes = st.sampled_from(b"0123456789 AFaf\x1c\t\xe9Z")
    return st.one_of(
        st.tuples(st.sampled_from([FIRST, PARTIAL]), st.integers(0, 220), changes).map(
            lambda item: item[0][: item[1]] + bytes([item[2]]) + item[0][item[1] + 1 :]
        ),
        st.tuples(st.sampled_from([FIRST, PARTIAL]), st.integers(0, 220)).map(
            lambda item: item[0][: item[1]] + item[0][item[1] + 1 :]
        ),
        st.sampled_from([FIRST, PARTIAL]),
    )


@pytest.mark.parametrize(
    "terminal", [b" T10003 ", b"\x1cT100003", b"T100003\x1f", b"\tT1000\x0b\r"]
)
def test_columnar_paths_strip_the_terminal_id_as_the_record_path(terminal: bytes) -> None:
    at = FIRST.rindex(b"T1000003")
    _both(_record(FIRST[:at] + terminal + FIRST[at + 8 :]))


@given(st.lists(_variants(), max_size=6))
def test_columnar_paths_equal_the_record_path_on_damaged_messages(records: list[bytes]) -> None:
    _both(b"".join(_record(record) for record in records))


@given(
    st.lists(st.sampled_from([FIRST, PARTIAL, b"0200\xe9", b"", b"\x80" * 3]), max_size=8),
    st.binary(max_size=30),
)
def test_columnar_paths_split_odd_records_as_the_record_path(
    records: list[bytes], tail: bytes
) -> None:
    """Non-ASCII records, a zero length and a cut-off tail stop or divert the split
    alike in the compiled pass, the Polars path and the record path."""
    _both(b"".join(_record(record) for record in records) + tail)


def _chunks_one_record_at_a_time(data: bytes, chunk: int) -> list[tuple[int, int, int]]:
    """``record_chunks``' definition, record by record over the whole log."""
    pieces: list[tuple[int, int, int]] = []
    start, start_record, record, offset = 0, 1, 1, 0
    while offset + 2 <= len(data):
        length = data[offset] << 8 | data[offset + 1]
        if length == 0:
            break
        offset += 2 + length
        record += 1
        if offset - start >= chunk and offset < len(data):
            pieces.append((start, offset, start_record))
            start, start_record = offset, record
    pieces.append((start, len(data), start_record))
    return pieces


@given(
    st.lists(st.binary(min_size=0, max_size=40), max_size=30),
    st.binary(max_size=3),
    st.integers(min_value=1, max_value=200),
)
def test_record_chunks_cut_where_one_record_at_a_time_would(
    records: list[bytes], tail: bytes, chunk: int
) -> None:
    from reconciliation import host_iso

    data = b"".join(_record(record) for record in records) + tail
    expected = _chunks_one_record_at_a_time(data, chunk)

    def read(start: int, end: int) -> bytes:  # small windows, so records cross them
        return data[start : min(end, start + 50)]

    assert host_iso.record_chunks(read, len(data), chunk) == expected
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(host_iso, "_compiled_walk", None)
        assert host_iso.record_chunks(read, len(data), chunk) == expected


def test_csv_export_differences_from_the_iso_log_are_noted(sample: Path) -> None:
    from reconciliation.hostload import PieceResult, combine

    iso_data = (sample / "host" / "20261116.iso").read_bytes()
    iso, _, _ = parse_iso_frame(iso_data, source="20261116.iso", file_date=date(2026, 11, 16))
    lines = (sample / "host" / "20261116.csv").read_bytes().splitlines(keepends=True)
    same, _, _ = parse_csv_frame(b"".join(lines), source="20261116.csv")
    dropped = lines[1]  # the first message, missing from the export
    changed = lines[2].replace(b",12000,", b",12500,")  # and another's amount differs
    edited = b"".join([lines[0], changed, *lines[3:], lines[3]])  # and one appears twice
    different, _, _ = parse_csv_frame(edited, source="20261116.csv")

    def notes(csv: pl.DataFrame) -> list[str]:
        results = [
            PieceResult("20261116.iso", "iso", "2026-11-16", iso, [], iso.height, 0),
            PieceResult("20261116.csv", "csv", "2026-11-16", csv, [], csv.height, 0),
        ]
        frame, _, _, observations, compare = combine(results)
        assert frame.height == iso.height  # the ISO log is used, the export compared
        return observations + compare()

    assert notes(same) == []
    found = notes(different)
    assert len(found) == 4, found
    stan_1 = dropped.split(b",")[3].decode()
    stan_2 = changed.split(b",")[3].decode()
    stan_3 = lines[3].split(b",")[3].decode()
    assert any(
        f"STAN {stan_1} 0210" in note and "1 in the ISO 8583 log, 0 in" in note for note in found
    )
    assert any(f"STAN {stan_2} 0210 code 00 amount 12000: 1 in the ISO" in note for note in found)
    assert any(f"STAN {stan_2} 0210 code 00 amount 12500: 0 in the ISO" in note for note in found)
    assert any(f"STAN {stan_3}" in note and "1 in the ISO 8583 log, 2 in" in note for note in found)


def test_same_rows_ignores_order_and_sees_one_changed_value() -> None:
    from reconciliation.hostload import _same_rows

    frame = pl.DataFrame({"terminal_id": ["T1", "T2", "T2"], "amount_minor": [100, 200, 200]})
    assert _same_rows(frame, frame.reverse())
    assert not _same_rows(frame, frame.with_columns(pl.col("amount_minor").replace(100, 101)))
    assert not _same_rows(frame, frame.head(2))
    # the same values in other rows are other rows
    swapped = pl.DataFrame({"terminal_id": ["T1", "T2", "T2"], "amount_minor": [200, 100, 200]})
    assert not _same_rows(frame, swapped)


@needs_speedups
def test_compiled_pass_reads_every_well_formed_record_itself(sample: Path) -> None:
    """Only what the layout does not explain goes to the record path (which gives the
    same messages, slowly): none of the sample's records, which are all well formed."""
    from reconciliation import host_iso

    assert speedups is not None
    for name in ("20261116.iso", "20261117.iso"):
        data = (sample / "host" / name).read_bytes()
        columns, odd, count, stop = speedups.iso_columns(
            data, host_iso._field_lengths(), host_iso._date_table(date(2026, 11, 16)), 1
        )
        assert odd == []
        assert stop == len(data)
        assert len(columns[0]) == count > 0


def test_a_thin_pass_keeps_the_columns_of_the_full_one(sample: Path) -> None:
    """What the run's process keeps of a log its workers read again: the same rows
    and values as the full pass, of the columns ``THIN_COLUMNS`` (compiled where
    built, and in Polars); the records read one by one stay whole."""
    from reconciliation import host_iso

    data = bytearray((sample / "host" / "20261116.iso").read_bytes())
    data[700:704] = b"ZZZZ"
    for compiled in {host_iso._compiled_columns, None}:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(host_iso, "_compiled_columns", compiled)
            full = host_iso.parse_iso_parts(bytes(data), source="h.iso", file_date=DAY)
            thin = host_iso.parse_iso_parts(bytes(data), source="h.iso", file_date=DAY, thin=True)
        assert thin[0].columns == list(host_iso.THIN_COLUMNS)
        assert thin[0].height > 400
        assert thin[0].equals(full[0].select(host_iso.THIN_COLUMNS)), compiled
        assert thin[1].equals(full[1])
        assert thin[2:] == full[2:]
