"""Parser for the NDC electronic-journal dialect (NCR APTRA Advance NDC style).

Two paths produce the same records:

* the fast path scans the whole buffer with one compiled pattern that matches a
  complete, well-formed transaction block, a counters printout or a device
  line. When the matches tile the file exactly (the common case), every line
  is used and nothing is looked at twice. Where the package was built with its
  compiled readers (``reconciliation/csrc/ej.c``), those read the well-formed
  transaction blocks, taking exactly what the pattern takes, and the pattern
  the rest (:func:`scan`);
* otherwise the file goes through the line-by-line state machine, which
  accepts truncated blocks (power failures), receipts whose opening lines are
  missing and stray garbage, and reports each line it cannot use with its
  number and a reason.

The tests check that both paths agree on every well-formed file.
"""

from __future__ import annotations

import re

from reconciliation import ej_assembly
from reconciliation.ej_assembly import (
    CountersPrintout,
    CountersRow,
    Groups,
    Scanned,
    converter,
    keep_block,
)
from reconciliation.ej_events import event_code
from reconciliation.model import (
    NO_NOTES,
    EjEvent,
    EjTransaction,
    Notes,
    SkippedLine,
)
from reconciliation.textutil import minor_units, notes_csv, printable

try:
    from reconciliation._speedups import ndc_scan as _compiled_scan
except ImportError:  # built without a C compiler: the pattern alone
    _compiled_scan = None  # type: ignore[assignment]

_BLOCK = (
    rb"^Card\ Inserted\ \((?P<bin>\d{6})XXXXXX(?P<last4>\d{4})\)\n"
    rb"Transaction\ Request\ \[(?P<opcode>[^\]\n]{8})\]\n"
    rb"Transaction\ Reply\ (?:\[Host\ Seq\.No\.:\ \d{4}\]|Timeout)\n"
    rb"Next\ State\ \[\d{3}\]\ Function\ \[\w+\]\n"
    rb"(?:Dispense\ Type[1-4]\ =\ \d+\ notes\n)*"
    rb"(?P<rej>(?:Reject\ Type[1-4]\ =\ \d+\ notes\n)*)"
    rb"Card\ Ejected\n"
    rb"(?P<out>(?:(?:DISPENSE\ ERROR|Cash\ Present|Cash\ Taken|Cash\ Retracted"
    rb"|POWER\ INTERRUPTION\ DURING\ DISPENSE)\n)*)"
    rb"(?:(?<=POWER\ INTERRUPTION\ DURING\ DISPENSE\n)(?P<pu>\d\d:\d\d:\d\d)\ POWER\ UP\n)?"
    rb"\ \*{5}START\*{5}\n"
    rb"\ DATE/TIME\ :\ \d{4}-\d\d-\d\d\ (?P<time>\d\d:\d\d:\d\d)\n"
    rb"\ TERMINAL\ \ :\ \S+\n"
    rb"\ SEQ\ NO\ \ \ \ :\ (?P<seq>\d{4})\n"
    rb"\ TRACE\ \ \ \ \ :\ (?P<stan>\d{6})\n"
    rb"\ RRN\ \ \ \ \ \ \ :\ (?P<rrn>\d{12})\n"
    rb"\ CARD\ NO\ \ \ :\ (?P<card>\d{6}\*{6}\d{4})\n"
    rb"\ RESP\ CODE\ :\ (?P<rc>\w\w)\n"
    rb"\ TRN\ TYPE\ \ :\ (?P<trn>CASH\ WITHDRAWAL|BALANCE\ INQUIRY)\n"
    rb"(?:\ AMT\ AUTH\ \ :\ (?P<auth>\d+\.\d\d)\n)?"
    rb"(?:\ DISPENSED\ :\ 1:(?P<d1>\d\d)\ 2:(?P<d2>\d\d)\ 3:(?P<d3>\d\d)\ 4:(?P<d4>\d\d)\n)?"
    rb"(?:\ NOTES\ RETRACTED\ :\ (?P<retr>\d+,\d+,\d+,\d+)\n)?"
    rb"(?:\ AMT\ REQ\ \ \ :\ (?P<req>\d+\.\d\d)\n)?"
    rb"(?:\ AVAIL\ BAL\ :\ \d+\.\d\d\n)?"
    rb"\ \*{5}END\*{5}\n"
    rb"(?:\*\d{4}\*1\*E\*(?P<st>\d)\d{8},M-\d\d,R-\d{5}\n)?"
)
_COUNTERS = (
    rb"^(?P<ct>\d\d:\d\d:\d\d)\ (?P<ctitle>COUNTERS\ (?:BEFORE|AFTER)\ EXCHANGE)\n"
    rb"\ TYPE\ DENOM\ LOADED\ DISPENSED\ REJECTED\ RETRACTED\ REMAINING\n"
    rb"(?P<crows>(?:\ [1-4](?:\ +\d+){6}\n){4})"
    rb"\ REJECT\ BIN\ \ :\ (?P<crej>\d+)\n"
    rb"\ RETRACT\ BIN\ :\ (?P<cret>\d+)\n"
)
_EVENT = rb"^(?P<et>\d\d:\d\d:\d\d)\ (?P<ev>[A-Z][A-Z0-9 ]*)\n"

