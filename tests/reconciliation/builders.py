"""Small writers of the field formats for unit tests: NDC blocks, ISO 8583
records (encoded by pyiso8583), counters snapshots, paper receipts.

They follow ``shared/formats/README.md`` so the parsers read them like the
real files; each test builds only the few transactions it needs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import iso8583
from iso8583.specs import default_ascii

from reconciliation import Sources

TID = "T9000001"
DATE = "2026-11-16"
DENOMINATIONS = (20, 50, 100, 100)


def _major(minor: int) -> str:
    return f"{minor // 100}.{minor % 100:02d}"


def rrn(stan: str, time: str, date: str = DATE) -> str:
    from datetime import date as day

    doy = day.fromisoformat(date).timetuple().tm_yday
    return f"{date[3]}{doy:03d}{time[:2]}{stan}"


@dataclass
class Txn:
    """One customer transaction as the EJ shows it."""

    stan: str
    time: str
    amount: int = 2000
    resp: str = "00"  # "TO" for no host reply
    outcome: str = "taken"  # taken, retracted, short, none, power
    notes: tuple[int, int, int, int] = (1, 0, 0, 0)  # commanded
    presented: tuple[int, int, int, int] | None = None  # actually presented
    rejected: tuple[int, int, int, int] = (0, 0, 0, 0)
    balance: bool = False
    card: str = "453201"
    last4: str = "1234"

    @property
    def dispensed(self) -> tuple[int, int, int, int]:
        if self.outcome in ("none", "power"):
            return (0, 0, 0, 0)
        return self.presented or self.notes


def ndc_block(txn: Txn, tid: str = TID, date: str = DATE) -> str:
    serial = txn.stan[-4:]
    approved_withdrawal = txn.resp == "00" and not txn.balance
    lines = [
        f"Card Inserted ({txn.card}XXXXXX{txn.last4})",
        f"Transaction Request [ {'B' if txn.balance else 'A'}    AD]",
        "Transaction Reply Timeout"
        if txn.resp == "TO"
        else f"Transaction Reply [Host Seq.No.: {serial}]",
    ]
    if txn.resp == "TO":
        lines.append("Next State [150] Function [EjectCardAndPrint]")
    elif txn.balance:
        lines.append("Next State [140] Function [EjectCardAndPrint]")
    elif txn.resp != "00":
        lines.append("Next State [131] Function [EjectCardAndPrint]")
    else:
        lines.append("Next State [125] Function [EjectCardAndDispenseAndPrint]")
        for number, count in enumerate(txn.notes, start=1):
            if count:
                lines.append(f"Dispense Type{number} = {count} notes")
        for number, count in enumerate(txn.rejected, start=1):
            if count:
                lines.append(f"Reject Type{number} = {count} notes")
    lines.append("Card Ejected")
    if approved_withdrawal:
        lines += {
            "taken": ["Cash Present", "Cash Taken"],
            "retracted": ["Cash Present", "Cash Retracted"],
            "short": ["DISPENSE ERROR", "Cash Present", "Cash Taken"],
            "none": ["DISPENSE ERROR"],
            "power": ["POWER INTERRUPTION DURING DISPENSE", f"{txn.time[:5]}:59 POWER UP"],
        }[txn.outcome]
    d = txn.dispensed
    lines += [
        " *****START*****",
        f" DATE/TIME : {date} {txn.time}",
        f" TERMINAL  : {tid}",
        f" SEQ NO    : {serial}",
        f" TRACE     : {txn.stan}",
        f" RRN       : {rrn(txn.stan, txn.time, date)}",
        f" CARD NO   : {txn.card}******{txn.last4}",
        f" RESP CODE : {txn.resp}",
        f" TRN TYPE  : {'BALANCE INQUIRY' if txn.balance else 'CASH WITHDRAWAL'}",
    ]
    if approved_withdrawal:
        lines.append(f" AMT AUTH  : {_major(txn.amount)}")
        lines.append(f" DISPENSED : 1:{d[0]:02d} 2:{d[1]:02d} 3:{d[2]:02d} 4:{d[3]:02d}")
        if txn.outcome == "retracted":
            lines.append(" NOTES RETRACTED : " + ",".join(str(n) for n in d))
    elif txn.balance:
        lines.append(" AVAIL BAL : 100.00")
    else:
        lines.append(f" AMT REQ   : {_major(txn.amount)}")
    lines.append(" *****END*****")
    if approved_withdrawal:
        status = {"taken": 0, "short": 1, "none": 2, "power": 3, "retracted": 5}[txn.outcome]
        lines.append(f"*{serial}*1*E*{status}" + "".join(f"{n:02d}" for n in d) + ",M-00,R-00000")
    return "\n".join(lines) + "\n"


def iso_message(
    mti: str,
    txn: Txn,
    *,
    tid: str = TID,
    date: str = DATE,
    rc: str | None = "00",
    actual: int | None = None,
    sent: str | None = None,
    pan: str | None = None,
) -> bytes:
    """One length-prefixed ISO 8583 record, encoded by pyiso8583."""
    mmdd = date[5:7] + date[8:10]
    hhmmss = txn.time.replace(":", "")
    doc: dict[str, str] = {
        "t": mti,
        "2": pan or f"{txn.card}123456{txn.last4}",
        "3": "310000" if txn.balance else "010000",
        "4": f"{0 if txn.balance else txn.amount:012d}",
        "7": sent or mmdd + hhmmss,
        "11": txn.stan,
        "12": hhmmss,
        "13": mmdd,
        "37": rrn(txn.stan, txn.time, date),
        "41": tid,
        "49": "840",
    }
    if mti in ("0210", "0420"):
        assert rc is not None
        doc["39"] = rc
        if rc == "00" or mti == "0420":
            doc["38"] = "123456"
    if mti == "0420":
        doc["90"] = "0200" + txn.stan + doc["7"] + "00000123456" + "00000000000"
        if actual is not None:
            doc["95"] = f"{actual:012d}{actual:012d}C00000000C00000000"
    raw, _ = iso8583.encode(doc, default_ascii)
    return len(raw).to_bytes(2, "big") + bytes(raw)


def approved_pair(txn: Txn, **kwargs: str) -> bytes:
    return iso_message("0200", txn, rc=None, **kwargs) + iso_message("0210", txn, **kwargs)


def snapshot(
    timestamp: str,
    reason: str,
    counts: tuple[int, int, int, int],
    *,
    phase: str = "",
    initial: int = 2000,
    physical: tuple[int, int, int, int] | None = None,
) -> dict[str, object]:
    units = []
    for number, (value, count) in enumerate(zip(DENOMINATIONS, counts, strict=True), start=1):
        unit: dict[str, object] = {
            "usNumber": number,
            "usType": 3,
            "cUnitID": f"CST0{number}",
            "cCurrencyID": "USD",
            "ulValues": value,
            "ulInitialCount": initial,
            "ulCount": count,
            "ulRejectCount": 0,
            "ulMinimum": initial // 10,
            "ulMaximum": 0,
            "usStatus": 0,
            "ulDispensedCount": initial - count,
            "ulPresentedCount": initial - count,
            "ulRetractedCount": 0,
        }
        if physical is not None:
            unit["physical_count"] = physical[number - 1]
        units.append(unit)
    for number, kind, unit_id, capacity in ((5, 2, "REJ01", 300), (6, 6, "RTR01", 100)):
        bin_unit: dict[str, object] = {
            "usNumber": number,
            "usType": kind,
            "cUnitID": unit_id,
            "cCurrencyID": "USD",
            "ulValues": 0,
            "ulInitialCount": 0,
            "ulCount": 0,
            "ulRejectCount": 0,
            "ulMinimum": 0,
            "ulMaximum": capacity,
            "usStatus": 0,
            "ulDispensedCount": 0,
            "ulPresentedCount": 0,
            "ulRetractedCount": 0,
        }
        if physical is not None:
            bin_unit["physical_count"] = 0
        units.append(bin_unit)
    data: dict[str, object] = {"timestamp": timestamp, "reason": reason, "cash_units": units}
    if phase:
        data["phase"] = phase
    return data


def counters_file(snapshots: list[dict[str, object]], tid: str = TID, date: str = DATE) -> bytes:
    return json.dumps({"terminal_id": tid, "business_date": date, "snapshots": snapshots}).encode()


def paper_receipt(txn: Txn, tid: str = TID, date: str = DATE) -> str:
    block = ndc_block(txn, tid, date)
    receipt = block[block.index(" *****START*****") : block.index(" *****END*****") + 15]
    return "\n".join(line[1:] for line in receipt.splitlines()) + "\n"


@dataclass
class Scenario:
    """EJ, host, paper and counters content for one terminal-day, as sources."""

    ej: list[Txn] = field(default_factory=list)
    host: bytes = b""
    paper: list[Txn] | None = None
    counters: bytes | None = field(
        default_factory=lambda: counters_file(
            [
                snapshot("2026-11-16T00:00:00", "start_of_day", (1900, 1900, 1900, 1900)),
                snapshot("2026-11-16T23:59:59", "end_of_day", (1800, 1800, 1800, 1800)),
            ]
        )
    )
    ej_extra: str = ""

    def sources(self) -> Sources:
        sources = Sources()
        text = "".join(ndc_block(txn) for txn in self.ej) + self.ej_extra
        sources.add_ej_bytes(TID, DATE, text.encode())
        sources.add_bytes("iso", "host:20261116.iso", self.host, business_date=DATE)
        if self.paper is not None:
            paper = "--- PAGE 1 ---\n" + "\n".join(paper_receipt(txn) for txn in self.paper)
            sources.add_bytes(
                "paper", "paper:T9000001", paper.encode(), terminal_id=TID, business_date=DATE
            )
        if self.counters is not None:
            sources.add_bytes(
                "counters", "counters:T9000001", self.counters, terminal_id=TID, business_date=DATE
            )
        return sources
