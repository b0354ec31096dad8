"""Independent readers of the field formats (written from shared/formats/README.md),
used to check what the simulators write. They share no code with the simulators
nor with reconciliation: each line is classified by its own regex into a token,
and a file's token string must match the grammar of its dialect."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

HMS = r"(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
AMOUNT = r"\d+\.\d\d"
MASKED = r"\d{6}\*{6}\d{4}"

NDC_LINES: list[tuple[str, str]] = [
    ("C", r"Card Inserted \(\d{6}XXXXXX\d{4}\)"),
    ("Q", r"Transaction Request \[ [AB]    AD\]"),
    ("R", r"Transaction Reply \[Host Seq\.No\.: \d{4}\]"),
    ("T", r"Transaction Reply Timeout"),
    ("N", r"Next State \[(?:125\] Function \[EjectCardAndDispenseAndPrint|1[345]0\] Function \[EjectCardAndPrint|131\] Function \[EjectCardAndPrint)\]"),  # noqa: E501
    ("D", r"Dispense Type[1-4] = [1-9]\d* notes"),
    ("J", r"Reject Type[1-4] = [1-9]\d* notes"),
    ("E", r"Card Ejected"),
    ("P", r"Cash Present"),
    ("K", r"Cash Taken"),
    ("X", r"Cash Retracted"),
    ("Z", r"DISPENSE ERROR"),
    ("W", r"POWER INTERRUPTION DURING DISPENSE"),
    ("S", r" \*{5}START\*{5}"),
    ("a", rf" DATE/TIME : \d{{4}}-\d\d-\d\d {HMS}"),
    ("b", r" TERMINAL  : [A-Z0-9]{8}"),
    ("c", r" SEQ NO    : \d{4}"),
    ("d", r" TRACE     : \d{6}"),
    ("e", r" RRN       : \d{12}"),
    ("f", rf" CARD NO   : {MASKED}"),
    ("g", r" RESP CODE : (?:00|05|51|55|TO)"),
    ("h", r" TRN TYPE  : (?:CASH WITHDRAWAL|BALANCE INQUIRY)"),
    ("i", rf" AMT AUTH  : {AMOUNT}"),
    ("j", r" DISPENSED : 1:\d\d 2:\d\d 3:\d\d 4:\d\d"),
    ("k", r" NOTES RETRACTED : \d+,\d+,\d+,\d+"),
    ("l", rf" AMT REQ   : {AMOUNT}"),
    ("m", rf" AVAIL BAL : {AMOUNT}"),
    ("F", r" \*{5}END\*{5}"),
    ("Y", r"\*\d{4}\*1\*E\*[01235]\d{8},M-(?:00|03|05|08),R-[0-4]{5}"),
    ("U", rf"{HMS} POWER UP"),
    ("H", rf"{HMS} COUNTERS (?:BEFORE|AFTER) EXCHANGE"),
    ("y", r" TYPE DENOM LOADED DISPENSED REJECTED RETRACTED REMAINING"),
    ("r", r" [1-4]   [ \d]{5}\d[ \d]{6}\d[ \d]{9}\d[ \d]{8}\d[ \d]{9}\d[ \d]{9}\d"),
    ("B", r" REJECT BIN  : \d+"),
    ("V", r" RETRACT BIN : \d+"),
    ("L", rf"{HMS} (?:CASSETTE [1-4] (?:LOW|EMPTY|REMOVED|INSERTED)|SUPERVISOR MODE (?:ENTRY|EXIT)|JOURNAL PAPER (?:OUT|REPLENISHED))"),  # noqa: E501
]  # fmt: skip
NDC_RECEIPT = r"Sabcdefgh(?:ijk?|l|m)?F"
NDC_GRAMMAR = re.compile(
    rf"(?:CQ(?:R|T)ND*J*E(?:PK|PX|ZPK|Z|WU)?{NDC_RECEIPT}Y?|C(?:Q(?:R|T)?)?(?=U)|U|L|HyrrrrBV)*"
)

PROCASH_LINES: list[tuple[str, str]] = [
    ("A", rf"{HMS} -> TRANSACTION START"),
    ("t", rf"{HMS} TRACK 2 DATA: {MASKED}"),
    ("p", rf"{HMS} PIN ENTERED"),
    ("c", rf"{HMS} CASH REQUEST: \d{{8}}"),
    ("q", rf"{HMS} TRANSACTION REQUEST (?:AMOUNT {AMOUNT}|BALANCE INQUIRY)"),
    ("R", rf"{HMS} RESPONSE CODE: (?:00|05|51|55)  STAN: \d{{6}}  RRN:\[\d{{12}}\]"),
    ("T", rf"{HMS} HOST TIMEOUT  STAN: \d{{6}}  RRN:\[\d{{12}}\]"),
    ("j", rf"{HMS} NOTES REJECTED \d+,\d+,\d+,\d+"),
    ("n", rf"{HMS} NOTES PRESENTED \d+,\d+,\d+,\d+"),
    ("K", rf"{HMS} CASH TAKEN"),
    ("X", rf"{HMS} CASH RETRACTED"),
    ("x", rf"{HMS} NOTES RETRACTED \d+,\d+,\d+,\d+"),
    ("Z", rf"{HMS} PRESENTER ERROR"),
    ("W", rf"{HMS} POWER INTERRUPTION DURING DISPENSE"),
    ("U", rf"{HMS} SYSTEM STARTUP"),
    ("Q", rf"{HMS} <- TRANSACTION END"),
    ("S", r"\*{31}"),
    ("a", rf"DATE \d\d\.\d\d\.\d\d      TIME {HMS}"),
    ("b", r"ATM ID   [A-Z0-9]{8}"),
    ("f", rf"CARD NO  {MASKED}"),
    ("d", r"STAN     \d{6}"),
    ("e", r"RRN      \d{12}"),
    ("h", r"CASH WITHDRAWAL|BALANCE INQUIRY"),
    ("i", rf"AMOUNT   USD {AMOUNT}"),
    ("g", r"RESP     (?:00  AUTH \d{6}|(?:05|51|55)  DECLINED|--  NO HOST REPLY)"),
    ("k", r"NOTES    \d+,\d+,\d+,\d+"),
    ("y", r"NOTES RETRACTED \d+,\d+,\d+,\d+"),
    ("m", rf"BALANCE  USD {AMOUNT}"),
    ("H", rf"{HMS} CASH COUNTERS (?:BEFORE|AFTER) REPLENISHMENT"),
    ("Y", rf"{HMS} CU CUR DENOM  INIT  DISP  REJ RETR   REM"),
    ("r", rf"{HMS} [1-4]  USD[ \d]{{5}}\d[ \d]{{5}}\d[ \d]{{5}}\d[ \d]{{4}}\d[ \d]{{4}}\d[ \d]{{5}}\d"),  # noqa: E501
    ("B", rf"{HMS} REJECT BIN \d+  RETRACT BIN \d+"),
    ("L", rf"{HMS} (?:CASH UNIT [1-4] (?:LOW|EMPTY|REMOVED|INSERTED)|OPERATOR MODE (?:ENTRY|EXIT)|JOURNAL PAPER (?:OUT|LOADED))"),  # noqa: E501
]  # fmt: skip
PROCASH_RECEIPT = r"Sabfdehi?g(?:ky?|m)?S"
PROCASH_GRAMMAR = re.compile(
    rf"(?:Atp(?:cq|q)(?:R|T)(?:j?(?:nK|nXx|ZnK|Zn|WU))?Q{PROCASH_RECEIPT}|At(?:p)?(?=U)|A(?=U)|U|L|HYrrrrB)*"
)

_NDC = [(token, re.compile(pattern)) for token, pattern in NDC_LINES]
_PROCASH = [(token, re.compile(pattern)) for token, pattern in PROCASH_LINES]


def tokenize(lines: list[str], dialect: str) -> str:
    """One token per line; raises AssertionError naming the first line no rule knows."""
    table = _NDC if dialect == "ndc" else _PROCASH
    tokens = []
    for number, line in enumerate(lines, start=1):
        for token, pattern in table:
            if pattern.fullmatch(line):
                tokens.append(token)
                break
        else:
            raise AssertionError(f"{dialect} line {number} matches no rule: {line!r}")
    return "".join(tokens)


def check_ej(text: str) -> str:
    """Check an EJ file's grammar; returns its dialect."""
    assert text == "" or text.endswith("\n"), "EJ must end with a line end"
    assert "\r" not in text
    assert text.isascii()
    lines = text.split("\n")[:-1]
    if not lines:
        return "empty"
    dialect = "procash" if re.match(rf"{HMS} ", lines[0]) and "TRANSACTION START" in text else "ndc"
    if any(line.startswith("Card Inserted") for line in lines):
        dialect = "ndc"
    tokens = tokenize(lines, dialect)
    grammar = NDC_GRAMMAR if dialect == "ndc" else PROCASH_GRAMMAR
    match = grammar.match(tokens)
    end = match.end() if match else 0
    assert end == len(tokens), f"{dialect} grammar breaks at line {end + 1}: {lines[end]!r}"
    times = [line[:8] for line in lines if re.match(rf"{HMS} ", line)]
    assert times == sorted(times), "journal times decrease"
    return dialect


