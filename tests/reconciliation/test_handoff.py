"""Host messages handed to worker batches: delivered whole, or the wait ends."""

from __future__ import annotations

import os
from pathlib import Path

import iso8583
import orjson
import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from iso8583.specs import default_ascii

from reconciliation import Options, RunResult, Sources, UnusableInput, reconcile
from reconciliation.classify import HOST_SCHEMA
from reconciliation.errors import HostNotHandedOver
from reconciliation.handoff import HostHandoff
from reconciliation.hostload import BatchHost
from reconciliation.result import Evidence, PackedEvidence


def _frame() -> pl.DataFrame:
    row: dict[str, object] = {name: "x" for name, dtype in HOST_SCHEMA.items() if dtype == pl.Utf8}
    row.update(seq=1, amount_minor=100, actual_minor=-1)
    return pl.DataFrame([row], schema=HOST_SCHEMA)


def test_a_published_share_is_read_back_whole(tmp_path: Path) -> None:
    handoff = HostHandoff(str(tmp_path), 3, os.getppid())
    frame = _frame()
    handoff.publish(BatchHost([], frame.with_columns(_rank=pl.lit(0, pl.Int32))))
    assert handoff.wait().equals(frame)
    assert [path.name for path in tmp_path.iterdir()] == ["host-3.pickle"]


def _damaged_host(sample: Path, folder: Path) -> Sources:
    """The sample's host files with a record the columnar pass leaves to the record
    path, a truncated tail, and a CSV export of a day without an ISO 8583 log."""
    iso = (sample / "host" / "20261116.iso").read_bytes()
    records, offset = [], 0
    while offset < len(iso):
        size = int.from_bytes(iso[offset : offset + 2], "big")
        records.append(iso[offset : offset + 2 + size])
        offset += 2 + size
    # DE32, which the columnar pass does not read: a message read one by one
    fields, _ = iso8583.decode(records[40][2:], default_ascii)
    fields = {key: value for key, value in fields.items() if key == "t" or key.isdigit()}
    message, _ = iso8583.encode({**fields, "32": "123456"}, default_ascii)
    records[40] = len(message).to_bytes(2, "big") + bytes(message)
    records[41] = records[41][:2] + b"9999" + records[41][6:]  # an unknown MTI: skipped
    folder.mkdir()
    (folder / "20261116.iso").write_bytes(b"".join(records) + b"\x01")
    csv = (sample / "host" / "20261116.csv").read_bytes()
    (folder / "20261116.csv").write_bytes(csv)
    (folder / "20261117.csv").write_bytes(csv.replace(b",2026-11-16,", b",2026-11-17,"))
    return Sources.from_dirs(host=folder)


