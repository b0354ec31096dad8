"""The discrepancy kinds, exactly as named in ``shared/formats/README.md``, with
who is owed and what the reconciliation team should do about each.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    NO_DISPENSE_NO_REVERSAL = "no_dispense_no_reversal"
    NO_DISPENSE_REVERSED = "no_dispense_reversed"
    PARTIAL_DISPENSE_NO_REVERSAL = "partial_dispense_no_reversal"
    PARTIAL_DISPENSE_REVERSED = "partial_dispense_reversed"
    RETRACT_NO_REVERSAL = "retract_no_reversal"
    RETRACT_REVERSED = "retract_reversed"
    HOST_TIMEOUT_NO_REVERSAL = "host_timeout_no_reversal"
    HOST_TIMEOUT_REVERSED = "host_timeout_reversed"
    DISPENSED_NOT_IN_HOST = "dispensed_not_in_host"
    HOST_DUPLICATE = "host_duplicate"
    EJ_GAP = "ej_gap"
    PAPER_GAP = "paper_gap"
    CASSETTE_SHORTAGE = "cassette_shortage"
    CASSETTE_OVERAGE = "cassette_overage"


CASSETTE_KINDS = frozenset((Kind.CASSETTE_SHORTAGE, Kind.CASSETTE_OVERAGE))
DATA_GAP_KINDS = frozenset((Kind.EJ_GAP, Kind.PAPER_GAP))


class Owed(StrEnum):
    """Whose money is at stake."""

    CUSTOMER = "customer"
    BANK = "bank"
    NOBODY = "none"


class Action(StrEnum):
    REFUND = "refund"
    REFUND_DIFFERENCE = "refund_difference"
    VERIFY_RETRACT_BIN_AND_REFUND = "verify_retract_bin_and_refund"
    CHARGEBACK_DEFENCE = "chargeback_defence"
    RAISE_WITH_SWITCH = "raise_with_switch"
    REVERSE_DUPLICATE = "reverse_duplicate_posting"
    RELY_ON_HOST_AND_PAPER = "rely_on_host_and_paper"
    NONE = "none"
    INVESTIGATE_CASSETTE = "investigate_cassette"


class KindInfo:
    """Fixed facts about a kind: who is owed, the suggested action, the explanation."""

    __slots__ = ("action", "owed", "text")

    def __init__(self, owed: Owed, action: Action, text: str) -> None:
        self.owed = owed
        self.action = action
        self.text = text


KIND_INFO: dict[Kind, KindInfo] = {
    Kind.NO_DISPENSE_NO_REVERSAL: KindInfo(
        Owed.CUSTOMER,
        Action.REFUND,
        "host approved, ATM dispensed nothing, no reversal: refund the customer",
    ),
    Kind.NO_DISPENSE_REVERSED: KindInfo(
        Owed.NOBODY,
        Action.CHARGEBACK_DEFENCE,
        "host approved, ATM dispensed nothing, 0420 reversal present: no customer loss; "
        "keep the evidence to answer a dispute",
    ),
    Kind.PARTIAL_DISPENSE_NO_REVERSAL: KindInfo(
        Owed.CUSTOMER,
        Action.REFUND_DIFFERENCE,
        "short dispense without a reversal: refund the difference",
    ),
    Kind.PARTIAL_DISPENSE_REVERSED: KindInfo(
        Owed.NOBODY,
        Action.CHARGEBACK_DEFENCE,
        "short dispense, partial reversal (DE95) present: no customer loss",
    ),
    Kind.RETRACT_NO_REVERSAL: KindInfo(
        Owed.CUSTOMER,
        Action.VERIFY_RETRACT_BIN_AND_REFUND,
        "notes presented then retracted, no reversal: verify the retract-bin count, refund",
    ),
    Kind.RETRACT_REVERSED: KindInfo(
        Owed.NOBODY,
        Action.CHARGEBACK_DEFENCE,
        "notes presented then retracted, 0420 reversal present",
    ),
    Kind.HOST_TIMEOUT_NO_REVERSAL: KindInfo(
        Owed.CUSTOMER,
        Action.REFUND,
        "host approved, ATM got no reply and dispensed nothing, no reversal: refund",
    ),
    Kind.HOST_TIMEOUT_REVERSED: KindInfo(
        Owed.NOBODY,
        Action.CHARGEBACK_DEFENCE,
        "host approved, ATM got no reply and dispensed nothing, late-response reversal present",
    ),
    Kind.DISPENSED_NOT_IN_HOST: KindInfo(
        Owed.BANK,
        Action.RAISE_WITH_SWITCH,
        "EJ shows cash taken but the switch has no record: bank loss, raise with the switch",
    ),
    Kind.HOST_DUPLICATE: KindInfo(
        Owed.CUSTOMER,
        Action.REVERSE_DUPLICATE,
        "one transaction at the ATM, posted twice by the switch: reverse the second posting",
    ),
    Kind.EJ_GAP: KindInfo(
        Owed.NOBODY,
        Action.RELY_ON_HOST_AND_PAPER,
        "transaction lines missing from the EJ: rely on the host and the paper",
    ),
    Kind.PAPER_GAP: KindInfo(
        Owed.NOBODY,
        Action.NONE,
        "receipt block missing from the paper journal: data gap, not a customer issue",
    ),
    Kind.CASSETTE_SHORTAGE: KindInfo(
        Owed.BANK,
        Action.INVESTIGATE_CASSETTE,
        "fewer notes in the cassette than the counters say: investigate",
    ),
    Kind.CASSETTE_OVERAGE: KindInfo(
        Owed.CUSTOMER,
        Action.INVESTIGATE_CASSETTE,
        "more notes in the cassette than the counters say: investigate, possible customer claim",
    ),
}
