"""One customer transaction as the simulated ATM lived it: times, keys, notes and outcome.

Times are seconds since local midnight of the business day. The journal
dialects, the paper journal, the host exchange and the ground truth all read
the same record, so the sources agree wherever no fault says otherwise.
"""

from __future__ import annotations

# cash outcome of an approved withdrawal
TAKEN = "taken"
RETRACTED = "retracted"
PARTIAL = "partial"
NONE = "none"
POWER = "power"


class Transaction:
    """A finished transaction (mutable while the ATM works it; plain slots for speed)."""

    __slots__ = (
        "amount",
        "auth",
        "balance",
        "commanded",
        "date_iso",
        "m_code",
        "outcome",
        "pan",
        "presented",
        "r_code",
        "rc",
        "rejected",
        "rrn",
        "serial",
        "stan",
        "status_t",
        "t_done",
        "t_end",
        "t_fault",
        "t_pin",
        "t_power_up",
        "t_present",
        "t_reject",
        "t_req",
        "t_resp",
        "t_start",
        "terminal_id",
        "withdrawal",
    )

    def __init__(self, terminal_id: str, date_iso: str, withdrawal: bool, amount: int) -> None:
        self.terminal_id = terminal_id
        self.date_iso = date_iso
        self.withdrawal = withdrawal
        self.amount = amount  # minor units requested (0 for a balance inquiry)
        self.pan = ""
        self.stan = ""
        self.serial = ""
        self.rrn = ""
        self.rc = ""  # response code the ATM saw; "TO" when no reply
        self.auth = ""
        self.balance = 0
        self.commanded = [0, 0, 0, 0]
        self.presented = [0, 0, 0, 0]
        self.rejected = [0, 0, 0, 0]
        self.outcome = ""
        self.status_t = "0"
        self.m_code = "00"
        self.r_code = "00000"
        self.t_start = self.t_pin = self.t_req = self.t_resp = 0
        self.t_reject = self.t_fault = self.t_present = self.t_done = 0
        self.t_power_up = self.t_end = 0
