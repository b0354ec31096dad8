"""Card schemes by BIN range, with the window a cardholder has to dispute an ATM
cash withdrawal.

The figures are configurable defaults, not a copy of any network's rulebook:
each network publishes its own time limits (for ATM "cash not dispensed"
disputes they are commonly 120 calendar days from the processing date) and
they change; a bank passes its own table through ``Options.scheme_rules``.
A card whose BIN matches no rule gets no deadline.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True, slots=True)
class SchemeRule:
    """Cards whose BIN (first six digits) lies in ``[low, high]`` belong to ``scheme``."""

    scheme: str
    low: str
    high: str
    dispute_days: int

    def covers(self, bin6: str) -> bool:
        width = len(self.low)
        return self.low <= bin6[:width] <= self.high


DEFAULT_SCHEME_RULES: tuple[SchemeRule, ...] = (
    SchemeRule("visa", "4", "4", 120),
    SchemeRule("mastercard", "51", "55", 120),
    SchemeRule("mastercard", "2221", "2720", 120),
    SchemeRule("discover", "6011", "6011", 120),
    SchemeRule("discover", "644", "649", 120),
    SchemeRule("discover", "65", "65", 120),
    SchemeRule("amex", "34", "34", 120),
    SchemeRule("amex", "37", "37", 120),
)


def scheme_for(card: str, rules: tuple[SchemeRule, ...]) -> SchemeRule | None:
    """The first rule covering the card's BIN (masked numbers keep the first six)."""
    bin6 = card[:6]
    if len(bin6) < 6 or not bin6.isdigit():
        return None
    for rule in rules:
        if rule.covers(bin6):
            return rule
    return None


def dispute_deadline(business_date: str, rule: SchemeRule | None) -> str | None:
    """Last day of the dispute window, ``YYYY-MM-DD``, or ``None`` without a rule."""
    if rule is None:
        return None
    return (date.fromisoformat(business_date) + timedelta(days=rule.dispute_days)).isoformat()
