"""The host/switch simulator: authorises requests and keeps the switch's message log.

For every request the switch decides (approval, or decline with ``05``/``51``/
``55``), logs the 0200/0210 pair in ISO 8583 (``default_ascii``) and exports one
CSV row per 0210 and 0420. Faults that live on the switch side are parameters
of the exchange: a response sent too late for the terminal (host timeout), a
pair logged twice (duplicate), a pair never logged (dispensed but not in host),
and reversals (0420 with DE90, DE95 for a partial).

Records are kept per business day; :func:`write_host_day` writes
``host/<YYYYMMDD>.iso`` (ascending DE7, ties by terminal) and ``.csv``
(by terminal, then time). Live ATMs close their days one by one;
:class:`HostLog` collects their days and rewrites a day's files as each
terminal's day is added, so the files always hold every terminal closed so far.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from random import Random

from simulators import iso
from simulators.cards import mask_pan

CSV_HEADER = (
    "terminal_id,business_date,local_time,stan,rrn,pan_masked,processing_code,amount_minor,"
    "currency,response_code,auth_code,msg_type,original_stan,actual_amount_minor"
)

# (log time in seconds of the day, sequence within the terminal, framed record)
IsoRecord = tuple[int, int, bytes]


class HostDay:
    """One terminal's records for one business day, in the order the switch made them."""

    __slots__ = ("csv_rows", "iso_records", "seq")

    def __init__(self) -> None:
        self.iso_records: list[IsoRecord] = []
        self.csv_rows: list[str] = []
        self.seq = 0

    def add_iso(self, log_time: int, message: bytes) -> None:
        self.seq += 1
        self.iso_records.append((log_time, self.seq, iso.frame(message)))


class HostSwitch:
    """Authorisation and logging for the terminals it serves (decisions drawn from ``rng``)."""

    def __init__(
        self,
        rng: Random,
        *,
        decline_rate: float = 0.07,
        balance_decline_rate: float = 0.03,
        packer: Callable[[dict[str, str]], bytes] = iso.pack,
    ) -> None:
        self.rng = rng
        self.decline_rate = decline_rate
        self.balance_decline_rate = balance_decline_rate
        self.pack = packer
        self.days: dict[tuple[str, str], HostDay] = {}

    def day(self, terminal_id: str, date_iso: str) -> HostDay:
        key = (terminal_id, date_iso)
        day = self.days.get(key)
        if day is None:
            day = self.days[key] = HostDay()
        return day

    def pop_day(self, terminal_id: str, date_iso: str) -> HostDay:
        return self.days.pop((terminal_id, date_iso), None) or HostDay()

    def decide(self, withdrawal: bool, amount: int) -> tuple[str, str, int]:
        """(response code, auth code or "", available balance in minor units)."""
        rng = self.rng
        if withdrawal:
            if rng.random() < self.decline_rate:
                u = rng.random()
                return ("51" if u < 0.5 else "55" if u < 0.8 else "05"), "", 0
        elif rng.random() < self.balance_decline_rate:
            return "55", "", 0
        balance = 0 if withdrawal else rng.randrange(1_000, 900_000)
        return "00", f"{rng.randrange(1_000_000):06d}", balance

    def exchange(
        self,
        *,
        terminal_id: str,
        date_iso: str,
        pan: str,
        withdrawal: bool,
        amount: int,
        stan: str,
        rrn: str,
        t_req: int,
        t_resp: int,
        rc: str,
        auth: str,
        logged: bool = True,
        duplicate_at: int | None = None,
    ) -> None:
        """Log the 0200/0210 pair of one request (``logged=False``: the switch lost it)."""
        if not logged:
            return
        mmdd = date_iso[5:7] + date_iso[8:10]
        hms = _hms(t_req)
        proc = iso.PROC_WITHDRAWAL if withdrawal else iso.PROC_BALANCE
        fields = {
            "t": "0200",
            "2": pan,
            "3": proc,
            "4": f"{amount:012d}",
            "7": mmdd + hms,
            "11": stan,
            "12": hms,
            "13": mmdd,
            "37": rrn,
            "41": terminal_id,
            "49": iso.CURRENCY,
        }
        request = self.pack(fields)
        fields["t"] = "0210"
        fields["7"] = mmdd + _hms(t_resp)
        if rc == "00":
            fields["38"] = auth
        fields["39"] = rc
        response = self.pack(fields)
        day = self.day(terminal_id, date_iso)
        day.add_iso(t_req, request)
        day.add_iso(t_resp, response)
        row = (
            f"{terminal_id},{date_iso},{_colon(hms)},{stan},{rrn},{mask_pan(pan)},{proc},"
            f"{amount},{iso.CURRENCY},{rc},{auth},0210,,"
        )
        day.csv_rows.append(row)
        if duplicate_at is not None:
            day.add_iso(duplicate_at, request)
            day.add_iso(duplicate_at, response)
            day.csv_rows.append(row)

    def reversal(
        self,
        *,
        terminal_id: str,
        date_iso: str,
        pan: str,
        amount: int,
        stan: str,
        rrn: str,
        t_req: int,
        t_sent: int,
        auth: str,
        reason: str,
        actual: int | None = None,
    ) -> None:
        """Log a 0420 reversal advice; ``actual`` (dispensed minor units) makes it partial."""
        mmdd = date_iso[5:7] + date_iso[8:10]
        hms = _hms(t_req)
        fields = {
            "t": "0420",
            "2": pan,
            "3": iso.PROC_WITHDRAWAL,
            "4": f"{amount:012d}",
            "7": mmdd + _hms(t_sent),
            "11": stan,
            "12": hms,
            "13": mmdd,
            "37": rrn,
            "38": auth,
            "39": reason,
            "41": terminal_id,
            "49": iso.CURRENCY,
            "90": iso.de90(stan, mmdd + hms),
        }
        if actual is not None:
            fields["95"] = iso.de95(actual)
        day = self.day(terminal_id, date_iso)
        day.add_iso(t_sent, self.pack(fields))
        day.csv_rows.append(
            f"{terminal_id},{date_iso},{_colon(hms)},{stan},{rrn},{mask_pan(pan)},"
            f"{iso.PROC_WITHDRAWAL},{amount},{iso.CURRENCY},{reason},{auth},0420,{stan},"
            f"{actual or 0}"
        )


