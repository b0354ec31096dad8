"""Host files: the ISO 8583 log against pyiso8583 and the README's vectors, the CSV export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import iso8583
from hypothesis import given
from hypothesis import strategies as st
from iso8583.specs import default_ascii

from reconciliation.host_csv import HEADER, parse_csv
from reconciliation.host_iso import _fast_fields, business_year, parse_iso

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
