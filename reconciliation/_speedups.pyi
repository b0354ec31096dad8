"""Compiled versions of the reconciliation's innermost loops (``reconciliation/csrc/``)."""

import re
from typing import overload

from reconciliation.model import EjTransaction, PaperBlock
from reconciliation.paper_match import Expected
from reconciliation.xlsx import Cell

class ArrowColumn:
    """A column for ``pl.Series(column)``: int64 or UTF-8 values, no nulls."""

    def __arrow_c_array__(self, requested_schema: object = None, /) -> tuple[object, object]: ...
    def __len__(self) -> int: ...

@overload
def paper_readings(
    normal: bytes, spans: list[tuple[int, int, int, int]], /
) -> list[tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]]: ...
@overload
def paper_readings(
    normal: bytes, spans: list[tuple[int, int, int, int]], cls: type[PaperBlock], /
) -> list[PaperBlock]: ...
def iso_columns(
    buffer: bytes,
    lengths: tuple[int, ...],
    dates: list[str | None],
    first_record: int,
    thin: bool = False,
    /,
) -> tuple[tuple[ArrowColumn, ...], list[tuple[int, int, bytes]], int, int]: ...
def ej_columns(
    days: list[tuple[str, str, list[EjTransaction], int]], fields: tuple[int, ...], /
) -> tuple[ArrowColumn, ...]: ...
def ej_note_sums(
    transactions: list[EjTransaction], low: str, high: str, fields: tuple[int, ...], /
) -> tuple[list[int], list[int], list[int]] | None: ...
def iso_walk(buffer: bytes, offset: int, target: int, /) -> tuple[int, int, bool]: ...
def iso_gather(buffer: bytes, owners: object, count: int, /) -> list[bytes]: ...
def iso_locate(buffer: bytes, owners: object, count: int, base: int, /) -> list[bytes]: ...
def iso_collect(buffer: object, offsets: object, /) -> bytes: ...
def paper_exact_pairs(
    blocks: list[PaperBlock],
    by_stan: dict[str, int],
    by_rrn: dict[str, int],
    compact: list[str],
    /,
) -> list[tuple[int, int, int]]: ...
def paper_receipts(
    transactions: list[EjTransaction],
    host: dict[str, tuple[str, str, int, str]],
    fields: tuple[int, ...],
    cls: type[Expected],
    /,
) -> tuple[
    list[tuple[Expected, int, str]], list[Expected], dict[str, int], dict[str, int], list[str]
]: ...
def paper_chain(pairs: list[tuple[int, int, int]], /) -> list[tuple[int, int, int]]: ...
def paper_events(
    buffer: bytes, low: int, high: int, first_line: int, /
) -> tuple[int, list[tuple[int, int, int, int]]]: ...
def paper_runs(
    buffer: bytes, /
) -> tuple[int, list[tuple[int, int, int, int]], list[tuple[int, int, int]], int] | None: ...
def ej_tiles(
    items: list[tuple[int, int, int, EjTransaction | re.Match[bytes]]],
    cls: type[EjTransaction],
    size: int,
    /,
) -> tuple[list[EjTransaction], list[tuple[int, int, re.Match[bytes]]], int] | None: ...
def ndc_scan(
    buffer: bytes, cls: type[EjTransaction], pattern: re.Pattern[bytes], /
) -> list[tuple[int, int, int, EjTransaction | re.Match[bytes]]]: ...
def procash_scan(
    buffer: bytes, cls: type[EjTransaction], pattern: re.Pattern[bytes], /
) -> list[tuple[int, int, int, EjTransaction | re.Match[bytes]]]: ...
def xlsx_rows(
    rows: list[list[Cell]],
    strings: dict[str, int],
    first: int,
    style: int,
    styles: dict[int, int] | None,
    columns: list[str],
    /,
) -> tuple[list[str], int]: ...