@dataclass
class EjTransaction:
    stan: str
    time: str  # receipt time (DE12)
    withdrawal: bool
    rc: str
    amount: int
    presented: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    rejected: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    retracted: list[int] = field(default_factory=lambda: [0, 0, 0, 0])
    outcome: str = ""
    line: int = 0


def _cents(text: str) -> int:
    major, minor = text.split(".")
    return int(major) * 100 + int(minor)


def _notes(text: str) -> list[int]:
    return [int(x) for x in text.split(",")]


def ej_transactions(text: str) -> list[EjTransaction]:
    """The complete transactions of an EJ file (either dialect), in order."""
    lines = text.split("\n")
    found: list[EjTransaction] = []
    rejected = [0, 0, 0, 0]
    presented_line: list[int] | None = None
    outcome = ""
    inside_receipt = False
    for number, line in enumerate(lines, start=1):
        if line == "*" * 31:
            inside_receipt = not inside_receipt
            if not inside_receipt:
                continue
        elif inside_receipt:
            continue
        body = line[9:] if re.match(rf"{HMS} ", line) else line
        if line.startswith("Card Inserted") or body == "-> TRANSACTION START":
            rejected, presented_line, outcome = [0, 0, 0, 0], None, ""
        elif m := re.fullmatch(r"Reject Type([1-4]) = (\d+) notes", line):
            rejected[int(m[1]) - 1] += int(m[2])
        elif m := re.fullmatch(r"NOTES REJECTED (\S+)", body):
            rejected = _notes(m[1])
        elif m := re.fullmatch(r"NOTES PRESENTED (\S+)", body):
            presented_line = _notes(m[1])
        elif body in ("Cash Retracted", "CASH RETRACTED"):
            outcome = "retracted"
        elif body in ("DISPENSE ERROR", "PRESENTER ERROR") and not outcome:
            outcome = "error"
        elif body == "POWER INTERRUPTION DURING DISPENSE":
            outcome = "power"
        if line in (" *****START*****", "*" * 31):
            tx = _receipt(lines[number : number + 12], line.startswith(" "))
            if tx is None:
                continue
            tx.rejected = rejected
            tx.outcome = outcome or ("taken" if tx.withdrawal and tx.rc == "00" else "")
            if presented_line is not None and tx.presented != presented_line:
                raise AssertionError(f"line {number}: NOTES PRESENTED disagrees with the receipt")
            if tx.outcome == "retracted":
                tx.retracted = list(tx.presented)
            tx.line = number
            found.append(tx)
    return found


