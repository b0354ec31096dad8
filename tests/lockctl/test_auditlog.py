"""The append-only log: chaining, checkpoints, field rules, stores, concurrent writers."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from lockctl import (
    AuditLog,
    CheckpointSigner,
    EntryKind,
    FileLogStore,
    InvalidArgument,
    LogConflict,
    LogRecord,
    MemoryLogStore,
    PublicKeys,
    verify_export,
)
from lockctl.auditlog import GENESIS, make_record
from tests.lockctl.conftest import T0

SIGNER = CheckpointSigner.from_seed(bytes(32))
KEYS = PublicKeys([SIGNER.public_key])


def test_entries_chain_and_are_canonical() -> None:
    log = AuditLog(MemoryLogStore(), SIGNER, log_id="t", checkpoint_every=10)
    first = log.append(EntryKind.CODE_ISSUED, {"user": 1, "lock": "CX-1"}, now=T0)
    second = log.append("lock-event", {}, now=T0 + timedelta(seconds=1))
    assert first.line == (
        b'{"prev":"' + GENESIS.encode() + b'","i":0,"time":"2026-11-16T08:10:00Z",'
        b'"kind":"code-issued","lock":"CX-1","user":1}'
    )
    assert first.digest == hashlib.sha256(first.line).digest()
    assert second.line.startswith(b'{"prev":"' + first.hash.encode() + b'","i":1,')
    assert second.line.endswith(b'"kind":"lock-event"}')
    assert json.loads(second.line)["time"] == "2026-11-16T08:10:01Z"


def test_checkpoints_every_n_entries() -> None:
    store = MemoryLogStore()
    log = AuditLog(store, SIGNER, log_id="t", checkpoint_every=3)
    for n in range(7):
        log.append("failure", {"n": n}, now=T0)
    sizes = [c.checkpoint.size for c in store.checkpoints()]
    assert sizes == [3, 6]
    for signed in store.checkpoints():
        assert signed.verify(SIGNER.public_key)
    assert log.checkpoint(now=T0) is not None
    assert [c.checkpoint.size for c in store.checkpoints()] == [3, 6, 7]
    assert AuditLog(MemoryLogStore(), SIGNER, log_id="t").checkpoint(now=T0) is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"amount": 1.5}, "float"),
        ({"i": 3}, "reserved"),
        ({"Bad-Name": 1}, "lower_snake_case"),
        ({"x": object()}, "unsupported type"),
        ({"x": {"a": {"b": {"c": {"d": {"e": 1}}}}}}, "nests too deeply"),
        ({"x": "y" * 20000}, "limited to"),
    ],
)
def test_bad_fields_are_refused(fields: dict[str, object], message: str) -> None:
    log = AuditLog(MemoryLogStore(), SIGNER, log_id="t")
    with pytest.raises(InvalidArgument, match=message):
        log.append("failure", fields, now=T0)
    assert log.store.last() is None


def test_bad_kind_and_log_id_are_refused() -> None:
    with pytest.raises(InvalidArgument, match="kind"):
        AuditLog(MemoryLogStore(), SIGNER, log_id="t").append('x"y', {}, now=T0)
    with pytest.raises(InvalidArgument, match="log_id"):
        AuditLog(MemoryLogStore(), SIGNER, log_id="bad id")


def test_non_ascii_text_is_escaped_and_survives() -> None:
    log = AuditLog(MemoryLogStore(), SIGNER, log_id="t")
    record = log.append("force-close", {"reason": "Tür klemmt — 门"}, now=T0)
    assert record.line.isascii()
    assert record.fields()["reason"] == "Tür klemmt — 门"


class RacingStore(MemoryLogStore):
    """Another writer slips an entry in before each of our first ``races`` appends."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def append(self, record: LogRecord) -> None:
        if self.races:
            self.races -= 1
            last = self.last()
            super().append(
                make_record(
                    prev=GENESIS if last is None else last.hash,
                    index=len(self.records),
                    time=T0,
                    kind="lock-event",
                    fields={"rival": True},
                )
            )
        super().append(record)


def test_a_concurrent_append_is_retried_on_the_new_head() -> None:
    store = RacingStore(races=2)
    log = AuditLog(store, SIGNER, log_id="t")
    record = log.append("failure", {"n": 1}, now=T0)
    assert record.index == 2
    out = io.BytesIO()
    log.export(out, now=T0, by="auditor")
    summary = verify_export(io.BytesIO(out.getvalue()), KEYS)
    assert summary.kinds == {"lock-event": 2, "failure": 1, "export": 1}


def test_a_busy_log_gives_up_with_a_clear_error() -> None:
    store = RacingStore(races=100)
    with pytest.raises(LogConflict, match="busy"):
        AuditLog(store, SIGNER, log_id="t", max_retries=3).append("failure", {}, now=T0)


def test_memory_store_refuses_gaps() -> None:
    store = MemoryLogStore()
    with pytest.raises(LogConflict):
        store.append(LogRecord(1, b"{}", b"\0" * 32))


def test_file_store_reopens_and_cuts_a_torn_line(tmp_path: Path) -> None:
    store = FileLogStore(tmp_path / "log")
    log = AuditLog(store, SIGNER, log_id="t", checkpoint_every=2)
    for n in range(5):
        log.append("failure", {"n": n}, now=T0)
    store.close()
    with (tmp_path / "log" / "entries.jsonl").open("ab") as handle:
        handle.write(b'{"prev":"torn')
    reopened = FileLogStore(tmp_path / "log")
    last = reopened.last()
    assert last is not None
    assert last.index == 4
    log = AuditLog(reopened, SIGNER, log_id="t", checkpoint_every=2)
    log.append("failure", {"n": 5}, now=T0)
    assert [r.index for r in reopened.read(3, 10)] == [3, 4, 5]
    out = io.BytesIO()
    log.export(out, now=T0, by="auditor", start=2)
    summary = verify_export(io.BytesIO(out.getvalue()), KEYS)
    assert (summary.start, summary.end) == (2, 7)
    reopened.close()


def test_export_from_a_later_start_verifies_and_rejects_bad_starts() -> None:
    log = AuditLog(MemoryLogStore(), SIGNER, log_id="t", checkpoint_every=4)
    for n in range(10):
        log.append("failure", {"n": n}, now=T0)
    out = io.BytesIO()
    assert log.export(out, now=T0, by="auditor", start=6) == 5
    summary = verify_export(io.BytesIO(out.getvalue()), KEYS)
    assert (summary.start, summary.end, summary.entries) == (6, 11, 5)
    with pytest.raises(InvalidArgument, match="past the end"):
        list(log.export_lines(now=T0, by="a", start=99))
    with pytest.raises(InvalidArgument, match="who exports"):
        list(log.export_lines(now=T0, by=""))


def test_every_export_is_itself_logged() -> None:
    log = AuditLog(MemoryLogStore(), SIGNER, log_id="t")
    log.append("failure", {}, now=T0)
    log.export(io.BytesIO(), now=T0, by="anna")
    log.export(io.BytesIO(), now=T0, by="ben", start=1)
    exports = [r.fields() for r in log.store.read(0, 10) if r.fields()["kind"] == "export"]
    assert [(e["by"], e["start"]) for e in exports] == [("anna", 0), ("ben", 1)]