FAST = re.compile(b"(?:" + _BLOCK + b")|(?:" + _COUNTERS + b")|(?:" + _EVENT + b")", re.M)
_G = {name: index - 1 for name, index in FAST.groupindex.items()}
_G_BIN, _G_LAST4, _G_OPCODE, _G_REJ, _G_OUT, _G_PU = (
    _G["bin"],
    _G["last4"],
    _G["opcode"],
    _G["rej"],
    _G["out"],
    _G["pu"],
)
_G_TIME, _G_SEQ, _G_STAN, _G_RRN, _G_CARD, _G_RC, _G_TRN = (
    _G["time"],
    _G["seq"],
    _G["stan"],
    _G["rrn"],
    _G["card"],
    _G["rc"],
    _G["trn"],
)
_G_AUTH, _G_D1, _G_RETR, _G_REQ, _G_ST = _G["auth"], _G["d1"], _G["retr"], _G["req"], _G["st"]

_REJECT_LINE = re.compile(rb"Reject Type([1-4]) = (\d+) notes")
_OPCODES = {b" A    AD": "withdrawal", b" B    AD": "balance"}
_TRN_TYPES = {b"CASH WITHDRAWAL": "withdrawal", b"BALANCE INQUIRY": "balance"}
_STATUS_OUTCOME = {"0": "taken", "1": "short", "2": "none", "3": "power", "5": "retracted"}


def outcome_of(lines: bytes) -> str:
    """The cash outcome of an approved withdrawal from its outcome lines."""
    if b"POWER INTERRUPTION" in lines:
        return "power"
    if b"Cash Retracted" in lines:
        return "retracted"
    if b"DISPENSE ERROR" in lines:
        return "short" if b"Cash Taken" in lines or b"Cash Present" in lines else "none"
    if b"Cash Taken" in lines:
        return "taken"
    return ""


def _rejects(text: bytes) -> Notes:
    if not text:
        return NO_NOTES
    counts = [0, 0, 0, 0]
    for unit, notes in _REJECT_LINE.findall(text):
        counts[int(unit) - 1] += int(notes)
    return (counts[0], counts[1], counts[2], counts[3])


def _counters_rows(rows: bytes) -> tuple[CountersRow, ...]:
    table = []
    for row in rows.split(b"\n"):
        if row.strip():
            values = [int(value) for value in row.split()]
            table.append(
                (values[0], values[1], values[2], values[3], values[4], values[5], values[6])
            )
    return tuple(table)


def _transaction(g: Groups, start: int, end: int, line: int, lines_in: int) -> EjTransaction:
    """A well-formed block's transaction (as the compiled reader of ``scan`` makes it)."""
    trn = _TRN_TYPES[g[_G_TRN]]
    rc = g[_G_RC].decode()
    auth = g[_G_AUTH]
    req = g[_G_REQ]
    # the pattern admits only ``\d+\.\d\d`` here: the digits without the point are cents
    amount = int((auth if auth is not None else req or b"0").replace(b".", b""))
    d1 = g[_G_D1]
    dispensed = (
        NO_NOTES
        if d1 is None
        else (int(d1), int(g[_G_D1 + 1]), int(g[_G_D1 + 2]), int(g[_G_D1 + 3]))
    )
    retr = g[_G_RETR]
    out = g[_G_OUT]
    outcome = outcome_of(out) if (rc == "00" and trn == "withdrawal") else ""
    if not outcome and rc == "00" and trn == "withdrawal" and g[_G_ST] is not None:
        outcome = _STATUS_OUTCOME.get(g[_G_ST].decode(), "")
    return EjTransaction(
        g[_G_STAN].decode(),
        g[_G_RRN].decode(),
        g[_G_SEQ].decode(),
        g[_G_TIME].decode(),
        g[_G_CARD].decode(),
        trn,
        rc,
        amount,
        outcome,
        dispensed,
        NO_NOTES if retr is None else notes_csv(retr),
        _rejects(g[_G_REJ]),
        "" if g[_G_ST] is None else g[_G_ST].decode(),
        False,
        start,
        end,
        line,
        line + lines_in - 1,
    )


