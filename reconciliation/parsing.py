"""Parse the bytes of one source of any format.

A batch reads each of its sources (a path, or bytes for in-memory sources) and
hands the bytes here; a file that cannot be read at all is the batch's to
report, so the run goes on without it.
"""

from __future__ import annotations

from datetime import date

from reconciliation.counters import parse_counters
from reconciliation.ej import parse_ej
from reconciliation.host_csv import parse_csv
from reconciliation.host_iso import parse_iso
from reconciliation.model import CountersParse, EjParse, HostParse, PaperParse
from reconciliation.paper import parse_paper
from reconciliation.sources import Source

Parsed = EjParse | PaperParse | CountersParse | HostParse


def parse_bytes(source: Source, buffer: bytes) -> Parsed:
    """Parse the bytes of one source, already read."""
    if source.kind == "ej":
        return parse_ej(
            buffer,
            source=source.name,
            terminal_id=source.terminal_id,
            business_date=source.business_date,
            dialect=source.dialect,
        )
    if source.kind == "paper":
        return parse_paper(
            buffer,
            source=source.name,
            terminal_id=source.terminal_id,
            business_date=source.business_date,
        )
    if source.kind == "counters":
        return parse_counters(
            buffer,
            source=source.name,
            terminal_id=source.terminal_id,
            business_date=source.business_date,
        )
    if source.kind == "iso":
        return parse_iso(
            buffer, source=source.name, file_date=date.fromisoformat(source.business_date)
        )
    return parse_csv(buffer, source=source.name)
