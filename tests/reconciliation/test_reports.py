"""Report files contain what they should: findings, charts, sheets, settlement."""

from __future__ import annotations

import csv
import enum
import re
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reconciliation import RunResult, Sources, reconcile, write_reports
from reconciliation.reports import money, render_html, write_xlsx
from reconciliation.xlsx import BOLD, PLAIN, Cell, Sheet, Workbook
from tests.reconciliation.speedups import needs_speedups


@pytest.fixture(scope="module")
def reports(sample: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[RunResult, Path]:
    result = reconcile(
        Sources.from_dirs(
            ej=sample / "ej",
            paper=sample / "paper",
            host=sample / "host",
            counters=sample / "counters",
        )
    )
    out = tmp_path_factory.mktemp("reports")
    write_reports(result, out)
    return result, out


def test_money_is_integer_formatting() -> None:
    assert money(12345) == "123.45 USD"
    assert money(-5) == "-0.05 USD"
    assert money(100000000, "EUR") == "1,000,000.00 EUR"


def test_html_is_self_contained_with_svg_charts(reports: tuple[RunResult, Path]) -> None:
    result, out = reports
    page = (out / "report.html").read_text()
    assert page.count("<svg") >= 3
    assert "<script" not in page.lower()
    assert not re.search(r"""(src|href)=["']?https?:""", page)
    for kind in result.counts_by_kind():
        assert kind in page
    assert "Findings by kind" in page
    assert "805274" in page  # a STAN with its evidence
    assert "TRACE     : 805274" in page


def test_html_escapes_text() -> None:
    from reconciliation.result import RunResult as Result

    empty = Result([], [], [], [], [("<b>x</b>.txt", "bad <name>")], [], 0, 0, 0, 0, {})
    page = render_html(empty)
    assert "&lt;b&gt;x&lt;/b&gt;.txt" in page
    assert "<b>x</b>" not in page


def test_csv_reports(reports: tuple[RunResult, Path]) -> None:
    result, out = reports
    with (out / "discrepancies.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(result.discrepancies)
    assert {row["kind"] for row in rows} == set(result.counts_by_kind())
    assert all(row["amount_minor"].isdigit() for row in rows)
    with (out / "settlement.csv").open() as handle:
        settlement = list(csv.DictReader(handle))
    assert len(settlement) == len(result.settlement)
    assert any(row["difference"] == "-2" for row in settlement)


def test_xlsx_has_the_sheets_and_findings(reports: tuple[RunResult, Path]) -> None:
    result, out = reports
    with zipfile.ZipFile(out / "report.xlsx") as book:
        workbook = book.read("xl/workbook.xml").decode()
        strings = book.read("xl/sharedStrings.xml").decode()
    for sheet in ("Summary", "Discrepancies", "Settlement", "Skipped"):
        assert f'name="{sheet}"' in workbook
    for kind in result.counts_by_kind():
        assert kind in strings
    assert "645121" in strings  # the host duplicate's STAN


def test_xlsx_opens_in_a_spreadsheet_reader(reports: tuple[RunResult, Path]) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    result, out = reports
    book = openpyxl.load_workbook(out / "report.xlsx")
    assert book.sheetnames == ["Summary", "Discrepancies", "Settlement", "Skipped"]
    findings = book["Discrepancies"]
    assert findings.freeze_panes == "A2"
    assert findings.auto_filter.ref == f"A1:O{len(result.discrepancies) + 1}"
    header = [cell.value for cell in findings[1]]
    assert header[:6] == ["terminal_id", "business_date", "kind", "stan", "rrn", "amount_minor"]
    assert findings["A1"].font.b
    rows = list(findings.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(result.discrepancies)
    for row, item in zip(rows, result.discrepancies, strict=True):
        assert row[2] == item.kind
        assert row[3] == (item.stan or None)
        assert row[5] == item.amount_minor
    summary = book["Summary"]
    counts = {row[0]: row[1] for row in summary.iter_rows(min_row=2, max_row=15, values_only=True)}
    for kind, count in result.counts_by_kind().items():
        assert counts[kind] == count
    assert summary["C2"].number_format == "#,##0.00"
    settlement = list(book["Settlement"].iter_rows(min_row=2, values_only=True))
    assert len(settlement) == len(result.settlement)
    assert settlement[0][0] == result.settlement[0].terminal_id


def test_xlsx_keeps_awkward_text(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    from reconciliation.xlsx import Workbook

    book = Workbook()
    sheet = book.add_sheet("Odd <&> 'names'")
    sheet.row(["a < b & c", " padded ", "bell\x07here", 3, 2.5, True, None, "x"])
    book.save(tmp_path / "odd.xlsx")
    read = openpyxl.load_workbook(tmp_path / "odd.xlsx").active
    values = [cell.value for cell in read[1]]
    assert values[:6] == ["a < b & c", " padded ", "bell_x0007_here", 3, 2.5, True]
    assert values[6] is None
    assert values[7] == "x"


def test_html_evidence_is_capped_for_huge_runs(reports: tuple[RunResult, Path]) -> None:
    result, _ = reports
    page = render_html(result, evidence_limit=3)
    assert page.count("<p>EJ ") == 3
    assert "Evidence is shown for the first 3 findings" in page
    assert page.count("<td class='num'>") >= len(result.discrepancies)


def test_forked_writing_gives_the_same_files(
    reports: tuple[RunResult, Path], tmp_path: Path
) -> None:
    result, out = reports
    paths = write_reports(result, tmp_path, fork=True)
    assert sorted(path.name for path in paths) == sorted(path.name for path in out.iterdir())
    for path in paths:
        assert path.read_bytes() == (out / path.name).read_bytes(), path.name


def test_a_failing_forked_writer_fails_here(
    reports: tuple[RunResult, Path], tmp_path: Path
) -> None:
    result, _ = reports
    (tmp_path / "report.xlsx").mkdir()  # the child cannot write the workbook
    with pytest.raises(IsADirectoryError):
        write_reports(result, tmp_path, fork=True)
    assert (tmp_path / "discrepancies.jsonl").stat().st_size > 0


def test_the_workbook_is_the_same_bytes_whenever_it_is_written(
    reports: tuple[RunResult, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Same findings, same file: no time of writing inside the package."""
    import time

    result, out = reports
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    write_xlsx(result, tmp_path / "report.xlsx")
    assert (tmp_path / "report.xlsx").read_bytes() == (out / "report.xlsx").read_bytes()


class _Level(enum.IntEnum):
    HIGH = 3


_CELLS = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["", "x", "ej_gap", "T1000001"]),  # shared strings met again
    st.integers(),  # past 64 bits too
    st.floats(),
    st.booleans(),
    st.just(_Level.HIGH),  # an int whose repr is not its number
)


@needs_speedups
@given(
    rows=st.lists(st.lists(_CELLS, max_size=8), max_size=6),
    style=st.sampled_from([PLAIN, BOLD]),
    styles=st.one_of(st.none(), st.just({}), st.dictionaries(st.integers(0, 8), st.integers(0, 2))),
    before=st.integers(0, 3),
)
def test_compiled_rows_equal_the_python_ones(
    rows: list[list[Cell]], style: int, styles: dict[int, int] | None, before: int
) -> None:
    def sheet() -> Sheet:
        made = Workbook().add_sheet("s")
        for _ in range(before):  # rows numbered on, strings indexed on
            made.row(["a", 1])
        return made

    compiled, python = sheet(), sheet()
    compiled.extend(rows, style=style, styles=styles)
    for values in rows:
        python.row(values, style=style, styles=styles)
    assert compiled.rows == python.rows
    assert compiled.strings == python.strings
    assert list(compiled.strings.items()) == list(python.strings.items())
    assert compiled.columns == python.columns


@given(
    st.lists(st.text(alphabet=st.sampled_from("a <&>\x00\x01\x07\x1c\t\n_xé\u3000"), max_size=6))
)
def test_the_shared_string_table_made_at_once_equals_one_by_one(values: list[str]) -> None:
    from reconciliation.xlsx import _shared_string, _shared_strings

    assert _shared_strings(values) == "".join(_shared_string(value) for value in values)


@given(st.lists(st.text(alphabet=st.sampled_from("a <&>\"'\x00é"), max_size=5)))
def test_page_cells_escaped_together_equal_one_by_one(values: list[str]) -> None:
    import html

    from reconciliation.textutil import escape_each

    assert escape_each(values, html.escape) == [html.escape(value) for value in values]


def test_the_page_shows_each_settlement_row_cell_by_cell(
    reports: tuple[RunResult, Path],
) -> None:
    import html

    from reconciliation.reports import SETTLEMENT_COLUMNS

    result, out = reports
    page = (out / "report.html").read_text(encoding="utf-8")
    assert result.settlement
    for row in result.settlement:
        cells = [getattr(row, name) for name in SETTLEMENT_COLUMNS]
        texts = [
            html.escape(value) if isinstance(value, str) else "" if value is None else value
            for value in cells
        ]
        shown = "".join(f"<td>{text}</td>" for text in texts)
        assert f"<tr>{shown}</tr>" in page


def test_an_account_as_json_is_all_its_fields(reports: tuple[RunResult, Path]) -> None:
    from dataclasses import asdict

    result, _ = reports
    assert any(account.extra for account in result.accounts)
    for account in result.accounts:
        data = account.to_json()
        assert data == asdict(account)
        assert data["extra"] is not account.extra
