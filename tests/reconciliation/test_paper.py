"""Paper journal: block cutting, OCR-tolerant readings and order-preserving matching."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reconciliation.model import EjTransaction, PaperBlock
from reconciliation.paper import LOOKALIKES, _all_candidates, block_lines, candidates, parse_paper
from reconciliation.paper_match import Expected, fuzzy_score, match_paper
from tests.reconciliation.builders import Txn, paper_receipt, rrn
from tests.reconciliation.speedups import needs_speedups, speedups


def _parse(text: str) -> object:
    return parse_paper(
        text.encode(), source="p.txt", terminal_id="T9000001", business_date="2026-11-16"
    )


def _accounted(data: bytes) -> None:
    parse = parse_paper(data, source="p", terminal_id="T", business_date="2026-11-16")
    normal = data.replace(b"\r\n", b"\n")
    if normal and not normal.endswith(b"\n"):
        normal += b"\n"
    in_blocks: list[int] = []
    for block in parse.blocks:
        numbers = [n for n, _ in block_lines(normal[block.start : block.end], block.line)]
        assert numbers, "a block without a line"
        in_blocks.extend(numbers)
    assert len(in_blocks) == len(set(in_blocks)), "a line in two blocks"
    assert len(in_blocks) + parse.structural_lines == parse.lines_total


def test_readings_undo_lookalikes() -> None:
    text = b"TRACE      : B05269\nRRN       : 632004805269\nCARD NO : 520473******0780\n"
    numbers, rrns, _ = candidates(text.translate(LOOKALIKES))
    assert "805269" in numbers
    assert "520473" not in numbers  # a BIN, followed by asterisks
    assert rrns == ("632004805269",)
    _, _, times = candidates(b"DATE/TIME : 2026-11-16 04:1O:32".translate(LOOKALIKES))
    assert times == ("041032",)


def test_blocks_split_where_a_boundary_was_lost() -> None:
    one = paper_receipt(Txn("000001", "01:00:00"))
    two = paper_receipt(Txn("000002", "02:00:00"))
    three = paper_receipt(Txn("000003", "03:00:00"))
    # the empty line between the first two blocks is lost (merged by the OCR)
    text = "--- PAGE 1 ---\n" + one + two + "\n" + three
    parse = _parse(text)
    assert len(parse.blocks) == 3
    assert ["000001" in b.stans for b in parse.blocks] == [True, False, False]


def test_page_marker_inside_a_block_does_not_split_it() -> None:
    receipt = paper_receipt(Txn("000001", "01:00:00")).splitlines(keepends=True)
    receipt.insert(5, "--- PAGE 2 ---\n")
    parse = _parse("--- PAGE 1 ---\n" + "".join(receipt))
    assert len(parse.blocks) == 1
    assert parse.structural_lines == 2


def test_matching_finds_the_missing_receipt_despite_heavy_noise() -> None:
    txns = [Txn(f"00010{i}", f"0{i}:00:00") for i in range(1, 6)]
    receipts = [paper_receipt(txn) for txn in txns]
    # receipt 2 is corrupted beyond exact reading, receipt 4 is missing
    receipts[1] = (
        receipts[1].replace("000102", "0O01O22").replace(rrn("000102", "02:00:00"), "63203200001")
    )
    text = "--- PAGE 1 ---\n" + "\n".join(r for i, r in enumerate(receipts) if i != 3)
    parse = _parse(text)
    expected = [Expected(t.stan, rrn(t.stan, t.time), t.time) for t in txns]
    found = match_paper(parse.blocks, expected)
    assert sorted(found) == [0, 1, 2, 4]
    assert found[1] == 1


def test_an_authorisation_code_equal_to_a_stan_does_not_fake_a_receipt() -> None:
    txns = [Txn(f"00020{i}", f"0{i}:00:00") for i in range(1, 4)]
    text = "\n".join(paper_receipt(t) for t in (txns[0], txns[2]))
    # the last block also shows the missing STAN as if it were an auth code, out of order
    text += "RESP     00  AUTH 000202\n"
    parse = _parse(text)
    expected = [Expected(t.stan, rrn(t.stan, t.time), t.time) for t in txns]
    found = match_paper(parse.blocks, expected)
    assert 1 not in found


def test_fuzzy_score_tolerates_one_edit() -> None:
    parse = _parse("TRACE : 80527\nRRN : 63200780527\nTIME 07:27:55\n")
    item = Expected("805272", "632007805272", "07:27:55")
    assert fuzzy_score(parse.blocks[0], item) >= 4


def test_sample_paper_files_are_cut_into_receipts(sample: Path) -> None:
    for path in sorted((sample / "paper").iterdir()):
        data = path.read_bytes()
        _accounted(data)
        parse = parse_paper(data, source="p", terminal_id="T", business_date="d")
        assert 35 <= len(parse.blocks) <= 41, path.name


@given(st.lists(st.text(alphabet="*ST ARENDO0l1I5B8:-\n PAGE", max_size=30), max_size=30))
def test_every_paper_line_is_in_one_block_or_structural(lines: list[str]) -> None:
    _accounted("\n".join(lines).encode())


@given(st.binary(max_size=500))
def test_binary_paper_never_crashes(data: bytes) -> None:
    _accounted(data)


_TOKENISH = st.lists(
    st.one_of(
        st.sampled_from([b"0", b"1", b"5", b"9", b":", b"::", b" ", b"  ", b"*", b"\n", b"x"]),
        st.binary(max_size=3),
    ),
    max_size=60,
).map(b"".join)


@given(st.lists(_TOKENISH, max_size=6))
def test_readings_of_many_blocks_equal_one_by_one(texts: list[bytes]) -> None:
    assert _all_candidates(texts) == [candidates(text) for text in texts]


@needs_speedups
@given(st.lists(_TOKENISH, max_size=6))
@example([b"12:34:56 1234 5 12345678901* 1 2 3 4 5 6", b"00::11: 22 99999999999999"])
@example([b"123456\n7890123", b"1 2:34:56", b"12:34:5 123456", b"5  12345"])
def test_compiled_readings_equal_one_by_one(texts: list[bytes]) -> None:
    assert speedups is not None
    joined = b"".join(texts)
    spans, at = [], 0
    for number, text in enumerate(texts):
        spans.append((number, number, at, at + len(text)))
        at += len(text)
    assert speedups.paper_readings(joined, spans) == [candidates(text) for text in texts]


@needs_speedups
def test_compiled_readings_refuse_a_span_outside_the_text() -> None:
    assert speedups is not None
    with pytest.raises(ValueError, match="outside the text"):
        speedups.paper_readings(b"123456", [(1, 1, 0, 7)])
    with pytest.raises(TypeError, match="four integers"):
        speedups.paper_readings(b"123456", [(0, 6)])  # type: ignore[list-item]


_PAPER_LINE = st.one_of(
    st.sampled_from(
        [
            "",
            " ",
            "\t",
            "--- PAGE 7 ---",
            " --- PAGE 12 --- ",
            "*****START*****",
            "*****END*****",
            "*****END*****  *****START*****",
            "* ****END*****",
            "CARD NO   : 453201******6701",
            "TRACE     : 513968",
            "*" * 60,
            "*****END***** TRN TYPE  : CASH WITHDRAWAL",
        ]
    ),
    st.text(alphabet="*ST ARENDO0l1I5B8:-", max_size=24),
)


@given(st.lists(_PAPER_LINE, max_size=40), st.booleans(), st.booleans())
@example(["*****START*****", "a", "*****END*****", "*****START*****", "b"], True, True)
@example(["*****END*****  *****START*****", "a", "*****END*****"], False, True)
@example(["--- PAGE 1 ---", "", "*" * 60, "*****START*****", "--- PAGE 2 ---"], True, True)
def test_cutting_by_runs_equals_the_state_machine(
    lines: list[str], final_newline: bool, empty_blanks: bool
) -> None:
    from reconciliation.paper import _parse as cut

    if empty_blanks:  # blank lines all empty: the runs path applies
        lines = ["" if not line.strip(" \t") else line for line in lines]
    data = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    by_runs = cut(data, "p", "T", "2026-11-16", runs=True)
    by_events = cut(data, "p", "T", "2026-11-16", runs=False)
    assert by_runs == by_events


@needs_speedups
@given(
    st.lists(st.one_of(_PAPER_LINE, st.sampled_from(["x\r", " \r", "** 1234"])), max_size=40),
    st.booleans(),
    st.integers(0, 40),
    st.integers(0, 40),
)
@example(["*****START*****", "a", "*****END*****", "*****START*****", "b"], True, 0, 40)
@example(["a", "--- PAGE 2 ---", "", "*" * 60, "*****START*****", "b"], False, 2, 5)
def test_compiled_state_machine_equals_the_python_one(
    lines: list[str], final_newline: bool, first: int, last: int
) -> None:
    """Over the whole text, and over a stretch of whole lines of it."""
    from reconciliation import paper

    data = ("\n".join(lines) + ("\n" if final_newline else "")).encode()
    starts = [0, *(index + 1 for index, byte in enumerate(data) if byte == 10)]
    low, high = sorted((min(first, len(starts) - 1), min(last, len(starts) - 1)))
    for start, end in [(0, len(data)), (starts[low], starts[high])]:
        spans: list[tuple[int, int, int, int]] = []
        structural = paper._by_events(data, start, end, spans, paper._Lines(data))
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(paper, "_compiled_events", None)
            python: list[tuple[int, int, int, int]] = []
            assert paper._by_events(data, start, end, python, paper._Lines(data)) == structural
        assert spans == python


def test_sample_paper_cut_by_runs_equals_the_state_machine(sample: Path) -> None:
    from reconciliation.paper import _parse as cut

    for path in sorted((sample / "paper").iterdir()):
        data = path.read_bytes()
        assert cut(data, "p", "T", "D", runs=True) == cut(data, "p", "T", "D", runs=False)


@needs_speedups
def test_sample_paper_reads_the_same_without_the_compiled_module(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciliation import paper

    paths = sorted((sample / "paper").iterdir())
    compiled = [
        paper.parse_paper(p.read_bytes(), source="p", terminal_id="T", business_date="D")
        for p in paths
    ]
    monkeypatch.setattr(paper, "_compiled_readings", None)
    python = [
        paper.parse_paper(p.read_bytes(), source="p", terminal_id="T", business_date="D")
        for p in paths
    ]
    assert compiled == python
    assert sum(len(parse.blocks) for parse in python) > 0
    assert {type(block) for parse in compiled for block in parse.blocks} == {PaperBlock}


@given(
    st.lists(st.sampled_from([b" ", b"\t", b"\r", b"\n", b"x", b"*"]), max_size=20).map(b"".join)
)
def test_space_line_search_equals_the_line_by_line_definition(data: bytes) -> None:
    from reconciliation.paper import _has_space_line

    lines = data.split(b"\n")[:-1]  # whole lines only: the last piece has no newline
    assert _has_space_line(data) == any(line and not line.strip(b" \t\r") for line in lines)


_STANS = ["100001", "100002", "100003", "200001"]
_RRNS = ["632000100001", "632000100002", "632000999999", "63200010000"]
_TIMES = ["10:00:00", "10:05:00", "11:00:00"]


@st.composite
def _anchoring_case(draw: st.DrawFn) -> tuple[list[PaperBlock], list[Expected]]:
    expected = draw(
        st.lists(
            st.builds(
                Expected,
                st.sampled_from(_STANS),
                st.sampled_from(["", *_RRNS]),
                st.sampled_from(_TIMES),
            ),
            max_size=6,
        )
    )
    compact_times = [time.replace(":", "") for time in _TIMES]
    blocks = [
        PaperBlock(
            position,
            position,
            position,
            0,
            0,
            tuple(draw(st.lists(st.sampled_from([*_STANS, "999999"]), max_size=3))),
            tuple(draw(st.lists(st.sampled_from([*_RRNS, "632000200001"]), max_size=3))),
            tuple(draw(st.lists(st.sampled_from([*compact_times, "235959"]), max_size=3))),
        )
        for position in range(draw(st.integers(min_value=0, max_value=6)))
    ]
    return blocks, expected


@needs_speedups
@given(_anchoring_case())
def test_compiled_exact_anchors_equal_the_python_loop(
    case: tuple[list[PaperBlock], list[Expected]],
) -> None:
    from reconciliation import paper_match

    blocks, expected = case
    compiled = paper_match._exact_pairs(blocks, expected)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paper_match, "_compiled_exact_pairs", None)
        assert paper_match._exact_pairs(blocks, expected) == compiled


@needs_speedups
@given(st.lists(_PAPER_LINE, max_size=40))
@example(["*****START*****", "a", "*****END*****", "*****START*****", "b", "*****END*****"])
@example(["--- PAGE 1 ---", "", "*" * 60, "*****END***** x START", "--- PAGE 2 ---"])
def test_compiled_runs_equal_the_numpy_ones(lines: list[str]) -> None:
    from reconciliation.paper import _runs

    lines = ["" if not line.strip(" \t") else line for line in lines]
    data = "".join(line + "\n" for line in lines).encode()  # as _parse passes it
    assert speedups is not None
    assert speedups.paper_runs(data) == _runs(data)


@needs_speedups
@given(st.lists(_PAPER_LINE, max_size=40), st.sampled_from([" ", "\t", "\r", " \t\r "]))
def test_runs_are_none_where_a_line_is_blank_but_not_empty(lines: list[str], blank: str) -> None:
    from reconciliation.paper import _runs

    lines = ["" if not line.strip(" \t\r") else line for line in lines]
    data = "".join(line + "\n" for line in [*lines, blank]).encode()
    assert speedups is not None
    assert _runs(data) is None
    assert speedups.paper_runs(data) is None
    emptied = "".join(line + "\n" for line in [*lines, ""]).encode()
    assert speedups.paper_runs(emptied) == _runs(emptied) is not None


@needs_speedups
def test_compiled_runs_equal_the_numpy_ones_on_the_sample(sample: Path) -> None:
    from reconciliation.paper import _runs

    for path in sorted((sample / "paper").iterdir()):
        data = path.read_bytes().replace(b"\r\n", b"\n")
        assert speedups is not None
        assert speedups.paper_runs(data) == _runs(data), path.name


@st.composite
def _receipts_case(
    draw: st.DrawFn,
) -> tuple[list[EjTransaction], dict[str, tuple[str, str, int, str]]]:
    """A day's EJ records and host messages over a few STANs: repeated STANs (a
    later block replaces an earlier one), truncated blocks, blocks without a STAN,
    host-only STANs, equal times (the STAN decides)."""
    stans = st.sampled_from(["", "100001", "100002", "100003", "100004"])
    times = st.sampled_from(["08:00:00", "08:00:01", "09:30:00", ""])
    base = EjTransaction(
        "", "", "0001", "", "400022******0001", "withdrawal", "00", 0, "taken",
        (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), "", False, 0, 0, 1, 1,
    )  # fmt: skip
    transactions = [
        base._replace(
            stan=draw(stans),
            rrn=draw(st.sampled_from(["", "632000100001", "632000100009"])),
            time=draw(times),
            card=draw(st.sampled_from(["400022******0001", ""])),
            amount_minor=draw(st.integers(0, 50000)),
            truncated=draw(st.booleans()),
        )
        for _ in range(draw(st.integers(0, 8)))
    ]
    host = {
        stan: (draw(st.sampled_from(["", "632000100002"])), draw(times), amount, "5351******7217")
        for stan, amount in draw(
            st.dictionaries(st.sampled_from(["100001", "100003", "100005"]), st.integers(0, 9))
        ).items()
    }
    return transactions, host


@needs_speedups
@given(_receipts_case())
def test_compiled_receipts_equal_the_python_ones(
    case: tuple[list[EjTransaction], dict[str, tuple[str, str, int, str]]],
) -> None:
    from reconciliation import paper_match

    transactions, host = case
    compiled = paper_match.receipts(transactions, host)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paper_match, "_compiled_receipts", None)
        python = paper_match.receipts(transactions, host)
    assert compiled == python
    assert all(type(item) is Expected for item in compiled.expected)
    assert [item.time for item in python.expected] == sorted(item.time for item in python.expected)


@needs_speedups
@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 12), st.integers(2, 6)), max_size=25))
def test_compiled_chain_equals_the_python_one(pairs: list[tuple[int, int, int]]) -> None:
    from reconciliation import paper_match

    pairs.sort()
    compiled = paper_match._chain(pairs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(paper_match, "_compiled_chain", None)
        python = paper_match._chain(pairs)
    assert compiled == python
    assert all(a[1] < b[1] and a[0] <= b[0] for a, b in itertools.pairwise(python))


@given(_receipts_case(), st.lists(st.booleans(), min_size=5, max_size=5))
def test_receipts_need_only_the_host_messages_the_ej_does_not_show_as_they_are(
    case: tuple[list[EjTransaction], dict[str, tuple[str, str, int, str]]],
    same_amount: list[bool],
) -> None:
    """``classify.receipt_hosts`` leaves out a STAN whose every EJ block shows the
    host's amount: the receipts come out the same as with every host message."""
    import polars as pl

    from reconciliation.batch import _host_by_day
    from reconciliation.classify import (
        HOST_SCHEMA,
        ej_frame,
        host_groups,
        join_sides,
        receipt_hosts,
    )
    from reconciliation.paper_match import receipts

    transactions, host = case
    ej_amounts = {txn.stan: txn.amount_minor for txn in transactions if not txn.truncated}
    for flag, stan in zip(same_amount, sorted(host), strict=False):
        if flag and stan in ej_amounts:  # the host's amount as the (last) EJ block shows it
            rrn_, at, _, pan = host[stan]
            host[stan] = (rrn_, at, ej_amounts[stan], pan)
    rows = [
        ("h", seq, "0200", "T1", "2026-11-16", stan, rrn_, at, "", "010000", amount,
         "", "", pan, "", -1)
        for seq, (stan, (rrn_, at, amount, pan)) in enumerate(host.items())
    ]  # fmt: skip
    messages = pl.DataFrame(rows, schema=HOST_SCHEMA, orient="row")
    joined = join_sides(ej_frame([("T1", "2026-11-16", transactions, 0)]), host_groups(messages))
    needed = _host_by_day(receipt_hosts(joined)).get(("T1", "2026-11-16"), {})
    assert needed.items() <= host.items()
    assert receipts(transactions, needed) == receipts(transactions, host)
