"""Exports of a filtered list of discrepancies (a whole run is the filter ``run_id``).

CSV and XLSX carry one row per discrepancy with the columns of the library's
``discrepancies.csv`` plus where the team stands (status, by whom, when, the
last note); JSONL carries the whole record, evidence included, in the shape
of the library's ``discrepancies.jsonl`` plus ``id``, ``run_id`` and
``status``. Amounts stay integers in minor units; the XLSX also shows them in
major units, computed with integer arithmetic.

The file is written to a spooled temporary file (memory first, disk past
16 MiB) while the rows are read in batches, each in a transaction of its own,
and then streamed: no database session is held while the client downloads.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import xlsxwriter
from sqlmodel import Session

from atm_service.errors import InvalidInput
from atm_service.models.reconciliation import ReconDiscrepancy
from atm_service.services import discrepancies
from atm_service.services.discrepancies import DiscrepancyFilter

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "jsonl": "application/x-ndjson",
}
COLUMNS = (
    "id",
    "run_id",
    "terminal_id",
    "business_date",
    "local_time",
    "kind",
    "stan",
    "rrn",
    "amount_minor",
    "currency",
    "owed_to",
    "suggested_action",
    "dispute_deadline",
    "scheme",
    "text",
    "detail",
    "ej_location",
    "paper_location",
    "status",
    "status_by",
    "status_at",
    "note",
)
SPOOL_BYTES = 16 * 1024 * 1024
CHUNK_BYTES = 64 * 1024


@dataclass
class Export:
    """A finished export: the file (positioned at its start), its type and a file name."""

    file: IO[bytes]
    media_type: str
    filename: str

    def chunks(self) -> Iterator[bytes]:
        try:
            while chunk := self.file.read(CHUNK_BYTES):
                yield chunk
        finally:
            self.file.close()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


def row(item: ReconDiscrepancy) -> list[Any]:
    detail = {key: value for key, value in item.detail.items() if key != "text"}
    evidence = item.evidence or {}
    return [
        item.id,
        item.run_id,
        item.terminal_id,
        item.business_date.isoformat(),
        item.local_time or "",
        item.kind,
        item.stan or "",
        item.rrn or "",
        item.amount_minor,
        item.currency,
        item.owed_to,
        item.suggested_action,
        _text(item.dispute_deadline),
        item.scheme or "",
        str(item.detail.get("text", "")),
        json.dumps(detail, sort_keys=True),
        str(evidence.get("ej_location", "")),
        str(evidence.get("paper_location", "")),
        item.status.value,
        item.status_by,
        _text(item.status_at),
        item.note,
    ]


def record(item: ReconDiscrepancy) -> dict[str, Any]:
    """One JSONL line: the library's shape plus id, run and status."""
    return {
        "id": item.id,
        "run_id": item.run_id,
        "terminal_id": item.terminal_id,
        "business_date": item.business_date.isoformat(),
        "kind": item.kind,
        "stan": item.stan,
        "rrn": item.rrn,
        "amount_minor": item.amount_minor,
        "currency": item.currency,
        "owed_to": item.owed_to,
        "suggested_action": item.suggested_action,
        "dispute_deadline": _text(item.dispute_deadline) or None,
        "scheme": item.scheme,
        "local_time": item.local_time,
        "detail": item.detail,
        "evidence": item.evidence,
        "status": item.status.value,
        "status_by": item.status_by or None,
        "status_at": _text(item.status_at) or None,
        "note": item.note or None,
    }


def _rows(batches: Iterable[list[ReconDiscrepancy]]) -> Iterator[ReconDiscrepancy]:
    for batch in batches:
        yield from batch


def write_csv(items: Iterable[ReconDiscrepancy], out: IO[bytes]) -> None:
    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    writer = csv.writer(text)
    writer.writerow(COLUMNS)
    for item in items:
        writer.writerow(row(item))
    text.flush()
    text.detach()


def write_jsonl(items: Iterable[ReconDiscrepancy], out: IO[bytes]) -> None:
    for item in items:
        out.write(json.dumps(record(item), ensure_ascii=False).encode() + b"\n")


def _major(minor: int) -> str:
    sign = "-" if minor < 0 else ""
    whole, cents = divmod(abs(minor), 100)
    return f"{sign}{whole}.{cents:02d}"


def write_xlsx(items: Iterable[ReconDiscrepancy], out: IO[bytes]) -> None:
    workbook = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_numbers": False})
    try:
        bold = workbook.add_format({"bold": True})
        sheet = workbook.add_worksheet("Discrepancies")
        header = [*COLUMNS[:9], "amount", *COLUMNS[9:]]
        sheet.write_row(0, 0, header, bold)
        count = 0
        for count, item in enumerate(items, start=1):
            values = row(item)
            values.insert(9, _major(item.amount_minor))
            for column, value in enumerate(values):
                if column in (0, 1, 8):
                    sheet.write_number(count, column, value)
                else:
                    sheet.write_string(count, column, str(value))
        sheet.autofilter(0, 0, max(count, 1), len(header) - 1)
        sheet.freeze_panes(1, 0)
        sheet.set_column(0, len(header) - 1, 14)
    finally:
        workbook.close()


def export(
    session: Session, where: DiscrepancyFilter, *, fmt: str, sort: str = "position"
) -> Export:
    """The filtered discrepancies as ``fmt`` (csv, xlsx or jsonl)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}.", field="format")
    where.check()
    batches = discrepancies.batches(session, where, sort=sort, with_evidence=fmt == "jsonl")
    out: IO[bytes] = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
    try:
        items = _rows(batches)
        if fmt == "csv":
            write_csv(items, out)
        elif fmt == "jsonl":
            write_jsonl(items, out)
        else:
            write_xlsx(items, out)
    except BaseException:
        out.close()
        raise
    out.seek(0)
    stem = f"discrepancies-run-{where.run_id}" if where.run_id else "discrepancies"
    return Export(out, FORMATS[fmt], f"{stem}.{fmt}")
