"""The electronic journal in its two dialects, and the receipt copy that goes to paper.

NDC (NCR APTRA Advance NDC): transaction lines carry no time; device and
operator lines start with ``HH:MM:SS``. ProCash (Wincor Nixdorf with NDC
emulation): every line is timed except the receipt copy between two lines of 31
asterisks. The line layouts are those of ``shared/formats/README.md``; each
dialect is a :class:`Dialect` that turns a finished :class:`~simulators.transaction.Transaction`
or a device event into lines.
"""

from __future__ import annotations

from collections.abc import Sequence

from simulators.cash import CashUnits
from simulators.transaction import (
    NONE,
    PARTIAL,
    POWER,
    RETRACTED,
    TAKEN,
    Transaction,
)

HMS: list[str] = [f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400)]


def money(minor: int) -> str:
    """Major units with two decimals: ``20000`` -> ``200.00``."""
    return f"{minor // 100}.{minor % 100:02d}"


def notes_csv(notes: Sequence[int]) -> str:
    return f"{notes[0]},{notes[1]},{notes[2]},{notes[3]}"


class Dialect:
    """One EJ dialect: the lines of a transaction, of its receipt and of device events."""

    name = ""
    event_words: dict[str, str] = {}

    def transaction(self, tx: Transaction) -> tuple[list[str], list[str]]:
        """(EJ lines, receipt lines as printed on the paper journal)."""
        raise NotImplementedError

    def event(self, time: int, event: str, unit: int = 0) -> str:
        """A timed device/operator line; ``event`` is a key of ``event_words``."""
        words = self.event_words[event]
        return f"{HMS[time]} {words.format(n=unit)}"

    def counters(self, time: int, before: bool, cash: CashUnits) -> list[str]:
        raise NotImplementedError


