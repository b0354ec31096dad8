"""Which discrepancy or data gap a transaction carries: random rates, or faults injected on demand.

A *directive* tells the ATM and the switch what goes wrong with one
transaction (dispense failure, retract, host timeout, a record the switch loses
or logs twice, journal lines lost, a paper gap). :class:`FaultPolicy` draws them
at a configurable rate from a weighted mix, restricted to what can happen to
that transaction, and serves injected ones first, so tests and demos can raise
a given fault on the next transaction it fits.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from random import Random

from simulators.errors import ConfigurationError

NORMAL = "normal"
NO_DISPENSE = "no_dispense"  # pick failure: nothing presented (M-03)
DISPENSER_JAM = "dispenser_jam"  # jam in the presenter: nothing presented (M-05), dispenser down
POWER_CUT = "power_interruption"  # power lost mid-dispense (M-08)
PARTIAL = "partial_dispense"  # short dispense (M-05)
RETRACT = "notes_not_taken"  # presented, not taken within 30 s, retracted
TIMEOUT = "host_timeout"  # the switch approved, the terminal never got the reply
NOT_IN_HOST = "dispensed_not_in_host"  # the switch lost the 0200/0210 pair
DUPLICATE = "host_duplicate"  # the switch logged the pair twice
EJ_TRUNCATED = "ej_truncated"  # journal cut after 1-3 lines, power up minutes later
EJ_LOST = "ej_lost"  # journal lines lost altogether
PAPER_JAM = "paper_jam"  # 1-3 receipts missing from the paper only
ROLL_CHANGE = "roll_change"  # journal printer out of paper for 1-3 receipts

REVERSIBLE = frozenset({NO_DISPENSE, DISPENSER_JAM, POWER_CUT, PARTIAL, RETRACT, TIMEOUT})
_NEEDS_APPROVED_WITHDRAWAL = frozenset(
    {NO_DISPENSE, DISPENSER_JAM, POWER_CUT, PARTIAL, RETRACT, TIMEOUT, NOT_IN_HOST, DUPLICATE}
)
_PAPER = frozenset({PAPER_JAM, ROLL_CHANGE})
_EJ = frozenset({EJ_TRUNCATED, EJ_LOST})
DIRECTIVES = frozenset(_NEEDS_APPROVED_WITHDRAWAL | _PAPER | _EJ)

# relative frequencies of the random mix (close to the reference sample's)
DEFAULT_WEIGHTS: Mapping[str, float] = {
    NO_DISPENSE: 16.0,
    POWER_CUT: 4.0,
    PARTIAL: 14.0,
    RETRACT: 16.0,
    TIMEOUT: 11.0,
    NOT_IN_HOST: 9.0,
    DUPLICATE: 6.0,
    EJ_TRUNCATED: 3.0,
    EJ_LOST: 3.0,
    PAPER_JAM: 5.0,
    ROLL_CHANGE: 5.0,
}


def applicable(
    directive: str, withdrawal: bool, approved: bool, notes: int, paper_gap_open: bool
) -> bool:
    """Whether a directive can happen to this transaction."""
    if directive in _NEEDS_APPROVED_WITHDRAWAL:
        if not (withdrawal and approved):
            return False
        return notes >= 2 if directive == PARTIAL else True
    if directive in _PAPER or directive in _EJ:
        return not paper_gap_open
    return directive == NORMAL


class FaultPolicy:
    """Draws a directive per transaction; injected directives go first."""

    def __init__(
        self,
        rate: float = 0.0,
        *,
        weights: Mapping[str, float] = DEFAULT_WEIGHTS,
        reversal_share: float = 0.65,
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ConfigurationError(f"discrepancy rate must be within 0..1, not {rate}")
        if not 0.0 <= reversal_share <= 1.0:
            raise ConfigurationError(f"reversal share must be within 0..1, not {reversal_share}")
        unknown = set(weights) - DIRECTIVES
        if unknown:
            raise ConfigurationError(f"unknown fault kinds in weights: {sorted(unknown)}")
        self.rate = rate
        self.reversal_share = reversal_share
        self.kinds = [k for k, w in weights.items() if w > 0]
        self.weights = [weights[k] for k in self.kinds]
        self.pending: deque[tuple[str, bool | None]] = deque()

    def inject(self, directive: str, reversal: bool | None = None) -> None:
        """Queue a directive for the next transaction it fits (reversal: None = random)."""
        if directive not in DIRECTIVES:
            raise ConfigurationError(f"unknown fault {directive!r}")
        self.pending.append((directive, reversal))

    def choose(
        self, rng: Random, withdrawal: bool, approved: bool, notes: int, paper_gap_open: bool
    ) -> tuple[str, bool]:
        """(directive, reversal) for one transaction."""
        if self.pending:
            directive, reversal = self.pending[0]
            if applicable(directive, withdrawal, approved, notes, paper_gap_open):
                self.pending.popleft()
                if reversal is None:
                    reversal = rng.random() < self.reversal_share
                return directive, reversal and directive in REVERSIBLE
        if self.rate <= 0.0 or rng.random() >= self.rate:
            return NORMAL, False
        kinds = [
            (k, w)
            for k, w in zip(self.kinds, self.weights, strict=True)
            if applicable(k, withdrawal, approved, notes, paper_gap_open)
        ]
        if not kinds:
            return NORMAL, False
        directive = rng.choices([k for k, _ in kinds], weights=[w for _, w in kinds])[0]
        reversal = directive in REVERSIBLE and rng.random() < self.reversal_share
        return directive, reversal
