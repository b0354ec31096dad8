"""The append-only lock-access log: hash-chained entries and signed checkpoints.

Each entry is one line of canonical JSON that begins with the hex SHA-256 of the
previous entry's line (``prev``), then its index, time and kind, then its other
fields in sorted order::

    {"prev":"<64 hex>","i":41,"time":"2026-11-16T08:00:00Z","kind":"code-issued",...}

An entry's hash is the SHA-256 of its line (without the line feed), so changing,
removing, inserting or reordering any entry breaks the chain from there on.
Every ``checkpoint_every`` entries, and at every export, the log signs a
checkpoint of its size and head hash with Ed25519 (:mod:`lockctl.signing`).
``docs/lock-log.md`` specifies the entry and export formats.

Storage is injected (:class:`LogStore`): the service keeps records in its
database, :class:`FileLogStore` keeps them in a file, tests use
:class:`MemoryLogStore`. A store only has to refuse an append whose index is
not the next one; :class:`AuditLog` then re-reads the head and retries.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import IO, Any, Protocol

from lockctl import validation
from lockctl.errors import InvalidArgument, LogConflict, LogCorrupt
from lockctl.signing import Checkpoint, CheckpointSigner, SignedCheckpoint, public_key_text

logger = logging.getLogger("lockctl.auditlog")

GENESIS = "0" * 64
EXPORT_FORMAT = "atm-lock-log-export"
EXPORT_VERSION = 1
MAX_LINE_BYTES = 16 * 1024
RESERVED_FIELDS = frozenset({"prev", "i", "time", "kind"})
_FIELD_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_KIND = re.compile(r"[a-z][a-z0-9-]{0,39}")
_LOG_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")


class EntryKind(StrEnum):
    """What an entry records."""

    CODE_ISSUED = "code-issued"
    RESYNC_ISSUED = "resync-issued"
    SEAL_REPORTED = "seal-reported"  # matched or not (field "matched")
    RESYNC_CONFIRMED = "resync-confirmed"
    FAILURE = "failure"  # a wrong code at the lock, from its trail
    LOCKOUT = "lockout"  # a lock penalty, or the service blocking a chain
    DURESS = "duress"
    FORCE_CLOSE = "force-close"
    LOCK_EVENT = "lock-event"  # any other record imported from a lock's trail
    KEY_ROTATED = "key-rotated"
    EXPORT = "export"


@dataclass(frozen=True)
class LogRecord:
    """A stored entry: its index, its exact line, and that line's SHA-256."""

    index: int
    line: bytes
    digest: bytes

    @property
    def hash(self) -> str:
        return self.digest.hex()

    def fields(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.line)
        return data


class LogStore(Protocol):
    """Append-only storage of entries and checkpoints."""

    def last(self) -> LogRecord | None:
        """The entry with the highest index, or ``None`` when empty."""

    def append(self, record: LogRecord) -> None:
        """Store ``record``; raise :class:`LogConflict` unless its index is the next one."""

    def read(self, start: int, stop: int) -> Iterator[LogRecord]:
        """Entries ``start`` to ``stop - 1`` in order."""

    def add_checkpoint(self, checkpoint: SignedCheckpoint) -> None:
        """Keep a signed checkpoint (ignore one whose size is already kept)."""

    def checkpoints(self, after_size: int = 0) -> Iterator[SignedCheckpoint]:
        """Checkpoints with ``size > after_size``, smallest size first."""


def _check_value(value: Any, where: str, depth: int = 0) -> None:
    if depth > 4:
        raise InvalidArgument(f"log field {where} nests too deeply")
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise InvalidArgument(f"log field {where} is a float; use an integer (minor units)")
    if isinstance(value, list | tuple):
        for n, item in enumerate(value):
            _check_value(item, f"{where}[{n}]", depth + 1)
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidArgument(f"log field {where} has a non-text key")
            _check_value(item, f"{where}.{key}", depth + 1)
        return
    raise InvalidArgument(f"log field {where} has unsupported type {type(value).__name__}")


def encode_entry(
    *, prev: str, index: int, time: datetime, kind: str, fields: Mapping[str, Any]
) -> bytes:
    """The canonical line of an entry (without line feed)."""
    if not _KIND.fullmatch(kind):
        raise InvalidArgument(f"entry kind {kind!r} must be lower-case letters, digits and '-'")
    for name, value in fields.items():
        if not isinstance(name, str) or not _FIELD_NAME.fullmatch(name):
            raise InvalidArgument(f"log field name {name!r} must be lower_snake_case")
        if name in RESERVED_FIELDS:
            raise InvalidArgument(f"log field name {name!r} is reserved")
        _check_value(value, name)
    head = f'{{"prev":"{prev}","i":{index},"time":"{validation.rfc3339(time)}","kind":"{kind}"'
    if fields:
        rest = json.dumps(
            dict(fields), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
        )
        line = (head + "," + rest[1:]).encode("ascii")
    else:
        line = (head + "}").encode("ascii")
    if len(line) > MAX_LINE_BYTES:
        raise InvalidArgument(f"a log entry is limited to {MAX_LINE_BYTES} bytes")
    return line


