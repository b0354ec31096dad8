"""A small, fast XLSX (Office Open XML spreadsheet) writer for the run's report.

A large run has hundreds of thousands of findings; a general-purpose writer
spends microseconds per cell, which made the workbook the slowest report. This
one writes what ``report.xlsx`` needs and nothing more: sheets of rows whose
cells are text, whole numbers, decimals, booleans or empty (``None`` or
``""``); a bold header
style, a ``#,##0.00`` number style, column widths, a frozen header row and an
autofilter. Text goes into the shared-string table (one entry per distinct
string), as spreadsheet programs write it. Each sheet's XML is built as one
string per row and the package is deflated at a low level, which is where a
large workbook's time would otherwise go.

    book = Workbook()
    sheet = book.add_sheet("Findings", widths={1: 14})
    sheet.row(["kind", "amount"], style=BOLD)
    sheet.extend([["ej_gap", 12.5], ["paper_gap", 3]], styles={1: CENTS})
    book.save(path)
"""

from __future__ import annotations

import re
import zipfile
from dataclasses import dataclass, field
from itertools import compress
from operator import ne
from pathlib import Path
from xml.sax.saxutils import escape

from reconciliation.textutil import escape_each

try:
    from reconciliation._speedups import xlsx_rows as _compiled_rows
except ImportError:  # built without a C compiler: Sheet.row, row by row
    _compiled_rows = None  # type: ignore[assignment]

PLAIN, BOLD, CENTS = 0, 1, 2  # indexes into the cell formats of styles.xml

Cell = str | int | float | bool | None


def _column(index: int) -> str:
    name = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        name = chr(65 + rest) + name
    return name


_COLUMNS = [_column(index) for index in range(702)]  # A .. ZZ


def _text(value: str) -> str:
    """Text for an XML element: markup escaped, control characters as ``_xHHHH_``."""
    return _text_but_nul(value).replace("\0", "_x0000_")


def _control(found: re.Match[str]) -> str:
    return f"_x{ord(found.group()):04X}_"


def _shared_string(value: str) -> str:
    """One entry of the shared-string table; white space at an edge is kept."""
    if value[:1].isspace() or value[-1:].isspace():
        return f'<si><t xml:space="preserve">{_text(value)}</t></si>'
    return f"<si><t>{_text(value)}</t></si>"


def _shared_strings(values: list[str]) -> str:
    """``"".join(_shared_string(value) for value in values)``, made as one text: a
    workbook has a hundred thousand distinct strings."""
    parts = escape_each(values, _text_but_nul, _text)
    # values with white space at an edge (strip() changes them), marked (escaping made
    # any U+0001 of a value _x0001_); found value by value, ten times faster than a
    # pattern over the text
    edged = list(compress(range(len(values)), map(ne, values, map(str.strip, values))))
    for index in edged:
        parts[index] = "\x01" + parts[index]
    table = "<si><t>" + "</t></si><si><t>".join(parts) + "</t></si>" if parts else ""
    return table.replace("<t>\x01", '<t xml:space="preserve">') if edged else table


def _text_but_nul(value: str) -> str:
    """:func:`_text`, leaving NUL as it is (the separator of :func:`escape_each`): the
    other control characters as ``_xHHHH_``."""
    text = escape(value)
    if _CONTROL_BUT_NUL.search(text):
        text = _CONTROL_BUT_NUL.sub(_control, text)
    return text


_CONTROL_BUT_NUL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f]")


@dataclass(slots=True)
class Sheet:
    """One worksheet, filled row by row."""

    name: str
    strings: dict[str, int]
    widths: dict[int, float] = field(default_factory=dict)
    freeze_header: bool = False
    autofilter: bool = False
    rows: list[str] = field(default_factory=list)
    columns: int = 0

    def row(
        self, values: list[Cell], *, style: int = PLAIN, styles: dict[int, int] | None = None
    ) -> None:
        """Append a row; ``style`` for every cell, ``styles`` per column index."""
        number = len(self.rows) + 1
        strings = self.strings
        cells: list[str] = []
        for index, value in enumerate(values):
            if value is None or value == "":
                continue  # an empty cell, as spreadsheet programs leave it
            cell_style = styles.get(index, style) if styles else style
            head = f'<c r="{_COLUMNS[index]}{number}"'
            if cell_style:
                head += f' s="{cell_style}"'
            if isinstance(value, str):
                found = strings.get(value)
                if found is None:
                    found = strings[value] = len(strings)
                cells.append(f'{head} t="s"><v>{found}</v></c>')
            elif isinstance(value, bool):
                cells.append(f'{head} t="b"><v>{int(value)}</v></c>')
            else:
                cells.append(f"{head}><v>{value!r}</v></c>")
        self.columns = max(self.columns, len(values))
        self.rows.append(f'<row r="{number}">{"".join(cells)}</row>')

    def extend(
        self, rows: list[list[Cell]], *, style: int = PLAIN, styles: dict[int, int] | None = None
    ) -> None:
        """Append rows as :meth:`row` does one by one (in one compiled pass where built)."""
        if _compiled_rows is None:
            for values in rows:
                self.row(values, style=style, styles=styles)
            return
        made, widest = _compiled_rows(
            rows, self.strings, len(self.rows) + 1, style, styles, _COLUMNS
        )
        self.rows.extend(made)
        self.columns = max(self.columns, widest)

    def xml(self) -> str:
        parts = [
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
        ]
        last = f"{_COLUMNS[max(self.columns, 1) - 1]}{max(len(self.rows), 1)}"
        parts.append(f'<dimension ref="A1:{last}"/>')
        if self.freeze_header:
            parts.append(
                '<sheetViews><sheetView workbookViewId="0"><pane ySplit="1" topLeftCell="A2" '
                'activePane="bottomLeft" state="frozen"/></sheetView></sheetViews>'
            )
        else:
            parts.append('<sheetViews><sheetView workbookViewId="0"/></sheetViews>')
        parts.append('<sheetFormatPr defaultRowHeight="15"/>')
        if self.widths:
            parts.append("<cols>")
            for index, width in sorted(self.widths.items()):
                parts.append(
                    f'<col min="{index + 1}" max="{index + 1}" width="{width}" customWidth="1"/>'
                )
            parts.append("</cols>")
        parts.append("<sheetData>")
        parts.extend(self.rows)
        parts.append("</sheetData>")
        if self.autofilter:
            parts.append(f'<autoFilter ref="{self.filter_range()}"/>')
        parts.append("</worksheet>")
        return "".join(parts)

    def filter_range(self) -> str:
        return f"A1:{_COLUMNS[max(self.columns, 1) - 1]}{max(len(self.rows), 2)}"


