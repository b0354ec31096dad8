"""Fictitious card numbers: Luhn-valid PANs on test BINs, and their masked forms.

Journals, paper and the settlement CSV show a card masked (first 6 and last 4
digits); only the switch's ISO 8583 log carries the full PAN (DE2).
"""

from __future__ import annotations

from random import Random

TEST_BINS: tuple[str, ...] = ("520473", "453201", "476173", "601120", "400022", "535110")


def luhn_check_digit(partial: str) -> str:
    """The digit that makes ``partial + digit`` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        digit = ord(char) - 48
        if index % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return str((10 - total % 10) % 10)


def luhn_valid(pan: str) -> bool:
    """Whether a digit string passes the Luhn check."""
    return pan.isdigit() and luhn_check_digit(pan[:-1]) == pan[-1]


_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)
# Luhn contribution of two adjacent digits "ab" when b is in a doubled position
_PAIR = tuple(_DOUBLED[n % 10] + n // 10 for n in range(100))


def _bin_sum(bin6: str) -> int:
    # the BIN sits at positions 9..14 from the right of the 15-digit partial number
    total = 0
    for index, char in enumerate(reversed(bin6), start=9):
        digit = ord(char) - 48
        total += _DOUBLED[digit] if index % 2 == 0 else digit
    return total


_BIN_SUMS = tuple(_bin_sum(b) for b in TEST_BINS)


def random_pan(rng: Random) -> str:
    """A 16-digit Luhn-valid card number on one of the test BINs."""
    which = int(rng.random() * len(TEST_BINS))
    body = int(rng.random() * 1_000_000_000)
    total = (
        _BIN_SUMS[which]
        + _PAIR[body % 100]
        + _PAIR[body // 100 % 100]
        + _PAIR[body // 10_000 % 100]
        + _PAIR[body // 1_000_000 % 100]
        + _DOUBLED[body // 100_000_000]
    )
    return f"{TEST_BINS[which]}{body:09d}{(10 - total % 10) % 10}"


def mask_pan(pan: str) -> str:
    """First 6, ``******``, last 4: the form in journals, paper and the CSV."""
    return f"{pan[:6]}******{pan[-4:]}"


def mask_pan_ndc(pan: str) -> str:
    """NDC's ``Card Inserted`` form: first 6, ``XXXXXX``, last 4."""
    return f"{pan[:6]}XXXXXX{pan[-4:]}"