def make_record(
    *, prev: str, index: int, time: datetime, kind: str, fields: Mapping[str, Any]
) -> LogRecord:
    line = encode_entry(prev=prev, index=index, time=time, kind=kind, fields=fields)
    return LogRecord(index, line, hashlib.sha256(line).digest())


class MemoryLogStore:
    """A :class:`LogStore` in lists."""

    def __init__(self) -> None:
        self.records: list[LogRecord] = []
        self._checkpoints: list[SignedCheckpoint] = []

    def last(self) -> LogRecord | None:
        return self.records[-1] if self.records else None

    def append(self, record: LogRecord) -> None:
        if record.index != len(self.records):
            raise LogConflict(f"entry {record.index} is not the next one ({len(self.records)})")
        self.records.append(record)

    def read(self, start: int, stop: int) -> Iterator[LogRecord]:
        return iter(self.records[start:stop])

    def add_checkpoint(self, checkpoint: SignedCheckpoint) -> None:
        sizes = {c.checkpoint.size for c in self._checkpoints}
        if checkpoint.checkpoint.size not in sizes:
            self._checkpoints.append(checkpoint)
            self._checkpoints.sort(key=lambda c: c.checkpoint.size)

    def checkpoints(self, after_size: int = 0) -> Iterator[SignedCheckpoint]:
        return (c for c in self._checkpoints if c.checkpoint.size > after_size)


