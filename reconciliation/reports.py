"""Report files of a run: JSON lines, summary, CSV, XLSX and a self-contained HTML page.

``write_reports(result, folder)`` writes them all and returns their paths:

- ``discrepancies.jsonl``: one JSON object per finding, evidence included;
- ``summary.json``: counts and amounts by kind, money owed, per-source line
  accounting, every skipped line with its reason, ignored files, observations;
- ``discrepancies.csv`` and ``settlement.csv``;
- ``report.xlsx``: Summary, Discrepancies, Settlement and Skipped sheets;
- ``report.html``: charts drawn as inline SVG on the server, no script, no
  external asset, readable offline and printable.
"""

from __future__ import annotations

import csv
import html
import json
import os
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson

from reconciliation.result import Discrepancy, Evidence, RunResult
from reconciliation.settlement import by_denomination
from reconciliation.textutil import escape_each
from reconciliation.xlsx import BOLD, CENTS, Cell, Workbook

DISCREPANCY_COLUMNS = (
    "terminal_id",
    "business_date",
    "kind",
    "stan",
    "rrn",
    "amount_minor",
    "currency",
    "owed_to",
    "suggested_action",
    "dispute_deadline",
    "scheme",
    "local_time",
    "detail",
    "ej_location",
    "paper_location",
)

SETTLEMENT_COLUMNS = (
    "terminal_id",
    "cycle_start",
    "cycle_end",
    "cassette",
    "denomination",
    "loaded",
    "counters_dispensed",
    "counters_rejected",
    "counters_retracted",
    "counters_remaining",
    "ej_dispensed",
    "ej_rejected",
    "ej_retracted",
    "ej_covers_cycle",
    "ej_unexplained",
    "physical_count",
    "difference",
    "difference_minor",
)


# the files write_csv writes, in its order
CSV_FILES = ("discrepancies.csv", "settlement.csv")

# a settlement row's values in the order of SETTLEMENT_COLUMNS
_settlement_values = attrgetter(*SETTLEMENT_COLUMNS)
# the same in two parts: its texts, then its counts (int, bool or None)
_SETTLEMENT_TEXTS = ("terminal_id", "cycle_start", "cycle_end")
_settlement_texts = attrgetter(*_SETTLEMENT_TEXTS)
_settlement_counts = attrgetter(*SETTLEMENT_COLUMNS[len(_SETTLEMENT_TEXTS) :])


def money(minor: int, currency: str = "USD") -> str:
    """``12345`` -> ``"123.45 USD"`` (integer arithmetic only)."""
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}"


# json.dumps(value, sort_keys=True), without making an encoder per call
_detail_json = json.JSONEncoder(sort_keys=True).encode


def _row(item: Discrepancy) -> list[Any]:
    detail = {key: value for key, value in item.detail.items() if key != "text"}
    return [
        item.terminal_id,
        item.business_date,
        item.kind,
        item.stan or "",
        item.rrn or "",
        item.amount_minor,
        item.currency,
        item.owed_to,
        item.suggested_action,
        item.dispute_deadline or "",
        item.scheme or "",
        item.local_time or "",
        _detail_json(detail),
        item.evidence.ej_location,
        item.evidence.paper_location,
    ]


def write_jsonl(result: RunResult, path: Path) -> Path:
    """One finding per line, in the shape of :meth:`Discrepancy.to_json` (orjson
    serialises the dataclasses directly, several times faster than ``json``, and
    copies the JSON of evidence received from a worker process as it came)."""
    items = result.discrepancies
    line = orjson.OPT_APPEND_NEWLINE
    with path.open("wb") as handle:
        # a few hundred lines (about a megabyte) at a time: memory that the next
        # write reuses, where a larger piece was new pages to fault in each time
        # (a 2,000-terminal day: 0.08 s instead of 0.2)
        for first in range(0, len(items), 256):
            handle.write(
                b"".join(
                    orjson.dumps(item, default=_evidence_json, option=line)
                    for item in items[first : first + 256]
                )
            )
    return path


def _evidence_json(value: object) -> orjson.Fragment:
    """What orjson does not write itself: evidence that came packed as JSON
    (:class:`~reconciliation.result.PackedEvidence`)."""
    if isinstance(value, Evidence):
        return orjson.Fragment(value.json())
    raise TypeError(f"{type(value).__name__} is not JSON data")


