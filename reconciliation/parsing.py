"""Parse one source of any format; the unit of work handed to worker processes.

Workers receive :class:`~reconciliation.sources.Source` descriptions (a path,
or bytes for in-memory sources) and send back the parsed records; a file that
cannot be read at all comes back as :class:`Unreadable` instead of stopping
the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from reconciliation.counters import parse_counters
from reconciliation.ej import parse_ej
from reconciliation.errors import SourceUnreadable
from reconciliation.host_csv import parse_csv
from reconciliation.host_iso import parse_iso
from reconciliation.model import CountersParse, EjParse, HostParse, PaperParse
from reconciliation.paper import parse_paper
from reconciliation.sources import Source

Parsed = EjParse | PaperParse | CountersParse | HostParse


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A source whose bytes could not be read."""

    name: str
    kind: str
    reason: str


def parse_source(source: Source) -> Parsed | Unreadable:
    """Read and parse one source. Content problems never raise."""
    try:
        buffer = source.read()
    except SourceUnreadable as exc:
        return Unreadable(source.name, source.kind, exc.message)
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


def parse_batch(sources: list[Source]) -> list[Parsed | Unreadable]:
    """Parse several sources in order (one worker task)."""
    return [parse_source(source) for source in sources]
