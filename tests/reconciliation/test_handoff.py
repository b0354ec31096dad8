"""Host messages handed to worker batches: delivered whole, or the wait ends."""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl
import pytest

from reconciliation import Options, RunResult, Sources, UnusableInput, reconcile
from reconciliation.classify import HOST_SCHEMA
from reconciliation.errors import HostNotHandedOver
from reconciliation.handoff import HostHandoff


def _frame() -> pl.DataFrame:
    row: dict[str, object] = {name: "x" for name, dtype in HOST_SCHEMA.items() if dtype == pl.Utf8}
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

    monkeypatch.setattr(engine, "parse_piece", broken)
    sources = Sources.from_dirs(
        ej=sample / "ej", paper=sample / "paper", host=sample / "host", counters=sample / "counters"
    )
    with pytest.raises(UnusableInput, match="vanished"):
        reconcile(sources, options=Options(workers=2, batch_bytes=50_000))


def _sample_sources(sample: Path) -> Sources:
    return Sources.from_dirs(
        ej=sample / "ej", paper=sample / "paper", host=sample / "host", counters=sample / "counters"
    )


def _answer(result: RunResult) -> list[tuple[object, ...]]:
    return sorted(
        (d.terminal_id, d.business_date, d.kind, d.stan, d.amount_minor)
        for d in result.discrepancies
    )


def test_without_a_temporary_folder_one_process_does_all(
    sample: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _answer(reconcile(_sample_sources(sample)))

    def refuse(**_kwargs: object) -> str:
        raise PermissionError("read-only")

    monkeypatch.setattr("tempfile.mkdtemp", refuse)
    result = reconcile(_sample_sources(sample), options=Options(workers=2, batch_bytes=50_000))
    assert _answer(result) == expected


@pytest.mark.parametrize("workers", [1, 2])
def test_a_batch_of_unreadable_files_does_not_stop_the_run(sample: Path, workers: int) -> None:
    from reconciliation import Source

    sources = _sample_sources(sample)
    for number in range(3):  # empty to the size check, so packed into the last batch together
        sources.items.append(
            Source("ej", f"gone-{number}.txt", f"T900000{number}", "2026-11-16", path=Path("/-"))
        )
    result = reconcile(sources, options=Options(workers=workers, batch_bytes=50_000))
    assert _answer(result) == _answer(reconcile(_sample_sources(sample)))
    assert sum("not read" in note for note in result.observations) == 3


def test_findings_and_settlement_cross_processes_whole(sample: Path) -> None:
    """What a worker sends back is read back equal, evidence and all."""
    import pickle

    result = reconcile(_sample_sources(sample))
    assert result.discrepancies
    assert result.settlement
    assert any(item.evidence.host_messages for item in result.discrepancies)
    assert any(item.evidence.counters for item in result.discrepancies)
    sent = (result.discrepancies, result.settlement)
    assert pickle.loads(pickle.dumps(sent, protocol=pickle.HIGHEST_PROTOCOL)) == sent  # noqa: S301