def _receipt(block: list[str], ndc: bool) -> EjTransaction | None:
    values: dict[str, str] = {}
    for raw in block:
        line = raw[1:] if ndc else raw
        if line in ("*****END*****", "*" * 31):
            break
        if ndc:
            key, _, value = line.partition(" : ")
            values[key.strip()] = value
        else:
            m = re.match(
                r"(DATE|ATM ID|CARD NO|STAN|RRN|AMOUNT|RESP|NOTES RETRACTED|NOTES|BALANCE) +(.*)",
                line,
            )
            if line in ("CASH WITHDRAWAL", "BALANCE INQUIRY"):
                values["TYPE"] = line
            elif m:
                values.setdefault(m[1], m[2])
    if ndc:
        if "TRACE" not in values:
            return None
        withdrawal = values["TRN TYPE"] == "CASH WITHDRAWAL"
        amount = values.get("AMT AUTH") or values.get("AMT REQ") or "0.00"
        tx = EjTransaction(
            values["TRACE"],
            values["DATE/TIME"][11:],
            withdrawal,
            values["RESP CODE"],
            _cents(amount),
        )
        if "DISPENSED" in values:
            tx.presented = [int(part[2:]) for part in values["DISPENSED"].split()]
        return tx
    if "STAN" not in values:
        return None
    resp = values["RESP"]
    rc = "TO" if resp.startswith("--") else resp[:2]
    withdrawal = values["TYPE"] == "CASH WITHDRAWAL"
    amount = values["AMOUNT"].split()[1] if "AMOUNT" in values else "0.00"
    tx = EjTransaction(values["STAN"], values["DATE"][-8:], withdrawal, rc, _cents(amount))
    if "NOTES" in values:
        tx.presented = _notes(values["NOTES"])
    return tx
