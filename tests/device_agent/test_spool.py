"""The spool: journals by (name, offset), numbered records, acknowledgements, pruning."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest

from device_agent.errors import (
    InvalidRecord,
    JournalConflict,
    JournalGap,
    SpoolError,
    SpoolPruned,
)
from device_agent.link import LinkSink
from device_agent.spool import CHUNK_TARGET, Spool
from tests.ingest_support import sample_journal
from tests.support import FakeClock

DAY = "20261116"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def spool(tmp_path: Path, clock: FakeClock) -> Spool:
    opened = Spool(tmp_path / "spool.db", clock=clock)
    yield opened  # type: ignore[misc]
    opened.close()


def test_spool_is_a_link_sink(spool: Spool) -> None:
    sink: LinkSink = spool
    assert sink.journal_offset(DAY) == 0


def test_file_is_wal_with_full_sync(spool: Spool, tmp_path: Path) -> None:
    probe = sqlite3.connect(tmp_path / "spool.db")
    assert probe.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    probe.close()
    assert spool._connection.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_journal_grows_contiguously_and_reads_back(spool: Spool) -> None:
    journal = sample_journal()
    for start in range(0, len(journal), 700):
        spool.store_journal(DAY, start, journal[start : start + 700])
        assert spool.journal_offset(DAY) == min(len(journal), start + 700)
    assert spool.read_journal(DAY, 0, len(journal) + 10) == journal
    assert spool.read_journal(DAY, 1234, 100) == journal[1234:1334]
    # 700-byte frames are merged into chunks of up to CHUNK_TARGET bytes.
    rows = spool._connection.execute("SELECT count(*) FROM journal_chunk").fetchone()[0]
    assert rows == -(-len(journal) // (CHUNK_TARGET // 700 * 700))


def test_restoring_the_same_bytes_is_a_no_op(spool: Spool) -> None:
    journal = sample_journal()[:5000]
    spool.store_journal(DAY, 0, journal[:3000])
    spool.store_journal(DAY, 1000, journal[1000:2000])
    spool.store_journal(DAY, 2000, journal[2000:5000])
    spool.store_journal(DAY, 0, journal)
    assert spool.journal_offset(DAY) == 5000
    assert spool.read_journal(DAY, 0, 10_000) == journal


def test_a_gap_is_refused_and_names_the_offset(spool: Spool) -> None:
    spool.store_journal(DAY, 0, b"abc\n")
    with pytest.raises(JournalGap, match="send from offset 4") as refused:
        spool.store_journal(DAY, 10, b"xyz")
    assert refused.value.expected == 4
    with pytest.raises(JournalGap):
        spool.store_journal("20261117", 1, b"x")
    assert spool.journal_offset(DAY) == 4


def test_a_conflicting_overwrite_is_refused(spool: Spool) -> None:
    spool.store_journal(DAY, 0, b"line one\nline two\n")
    with pytest.raises(JournalConflict, match="at offset 14") as refused:
        spool.store_journal(DAY, 9, b"line TWO\nline three\n")
    assert refused.value.position == 14
    assert spool.journal_offset(DAY) == 18
    assert spool.read_journal(DAY, 0, 100) == b"line one\nline two\n"


@pytest.mark.parametrize("name", ["2026111", "2026-11-16", "20261340", "abcdefgh"])
def test_bad_journal_names_are_refused(spool: Spool, name: str) -> None:
    with pytest.raises(SpoolError, match="journal name"):
        spool.store_journal(name, 0, b"x")


def test_negative_offset_is_refused(spool: Spool) -> None:
    with pytest.raises(SpoolError, match="not a byte offset"):
        spool.store_journal(DAY, -1, b"x")


def test_records_are_numbered_and_survive_a_reopen(tmp_path: Path, clock: FakeClock) -> None:
    spool = Spool(tmp_path / "spool.db", clock=clock)
    stream = spool.stream_id
    spool.store_status({"time": "2026-11-16T08:00:00", "in_service": True})
    spool.store_cash_units([{"usNumber": 1, "ulCount": 100}], "start_of_day")
    spool.store_event({"kind": "safe_door", "time": "2026-11-16T08:00:01", "state": "open"})
    spool.close()
    again = Spool(tmp_path / "spool.db", clock=clock)
    assert again.stream_id == stream
    records = again.pending_records(10)
    assert [(r.seq, r.kind) for r in records] == [(1, "status"), (2, "cash_units"), (3, "event")]
    assert records[1].data == {
        "reason": "start_of_day",
        "cash_units": [{"usNumber": 1, "ulCount": 100}],
    }
    assert records[0].stored_at == clock.now
    again.close()


def test_a_retransmitted_event_is_stored_once(spool: Spool) -> None:
    event = {"kind": "cash_unit_error", "time": "2026-11-16T08:00:01", "unit": 3, "error": "jam"}
    spool.store_event(event)
    spool.store_event(dict(event))
    spool.store_event({**event, "time": "2026-11-16T08:00:02"})
    status = {"time": "2026-11-16T08:00:00", "in_service": True}
    spool.store_status(status)
    spool.store_status(status)
    assert [r.kind for r in spool.pending_records(10)] == ["event", "event", "status", "status"]
    assert spool.last_seq() == 4


@pytest.mark.parametrize(
    ("store", "message"),
    [
        (lambda s: s.store_event({"time": "x"}), "string 'kind'"),
        (lambda s: s.store_event(["not", "a", "dict"]), "string 'kind'"),
        (lambda s: s.store_status({"time": datetime.now(UTC)}), "not plain JSON"),
        (lambda s: s.store_status({"value": float("nan")}), "not plain JSON"),
        (lambda s: s.store_status({"blob": "x" * 70_000}), "larger than"),
        (lambda s: s.store_cash_units([{"usNumber": 1}], ""), "reason"),
        (lambda s: s.store_cash_units({"usNumber": 1}, "requested"), "list of dicts"),
    ],
)
def test_invalid_records_are_refused_clearly(spool: Spool, store: object, message: str) -> None:
    with pytest.raises(InvalidRecord, match=message):
        store(spool)  # type: ignore[operator]
    assert spool.last_seq() == 0


def test_acknowledgements_move_forward_only(spool: Spool) -> None:
    spool.store_journal(DAY, 0, b"0123456789")
    spool.ack_journal(DAY, 6)
    spool.ack_journal(DAY, 3)
    state = spool.journal_state(DAY)
    assert state is not None
    assert state.acked == 6
    assert state.pending == 4
    with pytest.raises(SpoolError, match="beyond the 10 bytes"):
        spool.ack_journal(DAY, 11)
    spool.store_status({"n": 1})
    spool.store_status({"n": 2})
    spool.ack_records(1)
    spool.ack_records(0)
    assert spool.records_acked == 1
    assert [r.seq for r in spool.pending_records(10)] == [2]
    with pytest.raises(SpoolError, match="last record is 2"):
        spool.ack_records(3)


def test_prune_drops_only_acknowledged_data(spool: Spool, clock: FakeClock) -> None:
    journal = sample_journal()
    spool.store_journal(DAY, 0, journal[:CHUNK_TARGET])
    spool.store_journal(DAY, CHUNK_TARGET, journal[CHUNK_TARGET:])
    spool.store_status({"n": 1})
    spool.store_event({"kind": "safe_door", "state": "open", "time": "t1"})
    spool.store_status({"n": 2})
    spool.ack_journal(DAY, CHUNK_TARGET + 10)
    spool.ack_records(3)
    result = spool.prune()
    # Both acknowledged statuses go; the acknowledged event stays a while (see below).
    assert (result.chunks, result.journal_bytes, result.records) == (1, CHUNK_TARGET, 2)
    assert spool.journal_offset(DAY) == len(journal)
    assert spool.read_journal(DAY, CHUNK_TARGET + 10, 10**6) == journal[CHUNK_TARGET + 10 :]
    with pytest.raises(SpoolPruned, match="pruned"):
        spool.read_journal(DAY, 0, 10)
    # The acknowledged event is remembered for a day, so a retransmission is still recognised.
    spool.store_event({"kind": "safe_door", "state": "open", "time": "t1"})
    assert spool.last_seq() == 3
    clock.advance(days=1, seconds=1)
    assert spool.prune().records == 1
    spool.store_event({"kind": "safe_door", "state": "open", "time": "t1"})
    assert spool.last_seq() == 4
    # A store that overlaps pruned bytes compares what is left and appends the rest.
    spool.store_journal(DAY, 0, journal + b"more\n")
    assert spool.journal_offset(DAY) == len(journal) + 5


def test_rewind_resends_unless_pruned(spool: Spool) -> None:
    spool.store_journal(DAY, 0, b"x" * CHUNK_TARGET)
    spool.store_journal(DAY, CHUNK_TARGET, b"y" * 100)
    spool.ack_journal(DAY, CHUNK_TARGET + 50)
    spool.rewind_journal(DAY, 10)
    state = spool.journal_state(DAY)
    assert state is not None
    assert state.acked == 10
    spool.ack_journal(DAY, CHUNK_TARGET + 50)
    spool.prune()
    with pytest.raises(SpoolPruned, match="re-read the journal from the device"):
        spool.rewind_journal(DAY, 10)
    for n in range(5):
        spool.store_status({"n": n})
    spool.ack_records(5)
    spool.rewind_records(3)
    assert [r.seq for r in spool.pending_records(10)] == [3, 4, 5]
    spool.ack_records(5)
    spool.prune()
    with pytest.raises(SpoolPruned):
        spool.rewind_records(2)


def test_backlog_reports_what_waits_and_since_when(spool: Spool, clock: FakeClock) -> None:
    empty = spool.backlog()
    assert (empty.journal_bytes, empty.records, empty.oldest_pending_at) == (0, 0, None)
    spool.store_journal(DAY, 0, b"abc\n")
    first = clock.now
    clock.advance(seconds=30)
    spool.store_status({"n": 1})
    backlog = spool.backlog()
    assert (backlog.journal_bytes, backlog.records) == (4, 1)
    assert backlog.oldest_pending_at == first
    assert backlog.last_stored_at == clock.now
    spool.ack_journal(DAY, 4)
    assert spool.backlog().oldest_pending_at == clock.now


def test_terminal_binding_is_permanent(spool: Spool) -> None:
    assert spool.terminal_id() is None
    spool.bind_terminal("T1000001")
    spool.bind_terminal("T1000001")
    with pytest.raises(SpoolError, match="holds data of terminal T1000001"):
        spool.bind_terminal("T1000002")


def test_a_file_that_is_not_a_spool_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SpoolError, match="not a usable spool"):
        Spool(path)


def test_a_spool_of_another_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    Spool(path).close()
    connection = sqlite3.connect(path)
    connection.execute("UPDATE spool_meta SET value = '99' WHERE key = 'schema'")
    connection.commit()
    connection.close()
    with pytest.raises(SpoolError, match="schema 99"):
        Spool(path)


def test_a_naive_clock_is_a_programming_error(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "spool.db", clock=lambda: datetime(2026, 11, 16))
    with pytest.raises(ValueError, match="timezone-aware"):
        spool.store_status({"n": 1})
    spool.close()


def test_two_threads_store_and_read_at_once(spool: Spool) -> None:
    import threading

    journal = sample_journal()
    errors: list[BaseException] = []

    def link() -> None:
        try:
            for start in range(0, len(journal), 256):
                spool.store_journal(DAY, start, journal[start : start + 256])
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=link)
    thread.start()
    seen = 0
    while thread.is_alive() or seen < len(journal):
        state = spool.journal_state(DAY)
        if state is not None and state.size > seen:
            assert spool.read_journal(DAY, seen, state.size - seen) == journal[seen : state.size]
            spool.ack_journal(DAY, state.size)
            seen = state.size
    thread.join()
    assert not errors
    assert seen == len(journal)
