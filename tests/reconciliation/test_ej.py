"""EJ parsers: both dialects, both paths, and tolerance of anything at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciliation import ej, ej_assembly, ej_ndc, ej_procash
from reconciliation.ej import detect_dialect, normalise, parse_ej
from reconciliation.model import EjParse
from tests.reconciliation.builders import Txn, ndc_block
from tests.reconciliation.speedups import needs_speedups


def _parse(data: bytes, dialect: str | None = None) -> EjParse:
    return parse_ej(
        data, source="t.txt", terminal_id="T9000001", business_date="2026-11-16", dialect=dialect
    )


def _covered_lines(parse: EjParse, buffer: bytes) -> set[int]:
    covered: set[int] = set()
    for txn in parse.transactions:
        covered.update(range(txn.line, txn.last_line + 1))
    for event in parse.events:
        span = buffer.count(b"\n", event.start, event.end)
        covered.update(range(event.line, event.line + max(span, 1)))
    return covered


def assert_accounted(parse: EjParse, data: bytes) -> None:
    """Every line is used (in a block, event or printout) or skipped with a reason."""
    buffer = normalise(data)
    assert parse.lines_total == buffer.count(b"\n")
    skipped = [line.line for line in parse.skipped]
    assert len(skipped) == len(set(skipped)), "a line skipped twice"
    assert all(line.reason for line in parse.skipped)
    everything = _covered_lines(parse, buffer) | set(skipped)
    assert set(range(1, parse.lines_total + 1)) <= everything


@pytest.mark.parametrize("dialect", ["ndc", "procash"])
def test_fast_and_slow_paths_agree_on_the_sample(sample: Path, dialect: str) -> None:
    module = ej_ndc if dialect == "ndc" else ej_procash
    fast_files = 0
    for path in sorted((sample / "ej").iterdir()):
        data = path.read_bytes()
        if detect_dialect(data) != dialect:
            continue
        slow = module.parse_slow(data, path.name)
        fast = module.parse_fast(data)
        assert slow[2] == [], slow[2]
        if fast is not None:
            fast_files += 1
            assert fast[0] == slow[0]
            assert fast[1] == slow[1]
            assert fast[2] == slow[3]
        parse = _parse(data)
        assert_accounted(parse, data)
    assert fast_files >= 3


@pytest.mark.parametrize(
    ("text", "dialect"),
    [
        (b"08:00:01 Card Inserted (1)\n-> TRANSACTION START\n", "ndc"),
        (b"-> TRANSACTION START\n08:00:01 Card Inserted (1)\n", "procash"),
        (b"x" * 5000 + b"\nCASH COUNTERS\n", "procash"),  # past the first 4 KiB
        (b"x" * 5000 + b" *****START*****\n" + b"CASH COUNTERS\n", "ndc"),
        (b"x" * 70000 + b" *****START*****\n", "ndc"),  # past 64 KiB: by the headers
        (b"ATM ID : 1\n" + b"x" * 70000 + b"\n", "procash"),
    ],
)
def test_the_first_marker_tells_the_dialect(text: bytes, dialect: str) -> None:
    assert detect_dialect(text) == dialect


def test_sample_dialects(sample: Path) -> None:
    found = {path.name[:8]: detect_dialect(path.read_bytes()) for path in (sample / "ej").iterdir()}
    assert found == {
        "T1000001": "ndc",
        "T1000002": "ndc",
        "T1000006": "ndc",
        "T1000003": "procash",
        "T1000004": "procash",
        "T1000005": "procash",
    }


def test_ndc_block_fields() -> None:
    txn = Txn("123456", "10:52:01", amount=30000, outcome="retracted", notes=(0, 0, 3, 0))
    parse = _parse(ndc_block(txn).encode())
    assert parse.fast_path
    (found,) = parse.transactions
    assert found.stan == "123456"
    assert found.serial == "3456"
    assert found.outcome == "retracted"
    assert found.amount_minor == 30000
    assert found.dispensed == (0, 0, 3, 0)
    assert found.retracted == (0, 0, 3, 0)
    assert found.status == "5"


def test_truncated_block_before_power_up_is_kept_as_truncated() -> None:
    first = ndc_block(Txn("000001", "01:00:00"))
    data = (
        first
        + "Card Inserted (476173XXXXXX5512)\n01:01:54 POWER UP\n"
        + ndc_block(Txn("000003", "02:00:00"))
    )
    parse = _parse(data.encode())
    assert not parse.fast_path
    truncated = [txn for txn in parse.transactions if txn.truncated]
    assert [txn.card for txn in truncated] == ["476173******5512"]
    assert [txn.stan for txn in parse.transactions if not txn.truncated] == ["000001", "000003"]
    assert [event.code for event in parse.events] == ["power_up"]
    assert parse.skipped == []
    assert_accounted(parse, data.encode())


def test_garbage_line_inside_a_block_is_reported_and_the_block_kept() -> None:
    block = ndc_block(Txn("000007", "03:00:00")).splitlines(keepends=True)
    block.insert(3, "@@ line noise @@\n")
    data = "".join(block).encode()
    parse = _parse(data)
    assert [txn.stan for txn in parse.transactions] == ["000007"]
    assert [(line.line, line.reason) for line in parse.skipped] == [(4, "unrecognised line")]
    assert parse.skipped[0].text == "@@ line noise @@"


def test_receipt_without_trace_line_recovers_the_stan_from_the_rrn() -> None:
    text = ndc_block(Txn("000009", "04:00:00"))
    text = "\n".join(line for line in text.splitlines() if "TRACE" not in line) + "\n"
    parse = _parse(text.encode())
    assert [txn.stan for txn in parse.transactions] == ["000009"]


def test_crlf_and_missing_final_newline() -> None:
    text = ndc_block(Txn("000011", "05:00:00")).rstrip("\n").replace("\n", "\r\n")
    parse = _parse(text.encode())
    assert parse.fast_path
    assert [txn.stan for txn in parse.transactions] == ["000011"]


_LINES = st.sampled_from(
    [
        "Card Inserted (453201XXXXXX1234)",
        "Transaction Request [ A    AD]",
        "Transaction Reply [Host Seq.No.: 0001]",
        "Next State [125] Function [EjectCardAndDispenseAndPrint]",
        "Card Ejected",
        "Cash Present",
        "Cash Taken",
        " *****START*****",
        " TRACE     : 000001",
        " RRN       : 632000000001",
        " *****END*****",
        "*0001*1*E*000000000,M-00,R-00000",
        "12:00:00 POWER UP",
        "12:00:00 COUNTERS BEFORE EXCHANGE",
        " TYPE DENOM LOADED DISPENSED REJECTED RETRACTED REMAINING",
        " 1       20   2000       906        4         1      1090",
        "12:00:00 -> TRANSACTION START",
        "12:00:00 RESPONSE CODE: 00  STAN: 000001  RRN:[632000000001]",
        "*" * 31,
        "STAN     000001",
        "",
    ]
)


@given(st.lists(st.one_of(_LINES, st.text(max_size=40)), max_size=40), st.booleans())
def test_never_crashes_and_accounts_for_every_line(lines: list[str], procash: bool) -> None:
    data = "\n".join(lines).encode("utf-8", "replace")
    parse = _parse(data, "procash" if procash else "ndc")
    assert_accounted(parse, data)


@given(st.binary(max_size=600))
def test_binary_garbage_never_crashes(data: bytes) -> None:
    parse = _parse(data)
    assert_accounted(parse, data)


_INSERTS = [
    "",
    "@@@",
    "Cash Taken",
    " TRACE",
    "12:00:00 POWER UP",
    "12:00:00 SYSTEM STARTUP",
    "Card Inserted (453201XXXXXX1234)",
    "12:00:00 -> TRANSACTION START",
    "*******************************",
]


@pytest.mark.parametrize(
    "name",
    [
        "T1000001_20261117.txt",
        "T1000002_20261117.txt",
        "T1000004_20261117.txt",
        "T1000005_20261117.txt",
    ],
)
@given(
    cuts=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(_INSERTS)), max_size=4),
    drops=st.lists(st.integers(0, 10_000), max_size=2),
)
def test_mixed_fast_and_slow_parsing_equals_the_state_machine(
    sample: Path, name: str, cuts: list[tuple[int, str]], drops: list[int]
) -> None:
    """Whatever is inserted or lost, reading the clean stretches fast changes nothing."""
    lines = (sample / "ej" / name).read_bytes().split(b"\n")
    for position in drops:
        del lines[position % len(lines)]
    for position, text in cuts:
        lines.insert(position % len(lines), text.encode())
    data = b"\n".join(lines)
    if not data.endswith(b"\n"):
        data += b"\n"
    module = ej_ndc if detect_dialect(data) == "ndc" else ej_procash
    transactions, events, skipped, total = module.parse_slow(data, "t.txt")
    parse = _parse(data)
    assert parse.transactions == transactions
    assert parse.events == events
    assert [(s.line, s.reason) for s in parse.skipped] == [(s.line, s.reason) for s in skipped]
    assert parse.lines_total == total


@pytest.fixture(scope="module")
def generated_ej(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    from simulators.generate import FleetOptions, generate

    folder = tmp_path_factory.mktemp("fleet")
    generate(
        FleetOptions(terminals=12, days=2, seed=7, discrepancy_rate=0.3, iso_encoder="fast"),
        folder,
    )
    return sorted((folder / "ej").iterdir())


@needs_speedups
def test_compiled_records_equal_the_python_ones(
    sample: Path, generated_ej: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = [*sorted((sample / "ej").iterdir()), *generated_ej]
    compiled = [_parse(path.read_bytes()) for path in paths]
    monkeypatch.setattr(ej_ndc, "_compiled_scan", None)
    monkeypatch.setattr(ej_procash, "_compiled_scan", None)
    assert [_parse(path.read_bytes()) for path in paths] == compiled
    dialects = {detect_dialect(path.read_bytes()) for path in paths}
    outcomes = {txn.outcome for parse in compiled for txn in parse.transactions}
    assert dialects == {"ndc", "procash"}
    assert outcomes >= {"taken", "retracted", "short", "none", "power", ""}


@needs_speedups
def test_compiled_ej_frame_equals_the_python_one(
    sample: Path, generated_ej: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The matcher's EJ frame: one row per kept record, the same values and refs."""
    from reconciliation import classify

    paths = [*sorted((sample / "ej").iterdir()), *generated_ej]
    days = [
        (f"T{number}", "2026-11-16", _parse(path.read_bytes()).transactions, number)
        for number, path in enumerate(paths)
    ]
    odd = days[0][2][0]._replace(time="9:05:00", stan="")  # no STAN: left out
    cut = odd._replace(stan="2", truncated=True)  # cut by a power failure: left out
    days.append(("T-odd", "2026-11-17", [odd, cut, odd._replace(stan="1", time="24:00:0x")], 99))
    compiled = classify.ej_frame(days)
    monkeypatch.setattr(classify, "_compiled_ej_columns", None)
    expected = classify.ej_frame(days)
    assert compiled.equals(expected)
    assert compiled.schema == expected.schema
    kept = sum(1 for day in days for txn in day[2] if txn.stan and not txn.truncated)
    assert compiled.height == kept
    assert compiled.row(-1) == (
        "T-odd",
        "2026-11-17",
        "1",
        odd.rrn,
        -1,
        odd.txn_type,
        odd.resp,
        odd.amount_minor,
        odd.outcome,
        sum(odd.dispensed) - sum(odd.retracted),
        99 << 32 | 2,
    )