class NdcDialect(Dialect):
    name = "ndc"
    event_words = {
        "low": "CASSETTE {n} LOW",
        "empty": "CASSETTE {n} EMPTY",
        "supervisor_entry": "SUPERVISOR MODE ENTRY",
        "supervisor_exit": "SUPERVISOR MODE EXIT",
        "removed": "CASSETTE {n} REMOVED",
        "inserted": "CASSETTE {n} INSERTED",
        "power_up": "POWER UP",
        "paper_out": "JOURNAL PAPER OUT",
        "paper_in": "JOURNAL PAPER REPLENISHED",
    }

    def transaction(self, tx: Transaction) -> tuple[list[str], list[str]]:
        pan = tx.pan
        withdrawal = tx.withdrawal
        rc = tx.rc
        approved_wd = withdrawal and rc == "00"
        lines = [
            f"Card Inserted ({pan[:6]}XXXXXX{pan[-4:]})",
            "Transaction Request [ A    AD]" if withdrawal else "Transaction Request [ B    AD]",
        ]
        if rc == "TO":
            lines.append("Transaction Reply Timeout")
            lines.append("Next State [150] Function [EjectCardAndPrint]")
        else:
            lines.append(f"Transaction Reply [Host Seq.No.: {tx.serial}]")
            if approved_wd:
                lines.append("Next State [125] Function [EjectCardAndDispenseAndPrint]")
            elif withdrawal:
                lines.append("Next State [131] Function [EjectCardAndPrint]")
            else:
                lines.append("Next State [140] Function [EjectCardAndPrint]")
        receipt = [
            "*****START*****",
            f"DATE/TIME : {tx.date_iso} {HMS[tx.t_req]}",
            f"TERMINAL  : {tx.terminal_id}",
            f"SEQ NO    : {tx.serial}",
            f"TRACE     : {tx.stan}",
            f"RRN       : {tx.rrn}",
            f"CARD NO   : {pan[:6]}******{pan[-4:]}",
            f"RESP CODE : {rc}",
            "TRN TYPE  : CASH WITHDRAWAL" if withdrawal else "TRN TYPE  : BALANCE INQUIRY",
        ]
        if approved_wd:
            c = tx.commanded
            r = tx.rejected
            p = tx.presented
            for n in range(4):
                if c[n]:
                    lines.append(f"Dispense Type{n + 1} = {c[n]} notes")
            for n in range(4):
                if r[n]:
                    lines.append(f"Reject Type{n + 1} = {r[n]} notes")
            lines.append("Card Ejected")
            outcome = tx.outcome
            if outcome == TAKEN:
                lines.append("Cash Present")
                lines.append("Cash Taken")
            elif outcome == RETRACTED:
                lines.append("Cash Present")
                lines.append("Cash Retracted")
            elif outcome == PARTIAL:
                lines.append("DISPENSE ERROR")
                lines.append("Cash Present")
                lines.append("Cash Taken")
            elif outcome == NONE:
                lines.append("DISPENSE ERROR")
            else:
                lines.append("POWER INTERRUPTION DURING DISPENSE")
                lines.append(f"{HMS[tx.t_power_up]} POWER UP")
            receipt.append(f"AMT AUTH  : {money(tx.amount)}")
            receipt.append(f"DISPENSED : 1:{p[0]:02d} 2:{p[1]:02d} 3:{p[2]:02d} 4:{p[3]:02d}")
            if outcome == RETRACTED:
                receipt.append(f"NOTES RETRACTED : {notes_csv(p)}")
        else:
            lines.append("Card Ejected")
            if withdrawal:
                receipt.append(f"AMT REQ   : {money(tx.amount)}")
            elif rc == "00":
                receipt.append(f"AVAIL BAL : {money(tx.balance)}")
        receipt.append("*****END*****")
        lines.extend([" " + line for line in receipt])
        if approved_wd:
            p = tx.presented
            lines.append(
                f"*{tx.serial}*1*E*{tx.status_t}{p[0]:02d}{p[1]:02d}{p[2]:02d}{p[3]:02d},"
                f"M-{tx.m_code},R-{tx.r_code}"
            )
        return lines, receipt

    def counters(self, time: int, before: bool, cash: CashUnits) -> list[str]:
        title = "COUNTERS BEFORE EXCHANGE" if before else "COUNTERS AFTER EXCHANGE"
        lines = [
            f"{HMS[time]} {title}",
            " TYPE DENOM LOADED DISPENSED REJECTED RETRACTED REMAINING",
        ]
        for unit in cash.cassettes:
            lines.append(
                f" {unit.number:<4}{unit.value:>6}{unit.initial:>7}{unit.dispensed:>10}"
                f"{unit.reject:>9}{unit.retracted:>10}{unit.count:>10}"
            )
        lines.append(f" REJECT BIN  : {cash.reject_bin.count}")
        lines.append(f" RETRACT BIN : {cash.retract_bin.count}")
        return lines