def _add_transaction(
    g: Groups,
    buffer: bytes,
    start: int,
    end: int,
    line: int,
    lines_in: int,
    transactions: list[EjTransaction],
    events: list[EjEvent],
) -> None:
    """A well-formed block's transaction, and the power-up of an interrupted dispense."""
    transactions.append(_transaction(g, start, end, line, lines_in))
    pu = g[_G_PU]
    if pu is not None:
        offset = buffer.find(b" POWER UP\n", start, end) - 8
        pu_line = line + buffer.count(b"\n", start, offset)
        events.append(EjEvent(pu.decode(), "power_up", 0, pu_line, offset, offset + 18, None))


convert = converter(FAST, _add_transaction, _counters_rows)


def scan(buffer: bytes) -> list[Scanned]:
    """:func:`reconciliation.ej_assembly.scan` with this dialect's pattern and reader."""
    return ej_assembly.scan(FAST, buffer, _compiled_scan)


def parse_fast(
    buffer: bytes,
) -> tuple[list[EjTransaction], list[EjEvent], int] | None:
    """Whole-buffer scan; ``None`` when the matches do not tile the buffer.

    ``buffer`` must end with a newline. Returns transactions, events and the
    number of lines.
    """
    return ej_assembly.parse_fast(FAST, convert, buffer)


# --- the line-by-line state machine -------------------------------------------------

_L_CARD = re.compile(rb"Card Inserted \((\d{6})XXXXXX(\d{4})\)")
_L_REQUEST = re.compile(rb"Transaction Request \[(.{8})\]")
_L_REPLY = re.compile(rb"Transaction Reply (?:\[Host Seq\.No\.: (\d{4})\]|(Timeout))")
_L_STATE = re.compile(rb"Next State \[(\d{3})\] Function \[(\w+)\]")
_L_DISPENSE = re.compile(rb"Dispense Type([1-4]) = (\d+) notes")
_L_REJECT = re.compile(rb"Reject Type([1-4]) = (\d+) notes")
_L_OUTCOME = frozenset(
    (
        b"DISPENSE ERROR",
        b"Cash Present",
        b"Cash Taken",
        b"Cash Retracted",
        b"POWER INTERRUPTION DURING DISPENSE",
    )
)
_L_EVENT = re.compile(rb"(\d\d:\d\d:\d\d) ([A-Z][A-Z0-9 ]*)")
_L_FIELD = re.compile(rb" ([A-Z/ ]+?) *: (.*)")
_L_STATUS = re.compile(rb"\*(\d{4})\*1\*E\*(\d)(\d{8}),M-(\d\d),R-(\d{5})")
_L_COUNTER_ROW = re.compile(rb" ([1-4])((?: +\d+){6})")
_L_COUNTER_BIN = re.compile(rb" (REJECT|RETRACT) BIN *: (\d+)")
_COUNTERS_HEADER = b" TYPE DENOM LOADED DISPENSED REJECTED RETRACTED REMAINING"
_START = b" *****START*****"
_END = b" *****END*****"

_RECEIPT_FIELDS = {
    b"DATE/TIME": re.compile(rb"(\d{4}-\d\d-\d\d) (\d\d:\d\d:\d\d)"),
    b"TERMINAL": re.compile(rb"(\S{1,16})"),
    b"SEQ NO": re.compile(rb"(\d{4})"),
    b"TRACE": re.compile(rb"(\d{6})"),
    b"RRN": re.compile(rb"(\d{12})"),
    b"CARD NO": re.compile(rb"(\d{6}\*{6}\d{4})"),
    b"RESP CODE": re.compile(rb"(\w\w)"),
    b"TRN TYPE": re.compile(rb"(CASH WITHDRAWAL|BALANCE INQUIRY)"),
    b"AMT AUTH": re.compile(rb"(\d+\.\d\d)"),
    b"DISPENSED": re.compile(rb"1:(\d\d) 2:(\d\d) 3:(\d\d) 4:(\d\d)"),
    b"NOTES RETRACTED": re.compile(rb"(\d+,\d+,\d+,\d+)"),
    b"AMT REQ": re.compile(rb"(\d+\.\d\d)"),
    b"AVAIL BAL": re.compile(rb"(\d+\.\d\d)"),
}


class _Block:
    """A transaction block being assembled by the state machine."""

    __slots__ = (
        "card",
        "end",
        "fields",
        "first_line",
        "last_line",
        "lines",
        "opcode",
        "outcome",
        "receipt_done",
        "rejects",
        "start",
        "status",
        "timeout",
    )

    def __init__(self, line: int, start: int) -> None:
        self.first_line = line
        self.last_line = line
        self.start = start
        self.end = start
        self.card = ""
        self.opcode = b""
        self.timeout = False
        self.outcome = b""
        self.rejects = [0, 0, 0, 0]
        self.fields: dict[bytes, tuple[bytes, ...]] = {}
        self.receipt_done = False
        self.status = ""
        self.lines: list[tuple[int, bytes]] = []


def parse_slow(
    buffer: bytes, source: str
) -> tuple[list[EjTransaction], list[EjEvent], list[SkippedLine], int]:
    """The tolerant line-by-line parser. Never raises on content."""
    transactions: list[EjTransaction] = []
    events: list[EjEvent] = []
    skipped: list[SkippedLine] = []
    block: _Block | None = None
    in_receipt = False
    counters: CountersPrintout | None = None  # the printout being read

    def skip(number: int, reason: str, raw: bytes) -> None:
        skipped.append(SkippedLine(source, number, reason, printable(raw)))

    def close_block() -> None:
        nonlocal block, in_receipt
        if block is None:
            return
        finished = block
        block = None
        if in_receipt and finished.fields:
            finished.receipt_done = True  # its END line was lost
        in_receipt = False
        keep_block(_finish(finished), finished.lines, transactions, skip)

    def close_counters() -> None:
        nonlocal counters
        if counters is not None:
            counters.close(events, skip)
            counters = None

    offset = 0
    number = 0
    length = len(buffer)
    while offset < length:
        newline = buffer.find(b"\n", offset)
        if newline == -1:
            newline = length
        raw = buffer[offset:newline]
        line_start = offset
        offset = newline + 1
        number += 1
        text = raw.rstrip(b"\r")

        if counters is not None:
            if text == _COUNTERS_HEADER and not counters.members:
                counters.members.append((number, raw))
                continue
            row = _L_COUNTER_ROW.fullmatch(text)
            if row is not None:
                counters.take_row(number, raw, row.group(1), row.group(2))
                continue
            bin_line = _L_COUNTER_BIN.fullmatch(text)
            if bin_line is not None:
                counters.members.append((number, raw))
                counters.end = offset
                if bin_line.group(1) == b"REJECT":
                    counters.reject = int(bin_line.group(2))
                else:
                    counters.retract = int(bin_line.group(2))
                    close_counters()
                continue
            close_counters()

        if not text.strip():
            skip(number, "empty line", raw)
            continue

        card = _L_CARD.fullmatch(text)
        if card is not None:
            close_block()
            block = _Block(number, line_start)
            block.card = (card.group(1) + b"******" + card.group(2)).decode()
            block.lines.append((number, raw))
            block.end = offset
            continue

        event = _L_EVENT.fullmatch(text)
        if event is not None:
            code = event_code(event.group(2))
            if code is None:
                skip(number, "unknown device or operator event", raw)
                continue
            ej_event = EjEvent(
                event.group(1).decode(), code[0], code[1], number, line_start, offset, None
            )
            if (
                code[0] == "power_up"
                and block is not None
                and not block.receipt_done
                and b"POWER INTERRUPTION" in block.outcome
            ):
                block.lines.append((number, raw))
                block.last_line = number
                block.end = offset
                events.append(ej_event)
                continue
            close_block()
            if code[0] in ("counters_before", "counters_after"):
                counters = CountersPrintout(ej_event, number, raw)
            else:
                events.append(ej_event)
            continue

        if text == _START:
            if block is None or block.receipt_done:
                close_block()
                block = _Block(number, line_start)
            in_receipt = True
            block.lines.append((number, raw))
            block.last_line = number
            block.end = offset
            continue
        if text == _END:
            if block is None or not in_receipt:
                skip(number, "receipt end without a receipt start", raw)
                continue
            in_receipt = False
            block.receipt_done = True
            block.lines.append((number, raw))
            block.last_line = number
            block.end = offset
            continue

        if in_receipt and block is not None and block.fields and _L_STATUS.fullmatch(text):
            in_receipt = False  # the END line was lost; the status record closes the block
            block.receipt_done = True
        if in_receipt and block is not None:
            field = _L_FIELD.fullmatch(text)
            if field is not None:
                label = field.group(1).strip()
                value_pattern = _RECEIPT_FIELDS.get(label)
                value = value_pattern.fullmatch(field.group(2).strip()) if value_pattern else None
                if value is not None and label not in block.fields:
                    block.fields[label] = value.groups()
                    block.lines.append((number, raw))
                    block.last_line = number
                    block.end = offset
                    continue
            skip(number, "unreadable receipt line", raw)
            continue

        status = _L_STATUS.fullmatch(text)
        if status is not None:
            if block is not None and block.receipt_done and not block.status:
                block.status = status.group(2).decode()
                block.lines.append((number, raw))
                block.last_line = number
                block.end = offset
                close_block()
            else:
                skip(number, "device status record outside a transaction", raw)
            continue

        if block is None or block.receipt_done:
            skip(number, "transaction line outside a transaction block", raw)
            continue
        if _absorb(block, text):
            block.lines.append((number, raw))
            block.last_line = number
            block.end = offset
        else:
            skip(number, "unrecognised line", raw)
    close_counters()
    close_block()
    return transactions, events, skipped, number


def _absorb(block: _Block, text: bytes) -> bool:
    """Take one of the transaction's own (pre-receipt) lines into the block."""
    request = _L_REQUEST.fullmatch(text)
    if request is not None:
        block.opcode = request.group(1)
        return True
    reply = _L_REPLY.fullmatch(text)
    if reply is not None:
        block.timeout = reply.group(2) is not None
        return True
    if _L_STATE.fullmatch(text) is not None or _L_DISPENSE.fullmatch(text) is not None:
        return True
    reject = _L_REJECT.fullmatch(text)
    if reject is not None:
        block.rejects[int(reject.group(1)) - 1] += int(reject.group(2))
        return True
    if text == b"Card Ejected":
        return True
    if text in _L_OUTCOME:
        block.outcome += text + b"\n"
        return True
    return False


def _finish(block: _Block) -> EjTransaction | None:
    fields = block.fields
    rejects = (block.rejects[0], block.rejects[1], block.rejects[2], block.rejects[3])
    if not block.receipt_done:
        return EjTransaction(
            "",
            "",
            "",
            "",
            block.card,
            _OPCODES.get(block.opcode, ""),
            "TO" if block.timeout else "",
            0,
            "",
            NO_NOTES,
            NO_NOTES,
            rejects,
            "",
            True,
            block.start,
            block.end,
            block.first_line,
            block.last_line,
        )
    stan = fields.get(b"TRACE", (b"",))[0].decode()
    rrn = fields.get(b"RRN", (b"",))[0].decode()
    if not stan and len(rrn) == 12:
        stan = rrn[6:]
    if not stan:
        return None
    trn_field = fields.get(b"TRN TYPE")
    trn = _TRN_TYPES[trn_field[0]] if trn_field is not None else _OPCODES.get(block.opcode, "")
    rc = fields.get(b"RESP CODE", (b"TO" if block.timeout else b"",))[0].decode()
    auth = fields.get(b"AMT AUTH")
    req = fields.get(b"AMT REQ")
    amount = minor_units(auth[0]) if auth else (minor_units(req[0]) if req else 0)
    d = fields.get(b"DISPENSED")
    dispensed = NO_NOTES if d is None else (int(d[0]), int(d[1]), int(d[2]), int(d[3]))
    retr = fields.get(b"NOTES RETRACTED")
    outcome = ""
    if rc == "00" and trn == "withdrawal":
        outcome = outcome_of(block.outcome) or _STATUS_OUTCOME.get(block.status, "")
    time = fields.get(b"DATE/TIME", (b"", b""))[1].decode()
    card = fields.get(b"CARD NO", (block.card.encode(),))[0].decode()
    return EjTransaction(
        stan,
        rrn,
        fields.get(b"SEQ NO", (stan[-4:].encode(),))[0].decode(),
        time,
        card or block.card,
        trn,
        rc,
        amount,
        outcome,
        dispensed,
        NO_NOTES if retr is None else notes_csv(retr[0]),
        rejects,
        block.status,
        False,
        block.start,
        block.end,
        block.first_line,
        block.last_line,
    )