_EDITS = st.lists(
    st.tuples(
        st.integers(0, 100_000),
        st.sampled_from(["delete", "insert", "replace"]),
        st.sampled_from([b"0", b"9", b" ", b"\n", b"*", b":", b",", b".", b"X", b"-", b"]"]),
    ),
    min_size=1,
    max_size=6,
)


def _damaged(journal: bytes, edits: list[tuple[int, str, bytes]]) -> bytes:
    """``journal`` with bytes deleted, inserted or replaced, ending with a newline."""
    data = bytearray(journal)
    for where, how, byte in edits:
        at = where % len(data)
        if how == "delete":
            del data[at]
        elif how == "insert":
            data[at:at] = byte
        else:
            data[at : at + 1] = byte
    return bytes(data) if data.endswith(b"\n") else bytes(data) + b"\n"


@needs_speedups
@pytest.mark.parametrize("name", ["T1000001_20261117.txt", "T1000004_20261117.txt"])
@given(edits=_EDITS)
def test_compiled_scan_equals_the_pattern_on_damaged_journals(
    sample: Path, name: str, edits: list[tuple[int, str, bytes]]
) -> None:
    """The compiled block readers take only what the pattern takes, read alike."""
    text = _damaged((sample / "ej" / name).read_bytes()[:6000], edits)
    module = ej_ndc if detect_dialect(text) == "ndc" else ej_procash
    assert module._compiled_scan is not None
    compiled = module.scan(text)
    by_pattern = ej_assembly.scan(module.FAST, text)
    assert [item[:3] for item in compiled] == [item[:3] for item in by_pattern]
    assert _parse(text) == _parse_without_compiled_scan(text)


