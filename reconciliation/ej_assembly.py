"""What both EJ dialects do alike once a piece of journal is recognised.

The dialects differ in how a transaction block reads, not in what follows:
a counters printout becomes its title's event with the table, a device line
becomes an event, an unknown device line sends the stretch to the
line-by-line parser. This module holds that common part, so that a dialect
module is left with its patterns and its transaction fields.

The fast scan calls ``convert`` once per match, so the dialect's own code is
entered once per transaction block and never per line; counters printouts
and device lines are turned into records here without a further call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from reconciliation.ej_events import event_code
from reconciliation.model import CountersTable, EjEvent, EjTransaction

# ``re.Match.groups()``: ``None`` for a group that took no part in the match
Groups = tuple[bytes | Any, ...]
CountersRow = tuple[int, int, int, int, int, int, int]

AddTransaction = Callable[
    [Groups, bytes, int, int, int, int, list[EjTransaction], list[EjEvent]], None
]
"""A dialect's block reader: ``(groups, buffer, start, end, line, lines_in,
transactions, events)``; appends the block's transaction and any event inside it."""

Convert = Callable[[re.Match[bytes], bytes, int, int, list[EjTransaction], list[EjEvent]], bool]

Scanned = tuple[int, int, int, "EjTransaction | re.Match[bytes]"]
"""What the whole-buffer scan finds: ``(start, end, lines, found)``, ``found`` being a
transaction block's record already made or the pattern's match to convert."""
Skip = Callable[[int, str, bytes], None]

_COUNTERS_CODES = ("counters_before", "counters_after")


def converter(
    fast: re.Pattern[bytes],
    add_transaction: AddTransaction,
    counters_rows: Callable[[bytes], tuple[CountersRow, ...]],
) -> Convert:
    """The ``convert`` of a dialect whose fast pattern ``fast`` has three alternatives.

    ``fast`` must name the groups ``stan`` (set for a transaction block),
    ``ct``, ``ctitle``, ``crows``, ``crej``, ``cret`` (a counters printout: its
    time, title, rows, reject and retract bins) and ``et``, ``ev`` (a device
    line: time and text). ``counters_rows`` reads the printout's rows.
    """
    index = {name: number - 1 for name, number in fast.groupindex.items()}
    g_stan, g_ct, g_ctitle, g_crows, g_crej, g_cret, g_et, g_ev = (
        index[name] for name in ("stan", "ct", "ctitle", "crows", "crej", "cret", "et", "ev")
    )

    def convert(
        match: re.Match[bytes],
        buffer: bytes,
        line: int,
        lines_in: int,
        transactions: list[EjTransaction],
        events: list[EjEvent],
    ) -> bool:
        """Turn one fast-scan match into records; ``False`` for an unknown device event."""
        start, end = match.start(), match.end()
        g = match.groups()
        if g[g_stan] is not None:
            add_transaction(g, buffer, start, end, line, lines_in, transactions, events)
        elif g[g_ct] is not None:
            code = event_code(g[g_ctitle])
            assert code is not None
            events.append(
                EjEvent(
                    g[g_ct].decode(),
                    code[0],
                    0,
                    line,
                    start,
                    end,
                    CountersTable(counters_rows(g[g_crows]), int(g[g_crej]), int(g[g_cret])),
                )
            )
        else:
            code = event_code(g[g_ev])
            if code is None or code[0] in _COUNTERS_CODES:
                return False  # unknown, or a printout title without its table
            events.append(EjEvent(g[g_et].decode(), code[0], code[1], line, start, end, None))
        return True

    return convert


CompiledScan = Callable[[bytes, type[EjTransaction], re.Pattern[bytes]], list[Scanned]]


def scan(
    fast: re.Pattern[bytes], buffer: bytes, compiled: CompiledScan | None = None
) -> list[Scanned]:
    """What ``fast.finditer(buffer)`` finds, as ``(start, end, lines, found)``.

    With a dialect's ``compiled`` reader (``reconciliation/csrc/ej.c``, where the
    package was built with it), ``found`` is the record of each well-formed
    transaction block, read as the dialect's ``_transaction`` reads its match,
    and the match of everything else; otherwise always the match. ``buffer``
    ends with a newline.
    """
    if compiled is not None:
        return compiled(buffer, EjTransaction, fast)
    count = buffer.count
    return [
        (match.start(), match.end(), count(b"\n", match.start(), match.end()), match)
        for match in fast.finditer(buffer)
    ]


def parse_fast(
    fast: re.Pattern[bytes], convert: Convert, buffer: bytes
) -> tuple[list[EjTransaction], list[EjEvent], int] | None:
    """Whole-buffer scan; ``None`` when the matches do not tile the buffer.

    ``buffer`` must end with a newline. Returns transactions, events and the
    number of lines.
    """
    transactions: list[EjTransaction] = []
    events: list[EjEvent] = []
    position = 0
    line = 1
    count = buffer.count
    for match in fast.finditer(buffer):
        start, end = match.start(), match.end()
        if start != position:
            return None
        lines_in = count(b"\n", start, end)
        if not convert(match, buffer, line, lines_in, transactions, events):
            return None
        line += lines_in
        position = end
    if position != len(buffer):
        return None
    return transactions, events, line - 1


def keep_block(
    transaction: EjTransaction | None,
    lines: list[tuple[int, bytes]],
    transactions: list[EjTransaction],
    skip: Skip,
) -> None:
    """Keep a finished block's transaction, or skip its lines when it had none."""
    if transaction is None:
        for number, raw in lines:
            skip(number, "transaction block without a readable STAN or RRN", raw)
    else:
        transactions.append(transaction)


class CountersPrintout:
    """A counters printout read line by line, from its title line on.

    Complete (four rows and both bins), it becomes the title's event with the
    table, ending after its last line; otherwise each of its lines is skipped.
    """

    __slots__ = ("end", "event", "members", "reject", "retract", "rows", "title")

    def __init__(self, event: EjEvent, number: int, raw: bytes) -> None:
        self.event = event
        self.title = (number, raw)
        self.members: list[tuple[int, bytes]] = []  # the lines after the title
        self.rows: dict[int, CountersRow] = {}
        self.reject: int | None = None
        self.retract: int | None = None
        self.end = event.end

    def take_row(self, number: int, raw: bytes, unit: bytes, values: bytes) -> None:
        """A row: the unit number, then its six counts as text."""
        counts = [int(value) for value in values.split()]
        self.rows[int(unit)] = (
            int(unit),
            counts[0],
            counts[1],
            counts[2],
            counts[3],
            counts[4],
            counts[5],
        )
        self.members.append((number, raw))

    def close(self, events: list[EjEvent], skip: Skip) -> None:
        if len(self.rows) == 4 and self.reject is not None and self.retract is not None:
            table = CountersTable(
                tuple(self.rows[unit] for unit in sorted(self.rows)), self.reject, self.retract
            )
            events.append(self.event._replace(counters=table, end=self.end))
        else:
            for number, raw in (self.title, *self.members):
                skip(number, "incomplete counters printout", raw)
