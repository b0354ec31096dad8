"""Host messages handed to worker batches: delivered whole, or the wait ends."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import polars as pl
import pytest

from reconciliation import Options, RunResult, Sources, UnusableInput, reconcile
from reconciliation.classify import HOST_SCHEMA
from reconciliation.errors import HostNotHandedOver
from reconciliation.handoff import HostHandoff
from reconciliation.result import Evidence, PackedEvidence


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


def _evidence() -> Evidence:
    return Evidence(
        "TXN 1\nCASH 20.00",
        "ej/T1.txt:3-9",
        "RECEIPT",
        "paper/T1.txt:40",
        [{"mti": "0210", "stan": "000123", "actual_minor": None}],
        {"before": {"cash_units": [{"number": 1, "count": 200}]}},
    )


def test_evidence_crosses_as_its_json_and_is_decoded_on_first_use() -> None:
    import pickle

    original = _evidence()
    received = pickle.loads(pickle.dumps(original))  # noqa: S301
    assert type(received) is PackedEvidence
    assert received.json() == orjson.dumps(original)  # what the JSON lines copy as it is
    assert received.ej_location == "ej/T1.txt:3-9"  # at hand without decoding
    assert received.counters == original.counters
    assert received == original
    assert original == received
    assert received.json() == orjson.dumps(original)  # decoded: written from its fields


def test_a_packed_field_set_before_any_read_is_kept() -> None:
    import pickle

    received = pickle.loads(pickle.dumps(_evidence()))  # noqa: S301
    received.host_messages = []
    assert received.host_messages == []
    assert received.paper_excerpt == "RECEIPT"  # the others decoded, not over it
    assert orjson.loads(received.json())["host_messages"] == []
    again = pickle.loads(pickle.dumps(received))  # noqa: S301
    assert again == received


def test_evidence_that_is_not_json_data_crosses_as_its_fields() -> None:
    import pickle

    odd = Evidence(counters={1: "a number as a key"})
    received = pickle.loads(pickle.dumps(odd))  # noqa: S301
    assert type(received) is Evidence
    assert received == odd


def test_jsonl_lines_of_received_evidence_match_those_of_local_evidence(
    sample: Path, tmp_path: Path
) -> None:
    import pickle

    from reconciliation.reports import write_jsonl

    result = reconcile(_sample_sources(sample))
    local = write_jsonl(result, tmp_path / "local.jsonl").read_bytes()
    result.discrepancies = pickle.loads(pickle.dumps(result.discrepancies))  # noqa: S301
    assert any(type(item.evidence) is PackedEvidence for item in result.discrepancies)
    assert write_jsonl(result, tmp_path / "received.jsonl").read_bytes() == local
