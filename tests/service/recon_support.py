"""Helpers for the reconciliation tests of the service: the reference sample, its truth,
uploads of its files, and running what is queued."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

from atm_service.context import AppContext
from simulators.truth import read

ROOT = Path(__file__).resolve().parents[2]
KINDS = ("ej", "paper", "host", "counters")
RUNS = "/api/v1/reconciliation/runs"
DISCREPANCIES = "/api/v1/reconciliation/discrepancies"


def files(sample: Path, kinds: tuple[str, ...] = KINDS) -> list[tuple[str, tuple[str, bytes]]]:
    """Multipart ``files=`` entries: every sample file under the field of its kind."""
    return [
        (kind, (path.name, path.read_bytes()))
        for kind in kinds
        for path in sorted((sample / kind).iterdir())
    ]


def tarball(sample: Path, *, extra: dict[str, bytes] | None = None) -> bytes:
    """The sample as a .tar.gz of sample/ej, sample/paper, ... (as ``tar czf`` makes it)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for kind in KINDS:
            for path in sorted((sample / kind).iterdir()):
                archive.add(path, arcname=f"sample/{kind}/{path.name}")
        archive.add(sample / "truth.jsonl", arcname="sample/truth.jsonl")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def truth(sample: Path) -> list[dict[str, Any]]:
    """The sample's ``truth.jsonl``; ``simulators.truth.match_key`` says which finding is which."""
    return list(read(sample / "truth.jsonl"))


def run_queued(context: AppContext) -> int | None:
    """Execute the next queued run here and now, as an instance's worker would."""
    return context.recon.run_once()
