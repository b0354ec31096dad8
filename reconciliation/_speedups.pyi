"""Compiled versions of the reconciliation's innermost loops (``reconciliation/csrc/``)."""

import re

from reconciliation.model import EjTransaction, PaperBlock

def paper_readings(
    normal: bytes, spans: list[tuple[int, int, int, int]], /
) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]: ...
def iso_records(
    buffer: bytes, /
) -> tuple[list[str], list[int], list[int], list[tuple[int, int, bytes]], int, int]: ...
def iso_walk(buffer: bytes, offset: int, target: int, /) -> tuple[int, int, bool]: ...
def paper_exact_pairs(
    blocks: list[PaperBlock],
    by_stan: dict[str, int],
    by_rrn: dict[str, int],
    compact: list[str],
    /,
) -> list[tuple[int, int, int]]: ...
def paper_runs(
    buffer: bytes, /
) -> tuple[int, list[tuple[int, int, int, int]], list[tuple[int, int, int]]]: ...
def ndc_scan(
    buffer: bytes, cls: type[EjTransaction], pattern: re.Pattern[bytes], /
) -> list[tuple[int, int, int, EjTransaction | re.Match[bytes]]]: ...
def procash_scan(
    buffer: bytes, cls: type[EjTransaction], pattern: re.Pattern[bytes], /
) -> list[tuple[int, int, int, EjTransaction | re.Match[bytes]]]: ...
