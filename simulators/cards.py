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


def random_pan(rng: Random) -> str:
    """A 16-digit Luhn-valid card number on one of the test BINs."""
    partial = TEST_BINS[rng.randrange(len(TEST_BINS))] + f"{rng.randrange(1_000_000_000):09d}"
    return partial + luhn_check_digit(partial)


def mask_pan(pan: str) -> str:
    """First 6, ``******``, last 4: the form in journals, paper and the CSV."""
    return f"{pan[:6]}******{pan[-4:]}"


def mask_pan_ndc(pan: str) -> str:
    """NDC's ``Card Inserted`` form: first 6, ``XXXXXX``, last 4."""
    return f"{pan[:6]}XXXXXX{pan[-4:]}"
