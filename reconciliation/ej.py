"""Electronic journals of either dialect: detect the dialect, parse, account for lines.

``parse_ej`` is what the rest of the package calls. It normalises line ends,
tries the dialect's whole-buffer fast path and falls back to its tolerant
line-by-line parser, so a file is read at full speed when it is clean and line
by line only when it needs to be.
"""

from __future__ import annotations

from reconciliation import ej_ndc, ej_procash
from reconciliation.model import EjParse

DIALECTS = ("ndc", "procash")


def detect_dialect(buffer: bytes) -> str:
    """``"ndc"`` or ``"procash"`` from the first recognisable marker in the text."""
    head = buffer[:65536]
    procash = max(
        head.find(b"-> TRANSACTION START"),
        head.find(b"CASH COUNTERS"),
        head.find(b"\n" + b"*" * 31 + b"\n"),
    )
    ndc = max(head.find(b"Card Inserted ("), head.find(b" *****START*****"))
    if procash == -1 and ndc == -1:
        return "procash" if head.count(b"ATM ID") > head.count(b"TERMINAL  :") else "ndc"
    if procash == -1:
        return "ndc"
    if ndc == -1:
        return "procash"
    return "ndc" if ndc < procash else "procash"


def normalise(buffer: bytes) -> bytes:
    """LF line ends and a final newline: byte offsets in the records refer to this."""
    if b"\r" in buffer:
        buffer = buffer.replace(b"\r\n", b"\n")
    if buffer and not buffer.endswith(b"\n"):
        buffer += b"\n"
    return buffer


def parse_ej(
    buffer: bytes,
    *,
    source: str,
    terminal_id: str,
    business_date: str,
    dialect: str | None = None,
) -> EjParse:
    """Parse one EJ (one terminal, one business day). Never raises on content."""
    size = len(buffer)
    buffer = normalise(buffer)
    chosen = dialect or detect_dialect(buffer)
    module = ej_ndc if chosen == "ndc" else ej_procash
    fast = module.parse_fast(buffer)
    if fast is not None:
        transactions, events, lines = fast
        return EjParse(
            source, terminal_id, business_date, chosen, transactions, events, [], lines, size, True
        )
    transactions, events, skipped, lines = module.parse_slow(buffer, source)
    return EjParse(
        source,
        terminal_id,
        business_date,
        chosen,
        transactions,
        events,
        skipped,
        lines,
        size,
        False,
    )
