"""The field's reference samples, kept in the repository under ``shared/formats``.

``shared/formats/README.md`` describes the formats; ``shared/formats/sample`` holds
one business day of six terminals in every format with its ``truth.jsonl``. The
tests read them from here so a checkout anywhere is self-contained.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ROOT / "shared" / "formats"
SAMPLE = FORMATS / "sample"


def sample_dir(kind: str | None = None) -> Path:
    """``shared/formats/sample`` or one of its folders (``ej``, ``paper``, ``host``,
    ``counters``)."""
    path = SAMPLE if kind is None else SAMPLE / kind
    if not path.is_dir():
        missing = path.relative_to(ROOT)
        raise FileNotFoundError(f"the reference sample {missing} is missing from the repository")
    return path
