"""The paper journal as the bank gets it back: printed receipts, scanned, OCR-transcribed.

:func:`ocr_noise` applies the noise model of ``shared/formats`` to a text: each
character is hit independently with probability ``p``; a look-alike is mostly
swapped, another visible character dropped, doubled or followed by a stray
space, a space removed or doubled, a line end merged into a space. Hits are
drawn by geometric skips, so the cost is per hit, not per character.
:func:`paginate` then cuts the transcription into pages of 56-64 lines, each
opened by an exact ``--- PAGE <n> ---`` marker.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import log
from random import Random

DEFAULT_P = 0.02
PAGE_MIN_LINES = 56
PAGE_MAX_LINES = 64

# look-alike substitutions; "1" becomes "l" or "I"
_SWAPS: dict[str, tuple[str, ...]] = {
    "0": ("O",),
    "O": ("0",),
    "1": ("l", "I"),
    "l": ("1",),
    "I": ("1",),
    "5": ("S",),
    "S": ("5",),
    "8": ("B",),
    "B": ("8",),
}


def _hit(char: str, u: float, rng: Random) -> str:
    """What one hit makes of one character, ``u`` uniform in [0, 1)."""
    if char == "\n":
        return " " if u < 0.4 else "\n"
    if char == " ":
        if u < 0.5:
            return ""
        return "  " if u < 0.8 else " "
    swaps = _SWAPS.get(char)
    if swaps is not None:
        if u < 0.7:
            return swaps[0] if len(swaps) == 1 else swaps[rng.randrange(len(swaps))]
        if u < 0.8:
            return ""
        return char + char if u < 0.9 else char + " "
    if u < 0.45:
        return ""
    return char + char if u < 0.75 else char + " "


def ocr_noise(text: str, rng: Random, p: float = DEFAULT_P) -> str:
    """The text as the OCR transcribes it, with per-character hit probability ``p``."""
    if p <= 0.0:
        return text
    if p >= 1.0:
        return "".join(_hit(char, rng.random(), rng) for char in text)
    log_q = log(1.0 - p)
    random = rng.random
    out: list[str] = []
    append = out.append
    n = len(text)
    start = 0
    index = int(log(1.0 - random()) / log_q)
    while index < n:
        append(text[start:index])
        append(_hit(text[index], random(), rng))
        start = index + 1
        index = start + int(log(1.0 - random()) / log_q)
    append(text[start:])
    return "".join(out)


def paginate(lines: Sequence[str], rng: Random) -> list[str]:
    """Lines with a ``--- PAGE <n> ---`` marker before every 56-64 of them."""
    out: list[str] = []
    page = 0
    index = 0
    while index < len(lines):
        page += 1
        size = rng.randint(PAGE_MIN_LINES, PAGE_MAX_LINES)
        out.append(f"--- PAGE {page} ---")
        out.extend(lines[index : index + size])
        index += size
    return out


def transcribe(blocks: Sequence[Sequence[str]], rng: Random, p: float = DEFAULT_P) -> str:
    """A day's paper journal file: receipt blocks separated by one empty line, OCR-noised,
    paginated, LF line ends. Empty when nothing was printed."""
    if not blocks:
        return ""
    printed = "\n\n".join("\n".join(block) for block in blocks)
    noisy = ocr_noise(printed, rng, p)
    return "\n".join(paginate(noisy.split("\n"), rng)) + "\n"