_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<styleSheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="#,##0.00"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/><family val="2"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/><family val="2"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)
_MAIN = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_STAMP = (1980, 1, 1, 0, 0, 0)  # the earliest a ZIP member's time can say
_RELS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"


class Workbook:
    """Sheets in order, one shared-string table, written with :meth:`save`."""

    def __init__(self) -> None:
        self.sheets: list[Sheet] = []
        self.strings: dict[str, int] = {}

    def add_sheet(
        self,
        name: str,
        *,
        widths: dict[int, float] | None = None,
        freeze_header: bool = False,
        autofilter: bool = False,
    ) -> Sheet:
        sheet = Sheet(name, self.strings, dict(widths or {}), freeze_header, autofilter)
        self.sheets.append(sheet)
        return sheet

    def save(self, path: Path) -> None:
        count = len(self.sheets)
        overrides = "".join(
            f'<Override PartName="/xl/worksheets/sheet{n}.xml" '
            f'ContentType="{_MAIN}.worksheet+xml"/>'
            for n in range(1, count + 1)
        )
        types = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
            '<Default Extension="rels" '
            'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
            '<Default Extension="xml" ContentType="application/xml"/>'
            f'<Override PartName="/xl/workbook.xml" ContentType="{_MAIN}.sheet.main+xml"/>'
            f"{overrides}"
            f'<Override PartName="/xl/styles.xml" ContentType="{_MAIN}.styles+xml"/>'
            f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_MAIN}.sharedStrings+xml"/>'
            "</Types>"
        )
        root_rels = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            f'<Relationship Id="rId1" Type="{_RELS}/officeDocument" Target="xl/workbook.xml"/>'
            "</Relationships>"
        )
        sheets = "".join(
            f'<sheet name="{_text(sheet.name)}" sheetId="{n}" r:id="rId{n}"/>'
            for n, sheet in enumerate(self.sheets, start=1)
        )
        names = "".join(
            f'<definedName name="_xlnm._FilterDatabase" localSheetId="{n}" hidden="1">'
            f"'{_text(sheet.name)}'!{_absolute(sheet.filter_range())}</definedName>"
            for n, sheet in enumerate(self.sheets)
            if sheet.autofilter
        )
        workbook = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
            f'xmlns:r="{_RELS}"><bookViews><workbookView/></bookViews>'
            f"<sheets>{sheets}</sheets>"
            + (f"<definedNames>{names}</definedNames>" if names else "")
            + "</workbook>"
        )
        workbook_rels = (
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + "".join(
                f'<Relationship Id="rId{n}" Type="{_RELS}/worksheet" '
                f'Target="worksheets/sheet{n}.xml"/>'
                for n in range(1, count + 1)
            )
            + f'<Relationship Id="rId{count + 1}" Type="{_RELS}/styles" Target="styles.xml"/>'
            f'<Relationship Id="rId{count + 2}" Type="{_RELS}/sharedStrings" '
            'Target="sharedStrings.xml"/>'
            "</Relationships>"
        )
        total = sum(len(sheet.rows) for sheet in self.sheets)
        strings = "".join(
            [
                '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
                '<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
                f'count="{max(total, len(self.strings))}" uniqueCount="{len(self.strings)}">',
                _shared_strings(list(self.strings)),
                "</sst>",
            ]
        )
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as package:

            def write(name: str, text: str) -> None:
                # a fixed time stamp: the same workbook gives the same bytes
                member = zipfile.ZipInfo(name, date_time=_STAMP)
                package.writestr(member, text, zipfile.ZIP_DEFLATED, compresslevel=1)

            write("[Content_Types].xml", types)
            write("_rels/.rels", root_rels)
            write("xl/workbook.xml", workbook)
            write("xl/_rels/workbook.xml.rels", workbook_rels)
            write("xl/styles.xml", _STYLES)
            for n, sheet in enumerate(self.sheets, start=1):
                write(f"xl/worksheets/sheet{n}.xml", sheet.xml())
            write("xl/sharedStrings.xml", strings)


def _absolute(ref: str) -> str:
    """``A1:O9`` -> ``$A$1:$O$9``."""
    return ":".join(re.sub(r"([A-Z]+)(\d+)", r"$\1$\2", part) for part in ref.split(":"))