class ProCashDialect(Dialect):
    name = "procash"
    event_words = {
        "low": "CASH UNIT {n} LOW",
        "empty": "CASH UNIT {n} EMPTY",
        "supervisor_entry": "OPERATOR MODE ENTRY",
        "supervisor_exit": "OPERATOR MODE EXIT",
        "removed": "CASH UNIT {n} REMOVED",
        "inserted": "CASH UNIT {n} INSERTED",
        "power_up": "SYSTEM STARTUP",
        "paper_out": "JOURNAL PAPER OUT",
        "paper_in": "JOURNAL PAPER LOADED",
    }
    STARS = "*" * 31

    def transaction(self, tx: Transaction) -> tuple[list[str], list[str]]:
        pan = tx.pan
        masked = f"{pan[:6]}******{pan[-4:]}"
        withdrawal = tx.withdrawal
        rc = tx.rc
        approved_wd = withdrawal and rc == "00"
        req = HMS[tx.t_req]
        lines = [
            f"{HMS[tx.t_start]} -> TRANSACTION START",
            f"{HMS[tx.t_start]} TRACK 2 DATA: {masked}",
            f"{HMS[tx.t_pin]} PIN ENTERED",
        ]
        if withdrawal:
            c = tx.commanded
            lines.append(f"{req} CASH REQUEST: {c[0]:02d}{c[1]:02d}{c[2]:02d}{c[3]:02d}")
            lines.append(f"{req} TRANSACTION REQUEST AMOUNT {money(tx.amount)}")
        else:
            lines.append(f"{req} TRANSACTION REQUEST BALANCE INQUIRY")
        if rc == "TO":
            lines.append(f"{HMS[tx.t_resp]} HOST TIMEOUT  STAN: {tx.stan}  RRN:[{tx.rrn}]")
        else:
            lines.append(f"{HMS[tx.t_resp]} RESPONSE CODE: {rc}  STAN: {tx.stan}  RRN:[{tx.rrn}]")
        d = tx.date_iso
        receipt = [
            self.STARS,
            f"DATE {d[8:10]}.{d[5:7]}.{d[2:4]}      TIME {req}",
            f"ATM ID   {tx.terminal_id}",
            f"CARD NO  {masked}",
            f"STAN     {tx.stan}",
            f"RRN      {tx.rrn}",
            "CASH WITHDRAWAL" if withdrawal else "BALANCE INQUIRY",
        ]
        if withdrawal:
            receipt.append(f"AMOUNT   USD {money(tx.amount)}")
        if rc == "00":
            receipt.append(f"RESP     00  AUTH {tx.auth}")
        elif rc == "TO":
            receipt.append("RESP     --  NO HOST REPLY")
        else:
            receipt.append(f"RESP     {rc}  DECLINED")
        if approved_wd:
            p = tx.presented
            presented = notes_csv(p)
            if any(tx.rejected):
                lines.append(f"{HMS[tx.t_reject]} NOTES REJECTED {notes_csv(tx.rejected)}")
            outcome = tx.outcome
            if outcome == TAKEN:
                lines.append(f"{HMS[tx.t_present]} NOTES PRESENTED {presented}")
                lines.append(f"{HMS[tx.t_done]} CASH TAKEN")
            elif outcome == RETRACTED:
                lines.append(f"{HMS[tx.t_present]} NOTES PRESENTED {presented}")
                lines.append(f"{HMS[tx.t_done]} CASH RETRACTED")
                lines.append(f"{HMS[tx.t_done]} NOTES RETRACTED {presented}")
            elif outcome == PARTIAL:
                lines.append(f"{HMS[tx.t_fault]} PRESENTER ERROR")
                lines.append(f"{HMS[tx.t_present]} NOTES PRESENTED {presented}")
                lines.append(f"{HMS[tx.t_done]} CASH TAKEN")
            elif outcome == NONE:
                lines.append(f"{HMS[tx.t_fault]} PRESENTER ERROR")
                lines.append(f"{HMS[tx.t_fault]} NOTES PRESENTED 0,0,0,0")
            elif outcome == POWER:
                lines.append(f"{HMS[tx.t_fault]} POWER INTERRUPTION DURING DISPENSE")
                lines.append(f"{HMS[tx.t_power_up]} SYSTEM STARTUP")
            receipt.append(f"NOTES    {presented}")
            if outcome == RETRACTED:
                receipt.append(f"NOTES RETRACTED {presented}")
        elif not withdrawal and rc == "00":
            receipt.append(f"BALANCE  USD {money(tx.balance)}")
        receipt.append(self.STARS)
        lines.append(f"{HMS[tx.t_end]} <- TRANSACTION END")
        lines.extend(receipt)
        return lines, receipt

    def counters(self, time: int, before: bool, cash: CashUnits) -> list[str]:
        hms = HMS[time]
        title = (
            "CASH COUNTERS BEFORE REPLENISHMENT" if before else "CASH COUNTERS AFTER REPLENISHMENT"
        )
        lines = [f"{hms} {title}", f"{hms} CU CUR DENOM  INIT  DISP  REJ RETR   REM"]
        for unit in cash.cassettes:
            lines.append(
                f"{hms} {unit.number:<2} {unit.currency}{unit.value:>6}{unit.initial:>6}"
                f"{unit.dispensed:>6}{unit.reject:>5}{unit.retracted:>5}{unit.count:>6}"
            )
        lines.append(
            f"{hms} REJECT BIN {cash.reject_bin.count}  RETRACT BIN {cash.retract_bin.count}"
        )
        return lines


DIALECTS: dict[str, Dialect] = {"ndc": NdcDialect(), "procash": ProCashDialect()}
