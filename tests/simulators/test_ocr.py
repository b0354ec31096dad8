"""The OCR noise model has the rates of shared/formats (p = 0.02), measured on synthetic text."""

from __future__ import annotations

import itertools
from random import Random

import pytest

from simulators.paper import ocr_noise, paginate, transcribe

P = 0.02
N = 120_000


def _walk(original: str, noisy: str) -> dict[str, int]:
    """Align a noisy copy of a text made of distinct-in-a-row characters, counting what happened."""
    counts = {"kept": 0, "dropped": 0, "doubled": 0, "spaced": 0, "swapped": 0}
    j = 0
    for i, char in enumerate(original):
        nxt = original[i + 1] if i + 1 < len(original) else ""
        got = noisy[j] if j < len(noisy) else ""
        if got == char:
            j += 1
            if j < len(noisy) and noisy[j] == char:
                counts["doubled"] += 1
                j += 1
            elif j < len(noisy) and noisy[j] == " " and nxt != " ":
                counts["spaced"] += 1
                j += 1
            else:
                counts["kept"] += 1
        elif got in ("O", "l", "I", "S", "B", "0", "1", "5", "8") and got != nxt:
            counts["swapped"] += 1
            j += 1
        else:
            counts["dropped"] += 1
    return counts


def _close(observed: int, expected: float) -> bool:
    return abs(observed - expected) <= 4 * expected**0.5 + 2


def test_visible_characters() -> None:
    text = "ACE" * (N // 3)
    counts = _walk(text, ocr_noise(text, Random(1), P))
    assert _close(counts["dropped"], N * P * 0.45)
    assert _close(counts["doubled"], N * P * 0.30)
    assert _close(counts["spaced"], N * P * 0.25)
    assert counts["swapped"] == 0


@pytest.mark.parametrize(
    ("char", "swaps"), [("0", "O"), ("1", "lI"), ("5", "S"), ("8", "B"), ("O", "0")]
)
def test_look_alikes(char: str, swaps: str) -> None:
    text = (char + "AC") * (N // 3)
    noisy = ocr_noise(text, Random(2), P)
    counts = _walk(text, noisy)
    hits = N / 3 * P
    assert _close(counts["swapped"], hits * 0.7)
    assert set(noisy) <= set(text) | set(swaps) | {" "}


def test_spaces_and_line_ends() -> None:
    text = "A C " * (N // 4)
    noisy = ocr_noise(text, Random(3), P)
    spaces = letters = N // 2
    # a removed space joins two letters; "  " comes from a doubled space, a stray space
    # after a letter, or a letter dropped between two spaces
    assert _close(noisy.count("AC") + noisy.count("CA"), spaces * P * 0.5)
    assert _close(noisy.count("  "), spaces * P * 0.3 + letters * P * (0.25 + 0.45))
    lines = "\n".join(["AB"] * N)
    merged = (N - 1) - ocr_noise(lines, Random(4), P).count("\n")
    assert _close(merged, (N - 1) * P * 0.4)


def test_p_zero_is_exact_and_pages_are_56_to_64_lines() -> None:
    assert ocr_noise("TRACE 805272\n", Random(0), 0.0) == "TRACE 805272\n"
    pages = paginate([f"line {i}" for i in range(1000)], Random(5))
    markers = [i for i, line in enumerate(pages) if line.startswith("--- PAGE ")]
    sizes = [b - a - 1 for a, b in itertools.pairwise(markers)]
    assert all(56 <= s <= 64 for s in sizes)
    assert len(pages) - len(markers) == 1000
    assert transcribe([], Random(0)) == ""
    text = transcribe(
        [["*****START*****", "TRACE     : 805272", "*****END*****"]] * 3, Random(0), 0.0
    )
    assert text.startswith("--- PAGE 1 ---\n*****START*****")
    assert "*****END*****\n\n*****START*****" in text