def write_summary(result: RunResult, path: Path) -> Path:
    summary = result.summary()
    summary["settlement_by_denomination"] = {
        str(key): value for key, value in by_denomination(result.settlement).items()
    }
    path.write_bytes(
        orjson.dumps(summary, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    )
    return path


def _rows(result: RunResult) -> list[list[Any]]:
    return [_row(item) for item in result.discrepancies]


def write_csv(
    result: RunResult, folder: Path, *, rows: list[list[Any]] | None = None
) -> list[Path]:
    discrepancies, settlement = (folder / name for name in CSV_FILES)
    with discrepancies.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(DISCREPANCY_COLUMNS)
        writer.writerows(rows if rows is not None else _rows(result))
    with settlement.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(SETTLEMENT_COLUMNS)
        writer.writerows(
            ["" if value is None else value for value in _settlement_values(row)]
            for row in result.settlement
        )
    return [discrepancies, settlement]


def write_xlsx(result: RunResult, path: Path, *, rows: list[list[Any]] | None = None) -> Path:
    book = Workbook()
    sheet = book.add_sheet("Summary", widths={0: 32, 1: 14, 2: 14})
    sheet.row(["kind", "count", "amount"], style=BOLD)
    amounts = result.amount_by_kind()
    for kind, count in result.counts_by_kind().items():
        sheet.row([kind, count, amounts[kind] / 100], styles={2: CENTS})
    sheet.row([])
    sheet.row([])
    sheet.row(["owed to", "amount"], style=BOLD)
    for party, total in result.owed_totals().items():
        sheet.row([party, total / 100], styles={1: CENTS})
    sheet.row([])
    for label, value in (
        ("terminal-days", result.terminal_days),
        ("EJ transactions", result.transactions),
        ("host messages", result.host_messages),
        ("skipped lines/records", len(result.skipped)),
    ):
        sheet.row([label, value])

    sheet = book.add_sheet(
        "Discrepancies",
        widths=dict.fromkeys(range(12), 14),
        freeze_header=True,
        autofilter=True,
    )
    sheet.row(list(DISCREPANCY_COLUMNS), style=BOLD)
    cells: list[list[Cell]] = []
    for row in rows if rows is not None else _rows(result):
        values: list[Cell] = list(map(str, row))
        values[5] = row[5]  # amount_minor, a number
        cells.append(values)
    sheet.extend(cells)

    sheet = book.add_sheet("Settlement", freeze_header=True)
    sheet.row(list(SETTLEMENT_COLUMNS), style=BOLD)
    sheet.extend([list(_settlement_values(settlement)) for settlement in result.settlement])

    sheet = book.add_sheet("Skipped")
    sheet.row(["source", "line", "reason", "text"], style=BOLD)
    sheet.extend([[line.source, line.line, line.reason, line.text] for line in result.skipped])
    book.save(path)
    return path


# --- HTML with server-side SVG charts ---------------------------------------------------

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1b1f24}
header,main{max-width:1100px;margin:0 auto;padding:12px 16px}
header{border-bottom:1px solid #d0d7de}
h1{font-size:1.4em;margin:.3em 0}h2{font-size:1.15em;margin-top:1.6em}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e5e7eb;padding:4px 6px;text-align:left;vertical-align:top}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
.cards{display:flex;flex-wrap:wrap;gap:10px}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 12px;min-width:150px}
.card b{display:block;font-size:1.3em}
pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px;white-space:pre}
details{margin:2px 0}.chart{max-width:100%;height:auto}
.owed-customer{color:#b42318}.owed-bank{color:#8a4b00}
"""


def _bar_chart(title: str, items: list[tuple[str, float, str]], unit: str) -> str:
    """Horizontal bar chart as inline SVG; ``items`` are (label, value, shown text)."""
    if not items:
        return f"<p>{html.escape(title)}: nothing to show.</p>"
    bar_height, gap, label_width, width = 18, 6, 230, 720
    height = len(items) * (bar_height + gap) + 30
    biggest = max(value for _, value, _ in items) or 1
    parts = [
        f'<svg class="chart" role="img" aria-label="{html.escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'xmlns="http://www.w3.org/2000/svg">',
        f'<text x="0" y="14" font-size="13" font-weight="bold">{html.escape(title)}</text>',
    ]
    for index, (label, value, shown) in enumerate(items):
        y = 24 + index * (bar_height + gap)
        length = max((width - label_width - 120) * value / biggest, 1 if value else 0)
        parts.append(
            f'<text x="{label_width - 6}" y="{y + 13}" font-size="12" '
            f'text-anchor="end">{html.escape(label)}</text>'
            f'<rect x="{label_width}" y="{y}" width="{length:.1f}" height="{bar_height}" '
            f'fill="#2f6feb"><title>{html.escape(label)}: {html.escape(shown)}</title></rect>'
            f'<text x="{label_width + length + 6:.1f}" y="{y + 13}" '
            f'font-size="12">{html.escape(shown)}</text>'
        )
    parts.append(f"<desc>{html.escape(unit)}</desc></svg>")
    return "".join(parts)


def render_html(
    result: RunResult, *, title: str = "ATM reconciliation report", evidence_limit: int = 5000
) -> str:
    """The report page. Findings past ``evidence_limit`` are listed without their
    evidence (it is in ``discrepancies.jsonl``), so the page stays openable."""
    counts = result.counts_by_kind()
    amounts = result.amount_by_kind()
    owed = result.owed_totals()
    esc = html.escape
    out: list[str] = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width,initial-scale=1'>",
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<header><h1>{esc(title)}</h1>",
        f"<p>{result.terminal_days} terminal-days, {result.transactions:,} EJ transactions, "
        f"{result.host_messages:,} host messages, {len(result.discrepancies)} findings.</p>",
        "</header><main>",
        "<section class='cards'>",
        f"<div class='card'>Owed to customers<b class='owed-customer'>"
        f"{esc(money(owed['customer']))}</b></div>",
        f"<div class='card'>Bank at risk<b class='owed-bank'>{esc(money(owed['bank']))}</b></div>",
        f"<div class='card'>Findings<b>{len(result.discrepancies)}</b></div>",
        f"<div class='card'>Skipped lines/records<b>{len(result.skipped)}</b></div>",
        "</section>",
        "<h2>By kind</h2>",
        _bar_chart(
            "Findings by kind",
            [(kind, count, str(count)) for kind, count in counts.items()],
            "count",
        ),
        _bar_chart(
            "Amount at stake by kind",
            [(kind, amount / 100, money(amount)) for kind, amount in amounts.items()],
            "USD",
        ),
    ]
    per_terminal: dict[str, int] = {}
    for item in result.discrepancies:
        per_terminal[item.terminal_id] = per_terminal.get(item.terminal_id, 0) + 1
    top = sorted(per_terminal.items(), key=lambda pair: (-pair[1], pair[0]))[:20]
    out.append(
        _bar_chart("Findings per terminal (top 20)", [(t, n, str(n)) for t, n in top], "count")
    )
    out.append("<h2>Cash settlement by denomination</h2>")
    denominations = by_denomination(result.settlement)
    if denominations:
        out.append(
            "<table><tr><th class='num'>denomination</th><th class='num'>notes over (+) / "
            "short (-)</th><th class='num'>amount</th></tr>"
        )
        for value, total in denominations.items():
            out.append(
                f"<tr><td class='num'>{value}</td><td class='num'>{total['notes']:+d}</td>"
                f"<td class='num'>{esc(money(total['amount_minor']))}</td></tr>"
            )
        out.append("</table>")
    else:
        out.append("<p>No cassette difference in the closed replenishment cycles.</p>")
    out.append(
        "<details><summary>Settlement per cycle and cassette "
        f"({len(result.settlement)} rows)</summary><table><tr>"
        + "".join(f"<th>{esc(name)}</th>" for name in SETTLEMENT_COLUMNS)
        + "</tr>"
    )
    # the texts escaped; the counts (numbers, flags or None) written by repr() per row
    texts = escape_each(
        [text for row in result.settlement for text in _settlement_texts(row)], html.escape
    )
    width = len(_SETTLEMENT_TEXTS)
    for index, row in enumerate(result.settlement):
        numbers = repr(_settlement_counts(row))[1:-1].replace(", ", "</td><td>")
        out.append(
            "<tr><td>"
            + "</td><td>".join(texts[index * width : (index + 1) * width])
            + "</td><td>"
            + numbers.replace("None", "")
            + "</td></tr>"
        )
    out.append("</table></details>")
    out.append(
        "<h2>Findings</h2><table><tr><th>terminal</th><th>date</th><th>time</th>"
        "<th>kind</th><th>STAN</th><th class='num'>amount</th><th>owed to</th>"
        "<th>action</th><th>deadline</th></tr>"
    )
    cells = escape_each(
        [
            text
            for item in result.discrepancies
            for text in (
                item.terminal_id,
                item.business_date,
                item.local_time or "",
                item.kind,
                item.stan or "",
                money(item.amount_minor, item.currency),
                item.owed_to,
                item.owed_to,
                item.suggested_action,
                item.dispute_deadline or "",
            )
        ],
        html.escape,
    )
    width = _FINDING_ROW.count("{}")
    for index, item in enumerate(result.discrepancies):
        out.append(_FINDING_ROW.format(*cells[index * width : (index + 1) * width]))
        if index < evidence_limit:
            out.append(f"<tr><td colspan='9'>{_evidence_html(item)}</td></tr>")
    out.append("</table>")
    if len(result.discrepancies) > evidence_limit:
        out.append(
            f"<p>Evidence is shown for the first {evidence_limit} findings; "
            "discrepancies.jsonl has it for all.</p>"
        )
    if result.skipped:
        out.append(
            f"<h2>Skipped lines and records ({len(result.skipped)})</h2><table>"
            "<tr><th>source</th><th class='num'>line</th><th>reason</th><th>text</th></tr>"
        )
        for line in result.skipped[:2000]:
            out.append(
                f"<tr><td>{esc(line.source)}</td><td class='num'>{line.line}</td>"
                f"<td>{esc(line.reason)}</td><td><code>{esc(line.text)}</code></td></tr>"
            )
        out.append("</table>")
        if len(result.skipped) > 2000:
            out.append(f"<p>{len(result.skipped) - 2000} more in summary.json.</p>")
    if result.observations or result.ignored_files:
        out.append("<h2>Observations</h2><ul>")
        out.extend(f"<li>{esc(text)}</li>" for text in result.observations)
        out.extend(
            f"<li>{esc(name)}: ignored ({esc(why)})</li>" for name, why in result.ignored_files
        )
        out.append("</ul>")
    out.append("</main></body></html>")
    return "\n".join(out)


_FINDING_ROW = (
    "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class='num'>{}</td>"
    "<td class='owed-{}'>{}</td><td>{}</td><td>{}</td></tr>"
)


def _evidence_html(item: Discrepancy) -> str:
    esc = html.escape

    def text(value: str) -> str:  # element content: quotes need no escaping
        return html.escape(value, quote=False)

    evidence = item.evidence
    parts = [f"<details><summary>{esc(item.detail.get('text', 'evidence'))}</summary>"]
    if evidence.ej_excerpt:
        parts.append(f"<p>EJ {esc(evidence.ej_location)}</p><pre>{text(evidence.ej_excerpt)}</pre>")
    if evidence.paper_excerpt:
        parts.append(
            f"<p>Paper {esc(evidence.paper_location)}</p><pre>{text(evidence.paper_excerpt)}</pre>"
        )
    if evidence.host_messages:
        parts.append("<p>Host messages</p><pre>")
        parts.extend(text(_compact(message)) + "\n" for message in evidence.host_messages)
        parts.append("</pre>")
    if evidence.counters:
        parts.append(f"<p>Counters</p><pre>{text(_counters_text(evidence.counters))}</pre>")
    parts.append("</details>")
    return "".join(parts)


def _compact(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def _counters_text(counters: dict[str, Any]) -> str:
    """Counters snapshots one line per snapshot and per cash unit (compact JSON)."""
    lines: list[str] = []
    for name, snapshot in counters.items():
        if isinstance(snapshot, dict) and isinstance(snapshot.get("cash_units"), list):
            head = {key: value for key, value in snapshot.items() if key != "cash_units"}
            lines.append(f"{name}: {_compact(head)}")
            lines.extend(f"  {_compact(unit)}" for unit in snapshot["cash_units"])
        else:
            lines.append(f"{name}: {_compact(snapshot)}")
    return "\n".join(lines)


def write_html(result: RunResult, path: Path) -> Path:
    path.write_text(render_html(result), encoding="utf-8")
    return path


def write_reports(result: RunResult, folder: Path, *, fork: bool = False) -> list[Path]:
    """Write every report file into ``folder`` (created if needed).

    With ``fork`` (where the system has it), a forked child writes the two CSV
    files and the workbook, which share their rows, while this process writes
    the JSON lines, the summary and the HTML page, so that a large run's reports
    take about half the time on two cores. The child only formats and writes
    files; if it fails for any reason, this process writes those files itself,
    so that an error is raised here as without ``fork``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    xlsx = folder / "report.xlsx"
    tables = [folder / name for name in CSV_FILES]

    def write_tables() -> None:
        rows = _rows(result)  # the flat rows of the CSV and the workbook, made once
        write_csv(result, folder, rows=rows)
        write_xlsx(result, xlsx, rows=rows)

    child = _forked(write_tables) if fork and hasattr(os, "fork") else None
    try:
        paths = [
            write_jsonl(result, folder / "discrepancies.jsonl"),
            write_summary(result, folder / "summary.json"),
            write_html(result, folder / "report.html"),
        ]
    finally:
        done = child is not None and os.waitpid(child, 0)[1] == 0
    if not done:
        write_tables()
    return [*paths[:2], *tables, xlsx, paths[2]]


def _forked(work: Callable[[], None]) -> int | None:
    """Run ``work`` in a forked child; its process id, or ``None`` if none could start."""
    try:
        pid = os.fork()
    except OSError:
        return None
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid
