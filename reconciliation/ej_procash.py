"""Parser for the ProCash electronic-journal dialect (Wincor Nixdorf, NDC emulation).

Same two paths as :mod:`reconciliation.ej_ndc`: a whole-buffer scan for
well-formed files and a tolerant line-by-line state machine for the rest
(truncated blocks before ``SYSTEM STARTUP``, garbage, lost lines).
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
    from reconciliation._speedups import procash_scan as _compiled_scan
except ImportError:  # built without a C compiler: the pattern alone
    _compiled_scan = None  # type: ignore[assignment]

_T = rb"\d\d:\d\d:\d\d\ "
_BLOCK = (
    rb"^" + _T + rb"->\ TRANSACTION\ START\n"
    rb"" + _T + rb"TRACK\ 2\ DATA:\ (?P<card>\d{6}\*{6}\d{4})\n"
    rb"" + _T + rb"PIN\ ENTERED\n"
    rb"(?:" + _T + rb"CASH\ REQUEST:\ \d{8}\n)?"
    rb"" + _T + rb"TRANSACTION\ REQUEST\ (?:AMOUNT\ (?P<ramount>\d+\.\d\d)|BALANCE\ INQUIRY)\n"
    rb"" + _T + rb"(?:RESPONSE\ CODE:\ \w\w|HOST\ TIMEOUT)\ +STAN:\ \d{6}\ +RRN:\[\d{12}\]\n"
    rb"(?P<out>(?:" + _T + rb"(?:NOTES\ (?:REJECTED|PRESENTED|RETRACTED)\ \d+,\d+,\d+,\d+"
    rb"|CASH\ TAKEN|CASH\ RETRACTED|PRESENTER\ ERROR"
    rb"|POWER\ INTERRUPTION\ DURING\ DISPENSE\n" + _T + rb"SYSTEM\ STARTUP"
    rb"|POWER\ INTERRUPTION\ DURING\ DISPENSE)\n)*)"
    rb"" + _T + rb"<-\ TRANSACTION\ END\n"
    rb"\*{31}\n"
    rb"DATE\ \d\d\.\d\d\.\d\d\ +TIME\ (?P<time>\d\d:\d\d:\d\d)\n"
    rb"ATM\ ID\ +\S+\n"
    rb"CARD\ NO\ +\d{6}\*{6}\d{4}\n"
    rb"STAN\ +(?P<stan>\d{6})\n"
    rb"RRN\ +(?P<rrn>\d{12})\n"
    rb"(?P<trn>CASH\ WITHDRAWAL|BALANCE\ INQUIRY)\n"
    rb"(?:AMOUNT\ +USD\ (?P<amount>\d+\.\d\d)\n)?"
    rb"RESP\ +(?:(?P<rc>\w\w)\ +(?:AUTH\ \w{6}|DECLINED)|(?P<noreply>--)\ +NO\ HOST\ REPLY)\n"
    rb"(?:NOTES\ +(?P<notes>\d+,\d+,\d+,\d+)\n)?"
    rb"(?:NOTES\ RETRACTED\ (?P<retr>\d+,\d+,\d+,\d+)\n)?"
    rb"(?:BALANCE\ +USD\ \d+\.\d\d\n)?"
    rb"\*{31}\n"
)
_COUNTERS = (
    rb"^(?P<ct>\d\d:\d\d:\d\d)\ (?P<ctitle>CASH\ COUNTERS\ (?:BEFORE|AFTER)\ REPLENISHMENT)\n"
    rb"" + _T + rb"CU\ CUR\ DENOM\ +INIT\ +DISP\ +REJ\ +RETR\ +REM\n"
    rb"(?P<crows>(?:" + _T + rb"[1-4]\ +[A-Z]{3}(?:\ +\d+){6}\n){4})"
    rb"" + _T + rb"REJECT\ BIN\ (?P<crej>\d+)\ +RETRACT\ BIN\ (?P<cret>\d+)\n"
)
_EVENT = rb"^(?P<et>\d\d:\d\d:\d\d)\ (?P<ev>[A-Z][A-Z0-9 ]*)\n"

FAST = re.compile(b"(?:" + _BLOCK + b")|(?:" + _COUNTERS + b")|(?:" + _EVENT + b")", re.M)
_G = {name: index - 1 for name, index in FAST.groupindex.items()}
_G_CARD, _G_OUT, _G_TIME, _G_STAN, _G_RRN, _G_TRN = (
    _G["card"],
    _G["out"],
    _G["time"],
    _G["stan"],
    _G["rrn"],
    _G["trn"],
)
_G_AMOUNT, _G_RC, _G_NOREPLY, _G_NOTES, _G_RETR = (
    _G["amount"],
    _G["rc"],
    _G["noreply"],
    _G["notes"],
    _G["retr"],
)
_G_RAMOUNT = _G["ramount"]

_TRN_TYPES = {b"CASH WITHDRAWAL": "withdrawal", b"BALANCE INQUIRY": "balance"}
_REJECTED = re.compile(rb"NOTES REJECTED (\d+),(\d+),(\d+),(\d+)")
_PRESENTED = re.compile(rb"NOTES PRESENTED (\d+,\d+,\d+,\d+)")
_STARTUP = re.compile(rb"(\d\d:\d\d:\d\d) SYSTEM STARTUP\n")


def outcome_of(lines: bytes, presented: Notes) -> str:
    """The cash outcome of an approved withdrawal from its outcome lines."""
    if b"POWER INTERRUPTION" in lines:
        return "power"
    if b"CASH RETRACTED" in lines:
        return "retracted"
    if b"PRESENTER ERROR" in lines:
        return "none" if sum(presented) == 0 else "short"
    if b"CASH TAKEN" in lines:
        return "taken"
    return ""


def _rejects(lines: bytes) -> Notes:
    if b"REJECTED" not in lines:
        return NO_NOTES
    counts = [0, 0, 0, 0]
    for found in _REJECTED.findall(lines):
        for index in range(4):
            counts[index] += int(found[index])
    return (counts[0], counts[1], counts[2], counts[3])


def _counters_rows(rows: bytes) -> tuple[CountersRow, ...]:
    table = []
    for row in rows.split(b"\n"):
        parts = row.split()
        if len(parts) == 9:
            values = [int(parts[1]), *(int(value) for value in parts[3:])]
            table.append(
                (values[0], values[1], values[2], values[3], values[4], values[5], values[6])
            )
    return tuple(table)


def _transaction(g: Groups, start: int, end: int, line: int, lines_in: int) -> EjTransaction:
    """A well-formed block's transaction (as the compiled reader of ``scan`` makes it)."""
    trn = _TRN_TYPES[g[_G_TRN]]
    rc = "TO" if g[_G_NOREPLY] is not None else g[_G_RC].decode()
    amount_raw = g[_G_AMOUNT] if g[_G_AMOUNT] is not None else g[_G_RAMOUNT]
    # the pattern admits only ``\d+\.\d\d`` here: the digits without the point are cents
    amount = 0 if amount_raw is None else int(amount_raw.replace(b".", b""))
    notes = g[_G_NOTES]
    out = g[_G_OUT]
    if notes is None:
        presented = _PRESENTED.findall(out)
        notes = presented[-1] if presented else None
    dispensed = NO_NOTES if notes is None else notes_csv(notes)
    retr = g[_G_RETR]
    outcome = outcome_of(out, dispensed) if rc == "00" and trn == "withdrawal" else ""
    return EjTransaction(
        g[_G_STAN].decode(),
        g[_G_RRN].decode(),
        g[_G_STAN][2:].decode(),
        g[_G_TIME].decode(),
        g[_G_CARD].decode(),
        trn,
        rc,
        amount,
        outcome,
        dispensed,
        NO_NOTES if retr is None else notes_csv(retr),
        _rejects(out),
        "",
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
    """A well-formed block's transaction, and the start-up after an interrupted dispense."""
    transactions.append(_transaction(g, start, end, line, lines_in))
    out = g[_G_OUT]
    if b"SYSTEM STARTUP" in out:
        startup = _STARTUP.search(buffer, start, end)
        if startup is not None:
            events.append(
                EjEvent(
                    startup.group(1).decode(),
                    "power_up",
                    0,
                    line + buffer.count(b"\n", start, startup.start()),
                    startup.start(),
                    startup.end(),
                    None,
                )
            )


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

_L_TIMED = re.compile(rb"(\d\d:\d\d:\d\d) (.*)")
_L_TRACK = re.compile(rb"TRACK 2 DATA: (\d{6}\*{6}\d{4})")
_L_CASH_REQUEST = re.compile(rb"CASH REQUEST: (\d{8})")
_L_REQUEST = re.compile(rb"TRANSACTION REQUEST (?:AMOUNT (\d+\.\d\d)|(BALANCE INQUIRY))")
_L_RESPONSE = re.compile(
    rb"(?:RESPONSE CODE: (\w\w)|(HOST TIMEOUT)) +STAN: (\d{6}) +RRN:\[(\d{12})\]"
)
_L_NOTES_EVENT = re.compile(rb"NOTES (PRESENTED|REJECTED|RETRACTED) (\d+,\d+,\d+,\d+)")
_L_OUTCOME = frozenset(
    (b"CASH TAKEN", b"CASH RETRACTED", b"PRESENTER ERROR", b"POWER INTERRUPTION DURING DISPENSE")
)
_L_COUNTERS_HEADER = re.compile(rb"CU CUR DENOM +INIT +DISP +REJ +RETR +REM")
_L_COUNTER_ROW = re.compile(rb"([1-4]) +[A-Z]{3}((?: +\d+){6})")
_L_COUNTER_BINS = re.compile(rb"REJECT BIN (\d+) +RETRACT BIN (\d+)")
_STARS = b"*" * 31

_RECEIPT = (
    ("date", re.compile(rb"DATE \d\d\.\d\d\.\d\d +TIME (\d\d:\d\d:\d\d)")),
    ("tid", re.compile(rb"ATM ID +(\S+)")),
    ("card", re.compile(rb"CARD NO +(\d{6}\*{6}\d{4})")),
    ("stan", re.compile(rb"STAN +(\d{6})")),
    ("rrn", re.compile(rb"RRN +(\d{12})")),
    ("trn", re.compile(rb"(CASH WITHDRAWAL|BALANCE INQUIRY)")),
    ("amount", re.compile(rb"AMOUNT +USD (\d+\.\d\d)")),
    ("resp", re.compile(rb"RESP +(?:(\w\w) +(?:AUTH \w{6}|DECLINED)|(--) +NO HOST REPLY)")),
    ("retr", re.compile(rb"NOTES RETRACTED (\d+,\d+,\d+,\d+)")),
    ("notes", re.compile(rb"NOTES +(\d+,\d+,\d+,\d+)")),
    ("balance", re.compile(rb"BALANCE +USD (\d+\.\d\d)")),
)


class _Block:
    __slots__ = (
        "amount",
        "card",
        "end",
        "ended",
        "fields",
        "first_line",
        "first_time",
        "last_line",
        "lines",
        "marker",
        "outcome",
        "presented",
        "receipt_done",
        "rejects",
        "response",
        "start",
        "trn",
    )

    def __init__(self, line: int, start: int) -> None:
        self.first_line = line
        self.first_time = ""
        self.last_line = line
        self.start = start
        self.end = start
        self.card = ""
        self.trn = ""
        self.amount = -1
        self.response: tuple[str, str, str] | None = None  # rc, stan, rrn
        self.outcome = b""
        self.presented = NO_NOTES
        self.rejects = [0, 0, 0, 0]
        self.fields: dict[str, tuple[bytes | None, ...]] = {}
        self.ended = False
        self.receipt_done = False
        self.lines: list[tuple[int, bytes]] = []
        self.marker: tuple[int, bytes] | None = None  # the line that opened the receipt

    def take(self, number: int, raw: bytes, offset: int) -> None:
        self.lines.append((number, raw))
        self.last_line = number
        self.end = offset


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
        finished, block = block, None
        if in_receipt and not finished.fields and finished.marker is not None:
            finished.lines.remove(finished.marker)
            skip(finished.marker[0], "receipt marker without a receipt", finished.marker[1])
            if not finished.lines:
                in_receipt = False
                return
        if in_receipt and finished.fields:
            finished.receipt_done = True  # its closing marker was lost
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
        timed = _L_TIMED.fullmatch(text)

        if counters is not None:
            body = timed.group(2) if timed is not None else b""
            if timed is not None and _L_COUNTERS_HEADER.fullmatch(body) and not counters.members:
                counters.members.append((number, raw))
                continue
            row = _L_COUNTER_ROW.fullmatch(body) if timed is not None else None
            if row is not None:
                counters.take_row(number, raw, row.group(1), row.group(2))
                continue
            bins = _L_COUNTER_BINS.fullmatch(body) if timed is not None else None
            if bins is not None:
                counters.members.append((number, raw))
                counters.reject, counters.retract = int(bins.group(1)), int(bins.group(2))
                counters.end = offset
                close_counters()
                continue
            close_counters()

        if not text.strip():
            skip(number, "empty line", raw)
            continue

        if text == _STARS:
            if in_receipt and block is not None:
                in_receipt = False
                block.receipt_done = True
                block.take(number, raw, offset)
                close_block()
            else:
                if block is None or block.receipt_done:
                    close_block()
                    block = _Block(number, line_start)
                in_receipt = True
                block.marker = (number, raw)
                block.take(number, raw, offset)
            continue

        if in_receipt and block is not None and timed is not None:
            # receipt copies have no times: the receipt is over, or its marker was stray
            in_receipt = False
            if block.fields:
                block.receipt_done = True
                close_block()
            elif block.marker is not None:
                block.lines.remove(block.marker)
                skip(block.marker[0], "receipt marker without a receipt", block.marker[1])
                block.marker = None
                if not block.lines:
                    block = None

        if in_receipt and block is not None:
            for name, pattern in _RECEIPT:
                found = pattern.fullmatch(text)
                if found is not None and name not in block.fields:
                    block.fields[name] = found.groups()
                    block.take(number, raw, offset)
                    break
            else:
                skip(number, "unreadable receipt line", raw)
            continue

        if timed is None:
            skip(number, "unrecognised line", raw)
            continue
        time, body = timed.group(1), timed.group(2)

        if body == b"-> TRANSACTION START":
            close_block()
            block = _Block(number, line_start)
            block.first_time = time.decode()
            block.take(number, raw, offset)
            continue

        code = event_code(body)
        if code is not None:
            event = EjEvent(time.decode(), code[0], code[1], number, line_start, offset, None)
            if (
                code[0] == "power_up"
                and block is not None
                and not block.ended
                and b"POWER INTERRUPTION" in block.outcome
            ):
                block.take(number, raw, offset)
                events.append(event)
                continue
            close_block()
            if code[0] in ("counters_before", "counters_after"):
                counters = CountersPrintout(event, number, raw)
            else:
                events.append(event)
            continue

        if block is None or block.ended:
            skip(number, "transaction line outside a transaction block", raw)
            continue
        if _absorb(block, body):
            block.take(number, raw, offset)
        else:
            skip(number, "unrecognised line", raw)
    close_counters()
    close_block()
    return transactions, events, skipped, number


def _absorb(block: _Block, body: bytes) -> bool:
    track = _L_TRACK.fullmatch(body)
    if track is not None:
        block.card = track.group(1).decode()
        return True
    if body == b"PIN ENTERED" or _L_CASH_REQUEST.fullmatch(body) is not None:
        return True
    request = _L_REQUEST.fullmatch(body)
    if request is not None:
        if request.group(1) is not None:
            block.trn, block.amount = "withdrawal", minor_units(request.group(1))
        else:
            block.trn, block.amount = "balance", 0
        return True
    response = _L_RESPONSE.fullmatch(body)
    if response is not None:
        rc = "TO" if response.group(2) is not None else response.group(1).decode()
        block.response = (rc, response.group(3).decode(), response.group(4).decode())
        return True
    notes = _L_NOTES_EVENT.fullmatch(body)
    if notes is not None:
        counts = notes_csv(notes.group(2))
        if notes.group(1) == b"REJECTED":
            for index in range(4):
                block.rejects[index] += counts[index]
        elif notes.group(1) == b"PRESENTED":
            block.presented = counts
        block.outcome += body + b"\n"
        return True
    if body in _L_OUTCOME:
        block.outcome += body + b"\n"
        return True
    if body == b"<- TRANSACTION END":
        block.ended = True
        return True
    return False


def _finish(block: _Block) -> EjTransaction | None:
    fields = block.fields
    rejects = (block.rejects[0], block.rejects[1], block.rejects[2], block.rejects[3])
    response = block.response
    if not block.receipt_done:
        return EjTransaction(
            response[1] if response else "",
            response[2] if response else "",
            response[1][2:] if response else "",
            block.first_time,
            block.card,
            block.trn,
            response[0] if response else "",
            max(block.amount, 0),
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

    def value(name: str) -> bytes | None:
        found = fields.get(name)
        return None if found is None else found[0]

    stan_raw, rrn_raw = value("stan"), value("rrn")
    stan = stan_raw.decode() if stan_raw else (response[1] if response else "")
    rrn = rrn_raw.decode() if rrn_raw else (response[2] if response else "")
    if not stan and len(rrn) == 12:
        stan = rrn[6:]
    if not stan:
        return None
    trn_raw = value("trn")
    trn = _TRN_TYPES[trn_raw] if trn_raw else block.trn
    resp_fields = fields.get("resp")
    if resp_fields is not None:
        rc = "TO" if resp_fields[1] is not None else (resp_fields[0] or b"").decode()
    else:
        rc = response[0] if response else ""
    amount_raw = value("amount")
    amount = minor_units(amount_raw) if amount_raw else max(block.amount, 0)
    notes_raw = value("notes")
    dispensed = notes_csv(notes_raw) if notes_raw else block.presented
    retr_raw = value("retr")
    outcome = outcome_of(block.outcome, dispensed) if rc == "00" and trn == "withdrawal" else ""
    time_raw = value("date")
    card_raw = value("card")
    return EjTransaction(
        stan,
        rrn,
        stan[2:],
        time_raw.decode() if time_raw else "",
        card_raw.decode() if card_raw else block.card,
        trn,
        rc,
        amount,
        outcome,
        dispensed,
        NO_NOTES if retr_raw is None else notes_csv(retr_raw),
        rejects,
        "",
        False,
        block.start,
        block.end,
        block.first_line,
        block.last_line,
    )