@pytest.mark.parametrize("on_disk", [True, False])
@pytest.mark.parametrize("compiled", [True, False])
def test_each_batch_gets_the_messages_a_cut_of_the_host_frame_gives(
    sample: Path, tmp_path: Path, compiled: bool, on_disk: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``route`` hands a batch reads back as that batch's rows of the frame
    the run's process builds, in its order: records read by the columnar pass
    (located in the log's file, or gathered from a log in memory), those read
    one by one, and the CSV export of a day without a log."""
    from reconciliation import host_iso
    from reconciliation.host_iso import THIN_COLUMNS
    from reconciliation.hostload import combine, parse_piece, pieces, route

    if not compiled:
        for name in (
            "_compiled_columns",
            "_compiled_gather",
            "_compiled_locate",
            "_compiled_collect",
        ):
            monkeypatch.setattr(host_iso, name, None)
    sources = _damaged_host(sample, tmp_path / "host")
    if not on_disk:
        held = Sources()
        for item in sources.items:
            held.add_bytes(item.kind, item.name, item.read(), business_date=item.business_date)
        sources = held
    cut = [piece for source in sources.items for piece in pieces(source, 4096)]
    frame, _accounts, skipped, *_ = combine([parse_piece(piece) for piece in cut])
    results = [parse_piece(piece, thin=True) for piece in cut]  # as a run with workers reads
    assert combine(results, thin=True)[0].equals(frame.select(THIN_COLUMNS))
    assert any(item.one_by_one is not None and item.one_by_one.height for item in results)
    assert skipped  # the truncated tail
    terminals = sorted(set(frame.get_column("terminal_id").to_list()))
    assert len(terminals) > 4
    assert frame.filter(pl.col("business_date") == "2026-11-17").height
    owner = {terminal: index % 3 for index, terminal in enumerate(terminals[1:])}  # one in none
    expected = frame.with_columns(
        _batch=pl.col("terminal_id").replace_strict(owner, default=None, return_dtype=pl.Int32)
    ).partition_by("_batch", as_dict=True, include_key=False, maintain_order=True)
    handed = route(results, owner, 4)
    for index, host in enumerate(handed):
        want = expected.get((index,), HostHandoff.empty())
        assert host.frame().equals(want), index
    logs = [records for host in handed for records in host.records]
    assert logs
    for records in logs:  # each log's records located in its file, or gathered whole
        assert (records.file is not None) is on_disk
        # eight bytes a record where located in the file; the records themselves otherwise
        assert (len(records.data) == 8 * records.numbers.len()) is on_disk
        assert records.data
    assert not handed[3].records  # batch 3 owns no terminal
    assert not handed[3].others.height
    assert any(host.others.height for host in handed)  # rows read one by one, or from a CSV


@given(
    st.lists(st.sampled_from([b"0200abc", b"x" * 300, b"", b"\x80\x81"]), max_size=10),
    st.binary(max_size=6),
    st.lists(st.integers(-2, 3), max_size=14),
)
def test_gathering_records_compiled_equals_python(
    messages: list[bytes], tail: bytes, owners: list[int]
) -> None:
    from array import array

    from reconciliation import host_iso

    data = b"".join(len(item).to_bytes(2, "big") + item for item in messages) + tail
    expected = None
    for compiled in {host_iso._compiled_gather, None}:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(host_iso, "_compiled_gather", compiled)
            groups = host_iso.gather_records(data, array("i", owners), 3)
        assert len(groups) == 3
        expected = expected or groups
        assert groups == expected, compiled
    # a record with no owner, or another group, is in no group; the walk stops at a
    # zero length or a record longer than what remains
    walked = []
    offset = 0
    for owner in owners:
        size = int.from_bytes(data[offset : offset + 2], "big") if offset + 2 <= len(data) else 0
        if size == 0 or offset + 2 + size > len(data):
            break
        walked.append((owner, data[offset : offset + 2 + size]))
        offset += 2 + size
    assert groups == [b"".join(r for o, r in walked if o == group) for group in range(3)]


@given(
    st.lists(st.sampled_from([b"0200abc", b"x" * 300, b"", b"\x80\x81"]), max_size=10),
    st.binary(max_size=6),
    st.lists(st.integers(-2, 3), max_size=14),
    st.integers(0, 1 << 40),
)
def test_records_located_and_collected_are_those_gathered(
    messages: list[bytes], tail: bytes, owners: list[int], base: int
) -> None:
    """Each group's offsets, taken from the log again, give the group's records
    as gathering them does, compiled or not; the offsets count from ``base``."""
    from array import array

    from reconciliation import host_iso

    data = b"".join(len(item).to_bytes(2, "big") + item for item in messages) + tail
    groups = host_iso.gather_records(data, array("i", owners), 3)
    placed = b"\0" * min(base, 64) + data  # the piece at byte ``base`` of its log
    expected = None
    for compiled in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            if not compiled:
                patch.setattr(host_iso, "_compiled_locate", None)
                patch.setattr(host_iso, "_compiled_collect", None)
            located = host_iso.locate_records(data, array("i", owners), 3, base)
            expected = expected or located
            assert located == expected, compiled
            for group, offsets in zip(groups, located, strict=True):
                at = array("q", offsets)
                assert all(value >= base for value in at)
                shifted = array("q", [value - base + min(base, 64) for value in at])
                assert host_iso.collect_records(placed, shifted) == group


@pytest.mark.parametrize("compiled", [True, False])
@pytest.mark.parametrize("offset", [-1, 1, 8, 9, 1 << 40])
def test_an_offset_that_holds_no_whole_record_is_refused(
    compiled: bool, offset: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An offset outside the log, in the middle of a record (whose bytes then
    read as a length beyond the end) or at the end is an error, not garbage."""
    from array import array

    from reconciliation import host_iso

    if not compiled:
        monkeypatch.setattr(host_iso, "_compiled_collect", None)
    data = b"\x00\x03abc\x00\x01d"  # records at 0 and 5; 9 bytes
    assert host_iso.collect_records(data, array("q", [5, 0])) == b"\x00\x01d\x00\x03abc"
    with pytest.raises(ValueError, match=f"no whole record at offset {offset}"):
        host_iso.collect_records(data, array("q", [0, offset]))


def test_a_log_changed_after_it_was_located_is_an_unreadable_source(tmp_path: Path) -> None:
    """A worker maps the log the run's process located the records in; a file of
    another size or time is refused with the log's name, not read as records."""
    from array import array

    from reconciliation.errors import SourceUnreadable
    from reconciliation.hostload import LogFile

    log = tmp_path / "20261116.iso"
    log.write_bytes(b"\x00\x03abc\x00\x01d")
    source = Sources.from_dirs(host=tmp_path).items[0]
    located = LogFile.of(source)
    assert located is not None
    assert located.collect(array("q", [5]).tobytes(), source.name) == b"\x00\x01d"
    log.write_bytes(b"\x00\x03xyz\x00\x01e")  # rewritten in place, the same size
    os.utime(log, ns=(located.modified + 10**9, located.modified + 10**9))
    with pytest.raises(SourceUnreadable, match=f"{source.name} changed while the run read it"):
        located.collect(array("q", [5]).tobytes(), source.name)  # from the map made above
    log.write_bytes(b"\x00\x01d")
    os.utime(log, ns=(located.modified + 10**9, located.modified + 10**9))
    moved = LogFile.of(source)
    assert moved is not None
    with pytest.raises(SourceUnreadable, match="changed while the run read it"):
        moved.collect(array("q", [5]).tobytes(), source.name)  # not in its map
    with pytest.raises(SourceUnreadable, match=f"{source.name} changed while the run read it"):
        LogFile(str(log), located.size, located.modified).collect(b"", source.name)
    log.unlink()
    with pytest.raises(SourceUnreadable, match="cannot read"):
        LogFile(str(log), 1, 1).collect(b"", source.name)


def test_the_in_memory_file_system_is_used_where_it_has_room(tmp_path: Path) -> None:
    from reconciliation.handoff import folder_place

    assert folder_place(1, str(tmp_path)) == str(tmp_path)
    assert folder_place(1 << 62, str(tmp_path)) is None  # no room for twice that
    assert folder_place(1, str(tmp_path / "none")) is None


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

    def broken(_pieces: object, **_options: object) -> object:
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


def test_a_result_handed_back_is_taken_back_whole_and_its_file_removed(
    sample: Path, tmp_path: Path
) -> None:
    result = reconcile(_sample_sources(sample))
    handoff = HostHandoff(str(tmp_path), 5, os.getpid())
    sent = (result.discrepancies, result.settlement)
    assert handoff.hand_back(sent)
    assert [path.name for path in tmp_path.iterdir()] == ["result-5.pickle"]
    assert handoff.take_back() == sent
    assert not list(tmp_path.iterdir())


def test_a_result_that_cannot_be_left_in_the_folder_goes_back_through_the_pool(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full or vanished folder: the worker returns its result, the run's answer
    is the same, and no partial file is left behind."""
    gone = HostHandoff(str(tmp_path / "gone"), 0, os.getpid())
    assert not gone.hand_back(["a result"])
    full = HostHandoff(str(tmp_path), 0, os.getpid())

    def no_room(*_args: object, **_kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patch:
        patch.setattr("pickle.dump", no_room)
        assert not full.hand_back(["a result"])
    assert not list(tmp_path.iterdir())

    expected = _answer(reconcile(_sample_sources(sample)))
    monkeypatch.setattr("reconciliation.engine.HostHandoff", _Refusing)
    result = reconcile(_sample_sources(sample), options=Options(workers=2, batch_bytes=50_000))
    assert _answer(result) == expected


def test_a_log_cut_short_while_the_workers_wait_stops_the_run_with_its_name(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The workers take their records from the log's file: one that changed after
    the run's process read it is reported as unreadable, naming it, rather than
    read as other records (or faulting where its pages were)."""
    import shutil

    from reconciliation.errors import SourceUnreadable

    copy = tmp_path / "sample"
    shutil.copytree(sample, copy)
    monkeypatch.setattr("reconciliation.engine.HostHandoff", _CuttingTheLog)
    with pytest.raises(SourceUnreadable, match=r"20261116\.iso changed while the run read it"):
        reconcile(_sample_sources(copy), options=Options(workers=2, batch_bytes=50_000))


def test_records_that_read_as_other_messages_are_refused_naming_the_log() -> None:
    """A batch's records read again must be those the run's process read: as
    many, each whole; otherwise the log is not the file it was."""
    from reconciliation.errors import SourceUnreadable
    from reconciliation.hostload import RoutedRecords

    record = b"\x00\x03abc"  # not a message the columnar pass reads: skipped
    routed = RoutedRecords(0, "host/20261116.iso", "2026-11-16", record, pl.Series([1]))
    with pytest.raises(SourceUnreadable, match=r"host/20261116\.iso changed while the run"):
        routed.frame()


class _CuttingTheLog(HostHandoff):
    """A handoff whose parent cuts the ISO 8583 log short before handing over."""

    def publish(self, host: BatchHost) -> None:
        for records in host.records:
            if records.file is not None:
                Path(records.file.path).write_bytes(b"\x00\x01x")
        super().publish(host)


class _Refusing(HostHandoff):
    """A handoff whose results never fit in the folder (pickled by reference: the
    workers import this module)."""

    def hand_back(self, result: object) -> bool:
        return False

    def take_back(self) -> object:
        raise AssertionError("nothing was left to take back")


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
