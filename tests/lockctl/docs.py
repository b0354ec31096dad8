"""Read the test vectors embedded in docs/otc.md and docs/lock-log.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parents[2] / "docs"


def fenced_block(document: str, marker: str) -> str:
    """The first fenced code block after ``<!-- marker -->`` in ``docs/<document>``."""
    text = (DOCS / document).read_text(encoding="utf-8")
    after = text.split(f"<!-- {marker} -->", 1)[1]
    opening = after.index("```")
    body_start = after.index("\n", opening) + 1
    return after[body_start : after.index("\n```", body_start)] + "\n"


def otc_vectors() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(fenced_block("otc.md", "otc-test-vectors"))
    return data


def example_export() -> bytes:
    return fenced_block("lock-log.md", "lock-log-example").encode("ascii")
