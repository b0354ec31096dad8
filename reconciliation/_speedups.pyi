"""Compiled versions of the reconciliation's innermost loops (``_speedups.c``)."""

def paper_readings(
    normal: bytes, spans: list[tuple[int, int, int, int]], /
) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]: ...
def iso_records(
    buffer: bytes, /
) -> tuple[list[str], list[int], list[int], list[tuple[int, int, bytes]], int, int]: ...
