"""The simulated ATM: cash units, journal, paper roll, counters and its exchange with the switch.

:class:`Atm` serves one customer at a time on a business day (times in seconds
since local midnight) and writes what a real terminal leaves behind: EJ lines in
its dialect, receipt copies for the paper journal, XFS counters snapshots at the
start and end of the day and around each replenishment, and the unsolicited
events a device agent would see. The switch (:class:`~simulators.host.HostSwitch`)
authorises each request and logs it. Whatever the fault policy injects is
written to the ground truth as it happens; the counters are booked from the same
notes the journal shows, so they always agree with it (except across an EJ gap,
which the truth names).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from random import Random

from simulators import faults as f
from simulators import truth
from simulators.cards import random_pan
from simulators.cash import (
    STATUS_EMPTY,
    STATUS_FULL,
    STATUS_HIGH,
    STATUS_LOW,
    STATUS_OK,
    CashUnits,
)
from simulators.host import HostSwitch
from simulators.iso import REASON_LATE, REASON_NO_DISPENSE, REASON_PARTIAL, REASON_RETRACTED
from simulators.journal import DIALECTS, HMS, Dialect
from simulators.transaction import NONE, PARTIAL, POWER, RETRACTED, TAKEN, Transaction

END_OF_DAY = 86_399
REPICK_SHARE = 0.04  # dispenses with one note diverted to the reject bin and re-picked
_THRESHOLD_NAMES = {
    STATUS_OK: "ok",
    STATUS_LOW: "low",
    STATUS_EMPTY: "empty",
    STATUS_HIGH: "high",
    STATUS_FULL: "full",
}


@dataclass(frozen=True)
class TerminalConfig:
    """What makes one ATM: identity, journal dialect, cassettes and where its STAN starts."""

    terminal_id: str
    dialect: str = "ndc"
    denominations: tuple[int, int, int, int] = (20, 20, 50, 100)
    loads: tuple[int, int, int, int] = (2000, 2000, 1500, 1500)
    first_stan: int = 1


class DayOutput:
    """What one business day leaves behind."""

    __slots__ = ("date_iso", "ej", "paper", "snapshots", "transactions", "truth")

    def __init__(self, date_iso: str) -> None:
        self.date_iso = date_iso
        self.ej: list[str] = []
        self.paper: list[list[str]] = []
        self.snapshots: list[dict[str, object]] = []
        self.truth: list[dict[str, object]] = []
        self.transactions = 0


class Atm:
    """One simulated terminal (see the module docstring)."""

    def __init__(
        self,
        config: TerminalConfig,
        rng: Random,
        host: HostSwitch,
        policy: f.FaultPolicy,
        *,
        emit_events: bool = False,
    ) -> None:
        if len(config.terminal_id) != 8:
            raise ValueError(f"terminal ID must be 8 characters, not {config.terminal_id!r}")
        self.config = config
        self.terminal_id = config.terminal_id
        self.dialect: Dialect = DIALECTS[config.dialect]
        self.rng = rng
        self.host = host
        self.policy = policy
        self.cash = CashUnits(config.denominations, config.loads)
        self.loads = config.loads
        self.stan = (config.first_stan - 1) % 999_999  # last STAN used
        self.boot_id = 1
        self.clock = 0
        self.day = date(2000, 1, 1)
        self.date_iso = ""
        self._rrn_prefix = ""
        self.out = DayOutput("")
        self.paper_gap: tuple[str, str, int] | None = None  # (cause, gap_id, receipts left)
        self.reported: list[int | None] = self._supplies()
        self.dispenser_down = False
        self.events: list[dict[str, object]] | None = [] if emit_events else None
        self.last_transaction: Transaction | None = None

    # ------------------------------------------------------------------ day
    def begin_day(self, day: date) -> None:
        self.day = day
        self.date_iso = day.isoformat()
        self._rrn_prefix = f"{day.year % 10}{day.timetuple().tm_yday:03d}"
        self.clock = 0
        self.out = DayOutput(self.date_iso)
        self._snapshot(0, "start_of_day")

    def end_day(self) -> DayOutput:
        if self.paper_gap is not None:
            self._close_paper_gap(min(self.clock + 5, END_OF_DAY - 1))
        self._snapshot(END_OF_DAY, "end_of_day")
        out = self.out
        out.truth.sort(key=truth.time_of)
        return out

    def _snapshot(
        self,
        time: int,
        reason: str,
        phase: str | None = None,
        physical: Sequence[int] | None = None,
    ) -> None:
        snap: dict[str, object] = {"timestamp": f"{self.date_iso}T{HMS[time]}", "reason": reason}
        if phase is not None:
            snap["phase"] = phase
        snap["cash_units"] = self.cash.snapshot(physical)
        self.out.snapshots.append(snap)

    def _event(self, event: dict[str, object]) -> None:
        if self.events is not None:
            self.events.append(event)

    def _time_iso(self, time: int) -> str:
        return f"{self.date_iso}T{HMS[time]}"

    # ------------------------------------------------------------ customers
    def offers(self, amount_major: int) -> bool:
        """Whether the ATM can dispense that amount now (the greedy mix can make it)."""
        return not self.dispenser_down and self.cash.mix(amount_major) is not None

    def serve(self, arrival: int, withdrawal: bool, amount_major: int = 0) -> Transaction | None:
        """Serve one customer arriving at ``arrival``; None if the amount cannot be offered."""
        rng = self.rng
        rnd = rng.random

        def ri(a: int, b: int) -> int:
            return a + int(rnd() * (b - a + 1))

        cash = self.cash
        notes: list[int] = [0, 0, 0, 0]
        if withdrawal:
            if self.dispenser_down:
                return None
            mix = cash.mix(amount_major)
            if mix is None:
                return None
            notes = mix
        tid = self.terminal_id
        day_iso = self.date_iso
        out = self.out
        ej = out.ej
        dialect = self.dialect
        t0 = max(arrival, self.clock + 2)
        if t0 > END_OF_DAY - 1200:
            return None
        amount = amount_major * 100
        tx = Transaction(tid, day_iso, withdrawal, amount)
        tx.commanded = notes
        pan = tx.pan = random_pan(rng)
        tx.t_start = t0
        tx.t_pin = t0 + ri(6, 15)
        t_req = tx.t_req = tx.t_pin + ri(2, 9)
        self.stan = self.stan % 999_999 + 1
        stan = tx.stan = f"{self.stan:06d}"
        tx.serial = stan[2:]
        rrn = tx.rrn = f"{self._rrn_prefix}{t_req // 3600:02d}{stan}"
        rc, auth, balance = self.host.decide(withdrawal, amount)
        approved = rc == "00"
        tx.auth = auth
        tx.balance = balance
        directive, reverse = self.policy.choose(
            rng, withdrawal, approved, sum(notes), self.paper_gap is not None
        )
        if directive == f.PAPER_JAM or directive == f.ROLL_CHANGE:
            self.paper_gap = (directive, f"{tid}-{day_iso.replace('-', '')}-{stan}", ri(1, 3))
            if directive == f.ROLL_CHANGE:
                ej.append(dialect.event(t0 - 1, "paper_out"))
                self._device("journal_printer", "fatal", "paper out", t0 - 1)
            directive = f.NORMAL
        t_resp = t_req + ri(1, 3)
        host_resp = t_resp
        if directive == f.TIMEOUT:
            tx.rc = "TO"
            t_resp = t_req + 30
            host_resp = t_req + ri(2, 40)
        else:
            tx.rc = rc
        tx.t_resp = t_resp
        duplicate_at = None
        if directive == f.DUPLICATE:
            duplicate_at = min(t_req + ri(60, 3600), END_OF_DAY)
        self.host.exchange(
            terminal_id=tid,
            date_iso=day_iso,
            pan=pan,
            withdrawal=withdrawal,
            amount=amount,
            stan=stan,
            rrn=rrn,
            t_req=t_req,
            t_resp=host_resp,
            rc=rc,
            auth=auth,
            logged=directive != f.NOT_IN_HOST,
            duplicate_at=duplicate_at,
        )
        local_time = HMS[t_req]
        truth_out = out.truth
        dispensing = withdrawal and approved and directive != f.TIMEOUT
        if dispensing:
            cassettes = cash.cassettes
            before = [cassettes[n].status if notes[n] else 0 for n in range(4)]
            if self.events is not None:
                bins_before = (cash.reject_bin.status, cash.retract_bin.status)
        supplies: list[int | None] | None = None
        if dispensing:
            supplies = self._dispense(tx, directive, reverse, notes)
        elif directive == f.TIMEOUT:
            tx.t_end = t_resp + ri(5, 8)
            if reverse:
                self._reverse(tx, REASON_LATE, t_req + ri(34, 59))
            truth_out.append(
                truth.host_timeout(tid, day_iso, stan, rrn, local_time, amount, reverse)
            )
        elif withdrawal:
            tx.t_end = t_resp + ri(4, 7)
        else:
            tx.t_end = t_resp + ri(3, 5)
        # what the journal keeps of it
        lines, receipt = dialect.transaction(tx)
        self.clock = tx.t_end
        if directive == f.EJ_LOST:
            truth_out.append(truth.ej_gap(tid, day_iso, stan, rrn, local_time, amount, "lost"))
        elif directive == f.EJ_TRUNCATED:
            ej.extend(lines[: ri(1, 3)])
            truth_out.append(truth.ej_gap(tid, day_iso, stan, rrn, local_time, amount, "truncated"))
        else:
            ej.extend(lines)
            if supplies is not None:
                self.reported = supplies
        # thresholds crossed by this transaction
        if dispensing:
            t_line = tx.t_end
            for n in range(4):
                if not notes[n]:
                    continue
                status = cassettes[n].status
                if status != before[n] and status in (STATUS_LOW, STATUS_EMPTY):
                    t_line += ri(1, 3)
                    if directive not in (f.EJ_LOST, f.EJ_TRUNCATED):
                        word = "low" if status == STATUS_LOW else "empty"
                        ej.append(dialect.event(t_line, word, n + 1))
                    self._threshold(n + 1, status, t_line)
            if self.events is not None:
                for unit, old in zip((cash.reject_bin, cash.retract_bin), bins_before, strict=True):
                    if unit.status != old:
                        self._threshold(unit.number, unit.status, t_line)
            self.clock = t_line
        if directive == f.EJ_TRUNCATED:
            self.clock += ri(120, 900)
            ej.append(dialect.event(self.clock, "power_up"))
            self._power_up(self.clock)
        # what the paper roll keeps of it
        gap = self.paper_gap
        if gap is None:
            out.paper.append(receipt)
        else:
            cause, gap_id, left = gap
            if not gap_id:  # a gap opened by the printer: named by its first receipt
                gap_id = f"{tid}-{day_iso.replace('-', '')}-{stan}"
            truth_out.append(
                truth.paper_gap(tid, day_iso, stan, rrn, local_time, amount, cause, gap_id)
            )
            if left <= 1:
                self._close_paper_gap(self.clock + ri(5, 40))
            else:
                self.paper_gap = (cause, gap_id, left - 1)
        if directive == f.NOT_IN_HOST:
            truth_out.append(
                truth.dispensed_not_in_host(tid, day_iso, stan, rrn, local_time, amount)
            )
        elif directive == f.DUPLICATE:
            truth_out.append(truth.host_duplicate(tid, day_iso, stan, rrn, local_time, amount))
        out.transactions += 1
        self.last_transaction = tx
        return tx

    def _dispense(
        self, tx: Transaction, directive: str, reverse: bool, notes: list[int]
    ) -> list[int | None]:
        """Work the dispenser for an approved withdrawal; returns the supplies states reported."""
        rng = self.rng
        rnd = rng.random

        def ri(a: int, b: int) -> int:
            return a + int(rnd() * (b - a + 1))

        cash = self.cash
        t_resp = tx.t_resp
        rejected = [0, 0, 0, 0]
        presented = notes
        outcome = TAKEN
        if directive in (f.NO_DISPENSE, f.DISPENSER_JAM, f.POWER_CUT):
            presented = [0, 0, 0, 0]
            if rng.random() < 0.5:  # notes were picked, then diverted to the reject bin
                rejected = list(notes)
            if directive == f.POWER_CUT:
                outcome = POWER
                tx.status_t, tx.m_code = "3", "08"
            else:
                outcome = NONE
                tx.status_t, tx.m_code = ("2", "03") if directive == f.NO_DISPENSE else ("2", "05")
        else:
            if rng.random() < REPICK_SHARE:
                used = [n for n in range(4) if notes[n] and cash.cassettes[n].count > notes[n]]
                if used:
                    rejected[used[ri(0, len(used) - 1)]] = 1
            if directive == f.PARTIAL:
                outcome = PARTIAL
                tx.status_t, tx.m_code = "1", "05"
                keep = ri(1, sum(notes) - 1)
                presented = [0, 0, 0, 0]
                for n in cash.order:
                    take = min(notes[n], keep)
                    presented[n] = take
                    keep -= take
            elif directive == f.RETRACT:
                outcome = RETRACTED
                tx.status_t = "5"
        tx.presented = presented
        tx.rejected = rejected
        tx.outcome = outcome
        if any(rejected):
            tx.t_reject = t_resp + ri(1, 3)
        t_base = max(t_resp, tx.t_reject)
        reversal_at = 0
        if outcome == TAKEN:
            tx.t_present = t_base + ri(4, 8)
            tx.t_done = tx.t_present + ri(2, 10)
            tx.t_end = tx.t_done + ri(1, 3)
        elif outcome == RETRACTED:
            tx.t_present = t_base + ri(4, 8)
            tx.t_done = tx.t_present + 30
            tx.t_end = tx.t_done + ri(1, 3)
            reversal_at = tx.t_done + ri(2, 8)
        elif outcome == PARTIAL:
            tx.t_fault = t_base + ri(3, 6)
            tx.t_present = tx.t_fault + ri(0, 2)
            tx.t_done = tx.t_present + ri(3, 12)
            tx.t_end = tx.t_done + ri(1, 3)
            reversal_at = tx.t_fault + ri(2, 6)
        elif outcome == NONE:
            tx.t_fault = t_base + ri(2, 5)
            tx.t_end = tx.t_fault + ri(5, 7)
            reversal_at = tx.t_fault + ri(2, 6)
        else:
            tx.t_fault = t_base + ri(3, 6)
            tx.t_power_up = tx.t_fault + ri(120, 300)
            tx.t_end = tx.t_power_up + ri(20, 60)
            reversal_at = tx.t_power_up + ri(10, 40)
        cash.book(presented, rejected, outcome == RETRACTED)
        # device status record: supplies changed since the last report
        supplies = self._supplies()
        reported = self.reported
        tx.r_code = "".join(
            "0" if supplies[i] == reported[i] else str(supplies[i]) for i in range(5)
        )
        tid, day_iso, stan, rrn = tx.terminal_id, tx.date_iso, tx.stan, tx.rrn
        local_time = HMS[tx.t_req]
        amount = tx.amount
        truth_out = self.out.truth
        if outcome in (NONE, POWER):
            if reverse:
                self._reverse(tx, REASON_NO_DISPENSE, reversal_at)
            cause = "power_interruption" if outcome == POWER else "dispenser_error"
            truth_out.append(
                truth.no_dispense(tid, day_iso, stan, rrn, local_time, amount, cause, reverse)
            )
            if outcome == POWER:
                self._power_up(tx.t_power_up)
            else:
                code = "M-" + tx.m_code
                if directive == f.DISPENSER_JAM:
                    self.dispenser_down = True
                    self._device("dispenser", "fatal", "note jam in presenter", tx.t_fault, code)
                else:
                    self._event(
                        {
                            "kind": "cash_unit_error",
                            "time": self._time_iso(tx.t_fault),
                            "unit": 1 + max(range(4), key=lambda n: notes[n]),
                            "error": "pick_failure",
                        }
                    )
        elif outcome == PARTIAL:
            dispensed = self.cash.value_of(presented)
            if reverse:
                self._reverse(tx, REASON_PARTIAL, reversal_at, dispensed)
            truth_out.append(
                truth.partial_dispense(
                    tid, day_iso, stan, rrn, local_time, amount, dispensed, presented, reverse
                )
            )
            self._device("dispenser", "warning", "presenter error, short dispense", tx.t_fault)
            self._event(
                {
                    "kind": "hardware_recovered",
                    "time": self._time_iso(tx.t_end),
                    "device": "dispenser",
                }
            )
        elif outcome == RETRACTED:
            if reverse:
                self._reverse(tx, REASON_RETRACTED, reversal_at)
            truth_out.append(
                truth.retract(tid, day_iso, stan, rrn, local_time, amount, presented, reverse)
            )
        return supplies

    def _reverse(self, tx: Transaction, reason: str, sent: int, actual: int | None = None) -> None:
        self.host.reversal(
            terminal_id=tx.terminal_id,
            date_iso=tx.date_iso,
            pan=tx.pan,
            amount=tx.amount,
            stan=tx.stan,
            rrn=tx.rrn,
            t_req=tx.t_req,
            t_sent=min(sent, END_OF_DAY),
            auth=tx.auth,
            reason=reason,
            actual=actual,
        )

    def _supplies(self) -> list[int | None]:
        """NDC supplies states, reject bin then cassettes 1-4: 1 good, 2 low, 3 out, 4 overfill."""
        cash = self.cash
        bin_ = cash.reject_bin
        states: list[int | None] = [4 if bin_.count * 5 >= bin_.maximum * 4 else 1]
        for unit in cash.cassettes:
            count = unit.count
            states.append(3 if count <= 0 else 2 if count <= unit.minimum else 1)
        return states

    def _threshold(self, unit: int, status: int, time: int) -> None:
        name = _THRESHOLD_NAMES.get(status)
        if name is not None:
            self._event(
                {
                    "kind": "cash_unit_threshold",
                    "time": self._time_iso(time),
                    "unit": unit,
                    "status": name,
                }
            )

    def _device(
        self, device: str, severity: str, description: str, time: int, code: str = ""
    ) -> None:
        event: dict[str, object] = {
            "kind": "hardware_error",
            "time": self._time_iso(time),
            "device": device,
            "severity": severity,
            "code": code,
            "description": description,
        }
        self._event(event)

    def _power_up(self, time: int) -> None:
        self.boot_id += 1
        self._event(
            {"kind": "hardware_recovered", "time": self._time_iso(time), "device": "dispenser"}
        )

    def _close_paper_gap(self, time: int) -> None:
        gap = self.paper_gap
        self.paper_gap = None
        if gap is not None and gap[0] == f.ROLL_CHANGE:
            time = max(time, self.clock + 1)
            self.out.ej.append(self.dialect.event(time, "paper_in"))
            self.clock = time
            self._event(
                {
                    "kind": "hardware_recovered",
                    "time": self._time_iso(time),
                    "device": "journal_printer",
                }
            )

    # -------------------------------------------------------- at the terminal
    def replenish(
        self,
        time: int,
        count_errors: Sequence[tuple[int, int]] = (),
        loads: Sequence[int] | None = None,
    ) -> int:
        """A replenishment visit from ``time``; returns when the supervisor exits.

        ``count_errors`` are (cassette, physical - logical) pairs the engineer's
        count will show: a shortage when negative, an overage when positive.
        """
        ri = self.rng.randint
        dialect = self.dialect
        ej = self.out.ej
        cash = self.cash
        t = max(time, self.clock + 1)
        ej.append(dialect.event(t, "supervisor_entry"))
        self._event(
            {
                "kind": "service_mode",
                "time": self._time_iso(t),
                "in_service": False,
                "reason": "supervisor",
            }
        )
        t_before = t + ri(20, 40)
        ej.extend(dialect.counters(t_before, True, cash))
        physical = [unit.count for unit in cash.all]
        for cassette, delta in count_errors:
            unit = cash.cassettes[cassette - 1]
            counted = max(0, unit.count + delta)
            if counted == unit.count:
                continue
            physical[cassette - 1] = counted
            self.out.truth.append(
                truth.cassette_count(
                    self.terminal_id,
                    self.date_iso,
                    cassette,
                    unit.value,
                    unit.count,
                    counted,
                    HMS[t_before],
                )
            )
        self._snapshot(t_before, "replenishment", "before_exchange", physical)
        t = t_before
        for n in range(1, 5):
            t += ri(15, 60)
            ej.append(dialect.event(t, "removed", n))
        t += ri(240, 600)
        for n in range(1, 5):
            ej.append(dialect.event(t, "inserted", n))
            t += ri(15, 60)
        cash.replenish(loads or self.loads)
        ej.extend(dialect.counters(t, False, cash))
        self._snapshot(t, "replenishment", "after_exchange")
        for unit in cash.all:
            self._threshold(unit.number, unit.status, t)
        t += ri(10, 30)
        ej.append(dialect.event(t, "supervisor_exit"))
        self._event(
            {
                "kind": "service_mode",
                "time": self._time_iso(t),
                "in_service": True,
                "reason": "supervisor",
            }
        )
        self.reported = [None] * 5
        self.dispenser_down = False
        self.clock = t
        return t

    def supervisor_visit(self, time: int, minutes: int) -> int:
        """A visit without cash exchange (e.g. clearing a fault); returns the exit time."""
        dialect = self.dialect
        t = max(time, self.clock + 1)
        self.out.ej.append(dialect.event(t, "supervisor_entry"))
        self._event(
            {
                "kind": "service_mode",
                "time": self._time_iso(t),
                "in_service": False,
                "reason": "supervisor",
            }
        )
        t_exit = min(t + minutes * 60, END_OF_DAY - 60)
        self.out.ej.append(dialect.event(t_exit, "supervisor_exit"))
        self._event(
            {
                "kind": "service_mode",
                "time": self._time_iso(t_exit),
                "in_service": True,
                "reason": "supervisor",
            }
        )
        if self.dispenser_down:
            self.dispenser_down = False
            self._event(
                {
                    "kind": "hardware_recovered",
                    "time": self._time_iso(t_exit),
                    "device": "dispenser",
                }
            )
        self.clock = t_exit
        return t_exit

    def paper_out(self, time: int) -> None:
        """The journal printer runs out of paper: receipts are lost until :meth:`paper_loaded`."""
        if self.paper_gap is not None:
            return
        t = max(time, self.clock + 1)
        self.out.ej.append(self.dialect.event(t, "paper_out"))
        self._device("journal_printer", "fatal", "paper out", t)
        self.clock = t
        # a long roll change: the gap stays open until the paper is loaded
        self.paper_gap = (f.ROLL_CHANGE, "", 10**9)

    def paper_loaded(self, time: int) -> None:
        if self.paper_gap is not None and self.paper_gap[0] == f.ROLL_CHANGE:
            self._close_paper_gap(time)

    def cassette_states(self) -> list[int]:
        return [unit.status for unit in self.cash.cassettes]

    def needs_cash(self) -> bool:
        return any(s in (STATUS_LOW, STATUS_EMPTY) for s in self.cassette_states())