def _parse_without_compiled_scan(data: bytes) -> EjParse:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ej_ndc, "_compiled_scan", None)
        patch.setattr(ej_procash, "_compiled_scan", None)
        return _parse(data)


@needs_speedups
@pytest.mark.parametrize("name", ["T1000001_20261117.txt", "T1000004_20261117.txt"])
@given(edits=_EDITS)
def test_compiled_tiles_equal_the_python_ones_on_damaged_journals(
    sample: Path, name: str, edits: list[tuple[int, str, bytes]]
) -> None:
    """What ej_tiles makes of a scan, gaps or not, is what its Python twin makes."""
    text = _damaged((sample / "ej" / name).read_bytes()[:6000], edits)
    module = ej_ndc if detect_dialect(text) == "ndc" else ej_procash
    items = module.scan(text)
    compiled = ej.tiles(items, len(text))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ej, "_compiled_tiles", None)
        assert ej.tiles(items, len(text)) == compiled
        assert ej.tiles(items, len(text) + 1) is None  # not up to the end
        if len(items) > 1:  # a gap between two pieces
            assert ej.tiles([items[0], *items[2:]], len(text)) is None


def test_the_shortcut_over_a_clean_journal_equals_the_block_by_block_reading(
    sample: Path, generated_ej: list[Path]
) -> None:
    """Where the scan tiles the journal, records and events come as from the loop
    that handles gaps; where it does not (a damaged journal), the loop reads it."""
    paths = [*sorted((sample / "ej").iterdir()), *generated_ej]
    texts = [normalise(path.read_bytes()) for path in paths]
    texts.append(texts[0].replace(b"\n", b"\n\x00garbage\n", 1))
    quick = [_parse(text) for text in texts]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ej, "_tiled", lambda module, buffer, items: None)
        assert [_parse(text) for text in texts] == quick
    shortcut = [
        ej._tiled(module, text, module.scan(text)) is not None
        for text in texts
        for module in [ej_ndc if detect_dialect(text) == "ndc" else ej_procash]
    ]
    assert sum(shortcut) >= 3
    assert not shortcut[-1]
    assert any(parse.events for parse, short in zip(quick, shortcut, strict=True) if short)