class FileLogStore:
    """A :class:`LogStore` in two append-only files in ``directory``: ``entries.jsonl``
    and ``checkpoints.jsonl``. One writing process at a time. A torn last line (a crash
    mid-write, never acknowledged) is cut off when the store is opened."""

    def __init__(self, directory: str | os.PathLike[str], *, fsync: bool = False) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._entries_path = self.directory / "entries.jsonl"
        self._checkpoints_path = self.directory / "checkpoints.jsonl"
        self._offsets = array("Q")
        self._last: LogRecord | None = None
        self._sizes: set[int] = set()
        self._open_entries()
        for checkpoint in self._read_checkpoints():
            self._sizes.add(checkpoint.checkpoint.size)

    def _open_entries(self) -> None:
        self._entries_path.touch(exist_ok=True)
        offset = 0
        last_line = b""
        with self._entries_path.open("rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                self._offsets.append(offset)
                offset += len(raw)
                last_line = raw
        if offset != self._entries_path.stat().st_size:
            with self._entries_path.open("r+b") as handle:
                handle.truncate(offset)
            logger.warning("cut a torn last line from %s", self._entries_path.name)
        if self._offsets:
            line = last_line[:-1]
            self._last = LogRecord(len(self._offsets) - 1, line, hashlib.sha256(line).digest())
        self._entries = self._entries_path.open("ab")

    def close(self) -> None:
        self._entries.close()

    def last(self) -> LogRecord | None:
        return self._last

    def append(self, record: LogRecord) -> None:
        if record.index != len(self._offsets):
            raise LogConflict(f"entry {record.index} is not the next one ({len(self._offsets)})")
        offset = self._entries.tell()
        self._entries.write(record.line + b"\n")
        self._entries.flush()
        if self._fsync:
            os.fsync(self._entries.fileno())
        self._offsets.append(offset)
        self._last = record

    def read(self, start: int, stop: int) -> Iterator[LogRecord]:
        stop = min(stop, len(self._offsets))
        if start >= stop:
            return
        with self._entries_path.open("rb") as handle:
            handle.seek(self._offsets[start])
            for index in range(start, stop):
                line = handle.readline()[:-1]
                yield LogRecord(index, line, hashlib.sha256(line).digest())

    def add_checkpoint(self, checkpoint: SignedCheckpoint) -> None:
        if checkpoint.checkpoint.size in self._sizes:
            return
        with self._checkpoints_path.open("ab") as handle:
            handle.write(checkpoint.line() + b"\n")
            handle.flush()
            if self._fsync:
                os.fsync(handle.fileno())
        self._sizes.add(checkpoint.checkpoint.size)

    def _read_checkpoints(self) -> Iterator[SignedCheckpoint]:
        if not self._checkpoints_path.exists():
            return
        with self._checkpoints_path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.endswith(b"\n"):
                    break
                try:
                    yield SignedCheckpoint.from_line(raw[:-1])
                except ValueError as exc:
                    raise LogCorrupt(
                        f"{self._checkpoints_path.name} line {number}: {exc}"
                    ) from None

    def checkpoints(self, after_size: int = 0) -> Iterator[SignedCheckpoint]:
        found = [c for c in self._read_checkpoints() if c.checkpoint.size > after_size]
        return iter(sorted(found, key=lambda c: c.checkpoint.size))


class AuditLog:
    """Append entries, sign checkpoints and write exports over a :class:`LogStore`."""

    def __init__(
        self,
        store: LogStore,
        signer: CheckpointSigner,
        *,
        log_id: str,
        checkpoint_every: int = 1000,
        max_retries: int = 8,
    ) -> None:
        if not isinstance(log_id, str) or not _LOG_ID.fullmatch(log_id):
            raise InvalidArgument(
                f"log_id must be 1-64 letters, digits, '.', '_', ':' or '-', got {log_id!r}"
            )
        if not isinstance(signer, CheckpointSigner):
            raise TypeError("signer must be a CheckpointSigner")
        self.store = store
        self.signer = signer
        self.log_id = log_id
        self.checkpoint_every = validation.in_range(
            checkpoint_every, "checkpoint_every", 1, 1_000_000
        )
        self.max_retries = validation.in_range(max_retries, "max_retries", 1, 100)

    def append(
        self, kind: EntryKind | str, fields: Mapping[str, Any], *, now: datetime
    ) -> LogRecord:
        """Add an entry at the end; signs a checkpoint every ``checkpoint_every`` entries."""
        kind = kind.value if isinstance(kind, EntryKind) else kind
        for _ in range(self.max_retries):
            last = self.store.last()
            record = make_record(
                prev=GENESIS if last is None else last.hash,
                index=0 if last is None else last.index + 1,
                time=now,
                kind=kind,
                fields=fields,
            )
            try:
                self.store.append(record)
            except LogConflict:
                continue
            logger.debug("lock log entry %d: %s", record.index, kind)
            if (record.index + 1) % self.checkpoint_every == 0:
                self.checkpoint(now=now)
            return record
        raise LogConflict(f"could not append after {self.max_retries} attempts: log is busy")

    def checkpoint(self, *, now: datetime) -> SignedCheckpoint | None:
        """Sign the current head (``None`` while the log is empty)."""
        last = self.store.last()
        if last is None:
            return None
        checkpoint = Checkpoint(
            log_id=self.log_id,
            size=last.index + 1,
            head=last.hash,
            time=now,
            key_id=self.signer.key_id,
        )
        signed = self.signer.sign(checkpoint)
        self.store.add_checkpoint(signed)
        return signed

    def export_lines(self, *, now: datetime, by: str, start: int = 0) -> Iterator[bytes]:
        """Record the export, sign a checkpoint over it, then yield the export's lines
        (header, entries from ``start`` with their checkpoints), each without line feed."""
        validation.non_negative(start, "start")
        if not isinstance(by, str) or not by or len(by) > 200:
            raise InvalidArgument("by must name who exports (1-200 characters)")
        last = self.store.last()
        size = 0 if last is None else last.index + 1
        if start > size:
            raise InvalidArgument(f"start {start} is past the end of the log ({size} entries)")
        record = self.append(EntryKind.EXPORT, {"by": by, "start": start}, now=now)
        end = record.index + 1
        self.checkpoint(now=now)
        prev = GENESIS
        if start > 0:
            previous = next(iter(self.store.read(start - 1, start)))
            prev = previous.hash
        header = {
            "format": EXPORT_FORMAT,
            "version": EXPORT_VERSION,
            "log": self.log_id,
            "start": start,
            "prev": prev,
            "exported_at": validation.rfc3339(now),
            "keys": [
                {"id": self.signer.key_id, "public_key": public_key_text(self.signer.public_key)}
            ],
        }
        yield json.dumps(header, sort_keys=True, separators=(",", ":")).encode("ascii")
        checkpoints = self.store.checkpoints(after_size=start)
        pending = next(checkpoints, None)
        for entry in self.store.read(start, end):
            yield entry.line
            while pending is not None and pending.checkpoint.size <= entry.index + 1:
                if pending.checkpoint.size == entry.index + 1:
                    yield pending.line()
                pending = next(checkpoints, None)

    def export(self, out: IO[bytes], *, now: datetime, by: str, start: int = 0) -> int:
        """Write an export to ``out``; returns the number of entries written."""
        count = -1
        for line in self.export_lines(now=now, by=by, start=start):
            out.write(line + b"\n")
            if not line.startswith(b'{"checkpoint"'):
                count += 1
        logger.info("lock log exported", extra={"log_id": self.log_id, "entries": count})
        return count