_HMS6: list[str] = [f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}" for s in range(86400)]
_hms = _HMS6.__getitem__


def _colon(hms: str) -> str:
    return f"{hms[0:2]}:{hms[2:4]}:{hms[4:6]}"


def merge_iso(per_terminal: Sequence[tuple[str, Sequence[IsoRecord]]]) -> Iterable[bytes]:
    """Records of all terminals in log order: ascending log time, ties by terminal."""
    streams = []
    for terminal_id, records in per_terminal:
        ordered = sorted(records)
        streams.append([(t, terminal_id, seq, data) for t, seq, data in ordered])
    for _, _, _, data in heapq.merge(*streams):
        yield data


def write_host_day(
    directory: Path, date_iso: str, per_terminal: Sequence[tuple[str, HostDay]]
) -> None:
    """Write ``<YYYYMMDD>.iso`` and ``.csv`` for one business day from every terminal's records."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = date_iso.replace("-", "")
    ordered = sorted(per_terminal, key=lambda item: item[0])
    with open(directory / f"{stem}.iso", "wb") as out:
        out.write(b"".join(merge_iso([(tid, day.iso_records) for tid, day in ordered])))
    with open(directory / f"{stem}.csv", "w", encoding="ascii", newline="\n") as text:
        text.write(CSV_HEADER + "\n")
        for _, day in ordered:
            if day.csv_rows:
                text.write("\n".join(_by_time(day.csv_rows)) + "\n")


def _by_time(rows: list[str]) -> list[str]:
    # rows are made in time order except for a reversal sent after a later request;
    # the sort is stable, so a 0210 stays before its 0420 and duplicates stay together
    return sorted(rows, key=lambda row: row[20:28])


class HostLog:
    """The switch's day files for live ATMs that close their business days one by one.

    ``close_day`` adds one terminal's records of a day and rewrites that day's
    ``.iso`` and ``.csv`` with every terminal added so far (thread-safe, so the
    ATMs of a fleet may share one log). Days more than ``keep_days`` before the
    latest are forgotten (their files stay as written).
    """

    def __init__(self, directory: Path, *, keep_days: int = 2) -> None:
        self.directory = directory
        self.keep_days = keep_days
        self._days: dict[str, dict[str, HostDay]] = {}
        self._lock = threading.Lock()

    def close_day(self, date_iso: str, terminal_id: str, day: HostDay) -> None:
        with self._lock:
            terminals = self._days.setdefault(date_iso, {})
            terminals[terminal_id] = day
            write_host_day(self.directory, date_iso, sorted(terminals.items()))
            for old in sorted(self._days)[: -self.keep_days]:
                del self._days[old]
