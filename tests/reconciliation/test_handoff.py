"""Host messages handed to worker batches: delivered whole, or the wait ends."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from reconciliation import Options, Sources, UnusableInput, reconcile
from reconciliation.classify import HOST_SCHEMA
from reconciliation.errors import HostNotHandedOver
from reconciliation.handoff import HostHandoff


def _frame() -> pl.DataFrame:
    row = {name: "x" for name, dtype in HOST_SCHEMA.items() if dtype == pl.Utf8}
    row.update(seq=1, amount_minor=100, actual_minor=-1)
    return pl.DataFrame([row], schema=HOST_SCHEMA)


def test_a_published_slice_is_read_back_whole(tmp_path: Path) -> None:
    handoff = HostHandoff(str(tmp_path), 3, os.getppid())
    frame = _frame()
    handoff.publish(frame)
    assert handoff.wait().equals(frame)
    assert [path.name for path in tmp_path.iterdir()] == ["host-3.arrow"]


def test_an_abort_ends_the_wait(tmp_path: Path) -> None:
    HostHandoff.abort(str(tmp_path))
    with pytest.raises(HostNotHandedOver):
        HostHandoff(str(tmp_path), 0, os.getppid()).wait()


def test_a_lost_parent_ends_the_wait(tmp_path: Path) -> None:
    with pytest.raises(HostNotHandedOver):
        HostHandoff(str(tmp_path), 0, os.getppid() + 1).wait()


def test_workers_stop_when_the_host_files_cannot_be_read(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import reconciliation.engine as engine

    def broken(_pieces: object) -> object:
        raise UnusableInput("the host files vanished")

    monkeypatch.setattr(engine, "parse_pieces", broken)
    sources = Sources.from_dirs(
        ej=sample / "ej", paper=sample / "paper", host=sample / "host", counters=sample / "counters"
    )
    with pytest.raises(UnusableInput, match="vanished"):
        reconcile(sources, options=Options(workers=2, batch_bytes=50_000))
