"""The agent's durable spool: everything read from the device, kept until the service has it.

One SQLite file in WAL mode holds

- journal bytes by (journal name, offset): each journal grows contiguously; a
  re-store of bytes already held is accepted when they are the same bytes and
  refused (:class:`~device_agent.errors.JournalConflict`) when they differ; bytes
  past the end are refused (:class:`~device_agent.errors.JournalGap`);
- records (cash-unit snapshots, device status, events), each given the next
  number of a per-spool sequence that never goes back, not even after pruning;
  the spool's random ``stream_id`` names that sequence at the service, so a
  replaced spool starts a new one instead of colliding with the old;
- what the service has acknowledged: per journal the acknowledged offset, for
  records the acknowledged sequence number, so an upload resumes exactly where
  the service stands;
- after :meth:`Spool.prune`, only what is not yet acknowledged.

Durability: the spool is the :class:`~device_agent.link.LinkSink` of the serial
link, and the link acknowledges to the device only after a ``store_*`` call
returns; the device then discards unsolicited events. So every store commits
with ``synchronous=FULL``: in WAL mode that syncs the log on each commit, and a
power cut (which ATMs do suffer) cannot take back an acknowledged event. With
``NORMAL`` a commit survives a crash of the agent but not of the machine.

Duplicate events: when an agent dies after storing an event but before the
link acknowledged it, the device sends the event again. An event identical in
every field (kind, device time to the second, unit, code...) to one stored in
the last ``event_memory`` (a day by default) is taken as that retransmission
and not stored twice. Status and cash-unit snapshots are states, not
occurrences, and are always stored.

The spool is safe to use from several threads (the link's and the uploader's):
one connection, one lock.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from device_agent.errors import (
    InvalidRecord,
    JournalConflict,
    JournalGap,
    SpoolError,
    SpoolPruned,
)

SCHEMA_VERSION = 1
JOURNAL_NAME = re.compile(r"^[0-9]{8}$")
RECORD_KINDS = ("cash_units", "status", "event")
RecordKind = Literal["cash_units", "status", "event"]
MAX_RECORD_BYTES = 64 * 1024
MAX_REASON_LENGTH = 64
# Consecutive small link frames are merged into one chunk up to this size, so a
# day's journal is a few hundred rows rather than tens of thousands.
CHUNK_TARGET = 16 * 1024

Clock = Callable[[], datetime]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    name TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    acked INTEGER NOT NULL DEFAULT 0,
    pruned INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL,
    CHECK (0 <= pruned AND pruned <= acked AND acked <= size)
);
CREATE TABLE IF NOT EXISTS journal_chunk (
    name TEXT NOT NULL REFERENCES journal (name),
    start INTEGER NOT NULL,
    data BLOB NOT NULL,
    stored_at TEXT NOT NULL,
    PRIMARY KEY (name, start)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS record (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL CHECK (kind IN ('cash_units', 'status', 'event')),
    body TEXT NOT NULL,
    digest TEXT,
    stored_at TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS record_event_digest ON record (digest)
    WHERE digest IS NOT NULL;
"""


def system_clock() -> datetime:
    return datetime.now(UTC)


def _timestamp(moment: datetime) -> str:
    if moment.tzinfo is None:
        raise ValueError("the spool's clock must return timezone-aware times")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _parse_timestamp(text: str) -> datetime:
    return datetime.fromisoformat(text)


def check_journal_name(name: str) -> None:
    """A journal is named by its business day, ``YYYYMMDD``."""
    if not isinstance(name, str) or not JOURNAL_NAME.match(name):
        raise SpoolError(f"journal name {name!r} is not a date written YYYYMMDD")
    try:
        datetime.strptime(name, "%Y%m%d")
    except ValueError:
        raise SpoolError(f"journal name {name!r} is not a real date") from None


@dataclass(frozen=True)
class JournalState:
    """How much of one journal the spool holds and the service has."""

    name: str
    size: int
    acked: int
    pruned: int

    @property
    def pending(self) -> int:
        return self.size - self.acked


@dataclass(frozen=True)
class SpoolRecord:
    seq: int
    kind: RecordKind
    data: dict[str, Any]
    stored_at: datetime


@dataclass(frozen=True)
class Backlog:
    """What the service does not have yet."""

    journal_bytes: int
    records: int
    oldest_pending_at: datetime | None
    last_stored_at: datetime | None


@dataclass(frozen=True)
class PruneResult:
    chunks: int
    journal_bytes: int
    records: int


def _canonical_json(data: object, what: str) -> str:
    try:
        body = json.dumps(
            data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except (TypeError, ValueError) as exc:
        raise InvalidRecord(f"{what} is not plain JSON data: {exc}") from exc
    if len(body.encode("utf-8")) > MAX_RECORD_BYTES:
        raise InvalidRecord(f"{what} is larger than {MAX_RECORD_BYTES} bytes as JSON")
    return body


class Spool:
    """The SQLite spool at ``path`` (created on first use). Implements ``LinkSink``."""

    def __init__(
        self,
        path: Path | str,
        *,
        clock: Clock = system_clock,
        event_memory: timedelta = timedelta(days=1),
        synchronous: Literal["FULL", "NORMAL"] = "FULL",
        chunk_target: int = CHUNK_TARGET,
        new_stream_id: Callable[[], str] = lambda: uuid.uuid4().hex,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.event_memory = event_memory
        self.chunk_target = chunk_target
        self._lock = threading.RLock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
        except (OSError, sqlite3.Error) as exc:
            raise SpoolError(f"cannot open the spool {self.path}: {exc}") from exc
        try:
            self._configure(synchronous)
            self._stream_id = self._initialise(new_stream_id)
        except sqlite3.DatabaseError as exc:
            self._connection.close()
            raise SpoolError(f"{self.path} is not a usable spool: {exc}") from exc
        except SpoolError:
            self._connection.close()
            raise

    # --- set-up -------------------------------------------------------------

    def _configure(self, synchronous: str) -> None:
        cursor = self._connection.cursor()
        mode = cursor.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise SpoolError(f"{self.path}: SQLite refused WAL mode (got {mode})")
        cursor.execute(f"PRAGMA synchronous={synchronous}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    def _initialise(self, new_stream_id: Callable[[], str]) -> str:
        # executescript() manages its own transaction; every statement is idempotent.
        with self._lock:
            self._connection.executescript(_SCHEMA)
        with self._write() as cursor:
            version = self._meta(cursor, "schema")
            if version is None:
                cursor.execute(
                    "INSERT INTO spool_meta (key, value) VALUES ('schema', ?)",
                    (str(SCHEMA_VERSION),),
                )
            elif int(version) != SCHEMA_VERSION:
                raise SpoolError(
                    f"{self.path} is a spool of schema {version}; this agent reads schema "
                    f"{SCHEMA_VERSION}"
                )
            stream = self._meta(cursor, "stream")
            if stream is None:
                stream = new_stream_id()
                cursor.execute(
                    "INSERT INTO spool_meta (key, value) VALUES ('stream', ?)", (stream,)
                )
            if self._meta(cursor, "records_acked") is None:
                cursor.execute("INSERT INTO spool_meta (key, value) VALUES ('records_acked', '0')")
        return stream

    def close(self) -> None:
        with self._lock:
            self._connection.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- plumbing -----------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction, taken up front so no reader has to upgrade its lock."""
        with self._lock:
            cursor = self._connection.cursor()
            try:
                cursor.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                cursor.close()
                raise SpoolError(f"cannot write to the spool {self.path}: {exc}") from exc
            try:
                yield cursor
            except BaseException:
                self._connection.rollback()
                raise
            else:
                try:
                    cursor.execute("COMMIT")
                except sqlite3.Error as exc:
                    self._connection.rollback()
                    raise SpoolError(f"cannot commit to the spool {self.path}: {exc}") from exc
            finally:
                cursor.close()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Cursor]:
        """A consistent snapshot for several SELECTs."""
        with self._lock:
            cursor = self._connection.cursor()
            cursor.execute("BEGIN")
            try:
                yield cursor
            finally:
                self._connection.rollback()
                cursor.close()

    @staticmethod
    def _meta(cursor: sqlite3.Cursor, key: str) -> str | None:
        row = cursor.execute("SELECT value FROM spool_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    @staticmethod
    def _set_meta(cursor: sqlite3.Cursor, key: str, value: str) -> None:
        cursor.execute(
            "INSERT INTO spool_meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _now(self) -> str:
        return _timestamp(self.clock())

    @staticmethod
    def _journal_row(cursor: sqlite3.Cursor, name: str) -> JournalState | None:
        row = cursor.execute(
            "SELECT size, acked, pruned FROM journal WHERE name = ?", (name,)
        ).fetchone()
        if row is None:
            return None
        return JournalState(name=name, size=row[0], acked=row[1], pruned=row[2])

    def _bytes(self, cursor: sqlite3.Cursor, name: str, start: int, end: int) -> bytes:
        """Stored bytes [start, end) of a journal; they must all be held."""
        if start >= end:
            return b""
        first = cursor.execute(
            "SELECT max(start) FROM journal_chunk WHERE name = ? AND start <= ?", (name, start)
        ).fetchone()[0]
        if first is None:
            raise SpoolError(f"journal {name}: bytes from offset {start} are not in the spool")
        rows = cursor.execute(
            "SELECT start, data FROM journal_chunk WHERE name = ? AND start >= ? AND start < ? "
            "ORDER BY start",
            (name, first, end),
        ).fetchall()
        parts: list[bytes] = []
        position = first
        for chunk_start, data in rows:
            if chunk_start != position:
                raise SpoolError(
                    f"journal {name}: the spool has a hole at offset {position}; it is damaged"
                )
            parts.append(bytes(data))
            position += len(data)
        if position < end:
            raise SpoolError(f"journal {name}: the spool ends at {position}, before {end}")
        whole = b"".join(parts)
        return whole[start - first : end - first]

    # --- LinkSink ------------------------------------------------------------

    def journal_offset(self, name: str) -> int:
        """Bytes of journal ``name`` stored so far: where the link reads on from."""
        check_journal_name(name)
        with self._read() as cursor:
            state = self._journal_row(cursor, name)
        return 0 if state is None else state.size

    def store_journal(self, name: str, offset: int, data: bytes) -> None:
        """Store ``data`` at ``offset`` of journal ``name``, durably, before returning.

        Bytes already held are compared, not stored again; the part past the end
        is appended. Raises :class:`JournalGap` when ``offset`` is past the end
        and :class:`JournalConflict` when held bytes differ from ``data``.
        """
        check_journal_name(name)
        if not isinstance(offset, int) or offset < 0:
            raise SpoolError(f"journal {name}: offset {offset!r} is not a byte offset")
        data = bytes(data)
        now = self._now()
        with self._write() as cursor:
            state = self._journal_row(cursor, name)
            size = 0 if state is None else state.size
            pruned = 0 if state is None else state.pruned
            if offset > size:
                raise JournalGap(name, offset, size)
            end = offset + len(data)
            check_from, check_to = max(offset, pruned), min(end, size)
            if check_from < check_to:
                held = self._bytes(cursor, name, check_from, check_to)
                given = data[check_from - offset : check_to - offset]
                if held != given:
                    first_difference = next(
                        i for i, (a, b) in enumerate(zip(held, given, strict=True)) if a != b
                    )
                    raise JournalConflict(name, offset, check_from + first_difference)
            if end <= size:
                return
            new = data[size - offset :]
            if state is None:
                cursor.execute(
                    "INSERT INTO journal (name, size, acked, pruned, updated_at) "
                    "VALUES (?, ?, 0, 0, ?)",
                    (name, end, now),
                )
            else:
                cursor.execute(
                    "UPDATE journal SET size = ?, updated_at = ? WHERE name = ?", (end, now, name)
                )
            last = cursor.execute(
                "SELECT start, data FROM journal_chunk WHERE name = ? ORDER BY start DESC LIMIT 1",
                (name,),
            ).fetchone()
            if last is not None and len(last[1]) + len(new) <= self.chunk_target:
                cursor.execute(
                    "UPDATE journal_chunk SET data = ? WHERE name = ? AND start = ?",
                    (bytes(last[1]) + new, name, last[0]),
                )
            else:
                cursor.execute(
                    "INSERT INTO journal_chunk (name, start, data, stored_at) VALUES (?, ?, ?, ?)",
                    (name, size, new, now),
                )

    def store_cash_units(self, units: list[dict[str, object]], reason: str) -> None:
        """Store one cash-unit snapshot (XFS ``WFSCDMCASHUNIT`` dicts) and why it was taken."""
        if not isinstance(reason, str) or not reason or len(reason) > MAX_REASON_LENGTH:
            raise InvalidRecord(
                f"a cash-unit snapshot needs a reason of 1 to {MAX_REASON_LENGTH} characters"
            )
        if not isinstance(units, list) or not all(isinstance(u, dict) for u in units):
            raise InvalidRecord("cash units must be a list of dicts (XFS WFSCDMCASHUNIT fields)")
        self._store_record("cash_units", {"reason": reason, "cash_units": units})

    def store_status(self, status: dict[str, object]) -> None:
        """Store one device status report."""
        if not isinstance(status, dict):
            raise InvalidRecord("a device status must be a dict")
        self._store_record("status", status)

    def store_event(self, event: dict[str, object]) -> None:
        """Store one unsolicited device event, unless it is a retransmission of a stored one."""
        if not isinstance(event, dict) or not isinstance(event.get("kind"), str):
            raise InvalidRecord("an event must be a dict with a string 'kind'")
        self._store_record("event", event, dedupe=True)

    def _store_record(
        self, kind: RecordKind, data: dict[str, Any], *, dedupe: bool = False
    ) -> None:
        body = _canonical_json(data, f"the {kind} record")
        digest = hashlib.sha256(f"{kind}\n{body}".encode()).hexdigest() if dedupe else None
        with self._write() as cursor:
            if digest is not None:
                seen = cursor.execute("SELECT 1 FROM record WHERE digest = ?", (digest,)).fetchone()
                if seen is not None:
                    return
            cursor.execute(
                "INSERT INTO record (kind, body, digest, stored_at) VALUES (?, ?, ?, ?)",
                (kind, body, digest, self._now()),
            )

    # --- the uploader's side ------------------------------------------------

    @property
    def stream_id(self) -> str:
        """Names this spool's record sequence at the service."""
        return self._stream_id

    def terminal_id(self) -> str | None:
        """The terminal whose data this spool holds, once known."""
        with self._read() as cursor:
            return self._meta(cursor, "terminal_id")

    def bind_terminal(self, terminal_id: str) -> None:
        """Record which terminal this spool belongs to; refuse to change it."""
        with self._write() as cursor:
            current = self._meta(cursor, "terminal_id")
            if current is None:
                self._set_meta(cursor, "terminal_id", terminal_id)
            elif current != terminal_id:
                raise SpoolError(
                    f"the spool {self.path} holds data of terminal {current}, but the key is "
                    f"enrolled for {terminal_id}; use that terminal's spool or a new one"
                )

    def journal_state(self, name: str) -> JournalState | None:
        check_journal_name(name)
        with self._read() as cursor:
            return self._journal_row(cursor, name)

    def journals(self) -> list[JournalState]:
        with self._read() as cursor:
            rows = cursor.execute(
                "SELECT name, size, acked, pruned FROM journal ORDER BY name"
            ).fetchall()
        return [JournalState(name=r[0], size=r[1], acked=r[2], pruned=r[3]) for r in rows]

    def pending_journals(self) -> list[JournalState]:
        """Journals with bytes the service has not acknowledged, oldest first."""
        return [state for state in self.journals() if state.pending > 0]

    def read_journal(self, name: str, offset: int, limit: int) -> bytes:
        """Up to ``limit`` stored bytes of journal ``name`` from ``offset``."""
        check_journal_name(name)
        if limit < 1:
            raise SpoolError("read at least one byte")
        with self._read() as cursor:
            state = self._journal_row(cursor, name)
            if state is None:
                raise SpoolError(f"journal {name} is not in the spool")
            if offset < state.pruned:
                raise SpoolPruned(
                    f"journal {name}: bytes below offset {state.pruned} were acknowledged and "
                    f"pruned; offset {offset} can no longer be sent"
                )
            if offset > state.size:
                raise SpoolError(f"journal {name}: offset {offset} is past its end ({state.size})")
            return self._bytes(cursor, name, offset, min(state.size, offset + limit))

    def ack_journal(self, name: str, offset: int) -> None:
        """The service holds journal ``name`` up to ``offset``; never moves backwards."""
        check_journal_name(name)
        with self._write() as cursor:
            state = self._journal_row(cursor, name)
            if state is None or offset > state.size:
                size = 0 if state is None else state.size
                raise SpoolError(
                    f"journal {name}: acknowledgement of offset {offset} beyond the {size} bytes "
                    "stored"
                )
            if offset > state.acked:
                cursor.execute("UPDATE journal SET acked = ? WHERE name = ?", (offset, name))

    def rewind_journal(self, name: str, offset: int) -> None:
        """The service holds less than acknowledged (e.g. restored from a backup): resend."""
        check_journal_name(name)
        with self._write() as cursor:
            state = self._journal_row(cursor, name)
            if state is None:
                raise SpoolError(f"journal {name} is not in the spool")
            if offset < state.pruned:
                raise SpoolPruned(
                    f"journal {name}: the service needs bytes from offset {offset}, but the "
                    f"spool pruned everything below {state.pruned}; re-read the journal from "
                    "the device"
                )
            if offset < state.acked:
                cursor.execute("UPDATE journal SET acked = ? WHERE name = ?", (offset, name))

    @property
    def records_acked(self) -> int:
        with self._read() as cursor:
            return int(self._meta(cursor, "records_acked") or 0)

    def pending_records(self, limit: int) -> list[SpoolRecord]:
        """Up to ``limit`` records the service has not acknowledged, in sequence order."""
        with self._read() as cursor:
            acked = int(self._meta(cursor, "records_acked") or 0)
            rows = cursor.execute(
                "SELECT seq, kind, body, stored_at FROM record WHERE seq > ? ORDER BY seq LIMIT ?",
                (acked, limit),
            ).fetchall()
        return [
            SpoolRecord(
                seq=row[0], kind=row[1], data=json.loads(row[2]), stored_at=_parse_timestamp(row[3])
            )
            for row in rows
        ]

    def last_seq(self) -> int:
        """The highest sequence number ever given (0 before the first record)."""
        with self._read() as cursor:
            row = cursor.execute("SELECT seq FROM sqlite_sequence WHERE name = 'record'").fetchone()
        return 0 if row is None else int(row[0])

    def ack_records(self, seq: int) -> None:
        """The service holds every record up to ``seq``; never moves backwards."""
        last = self.last_seq()
        if seq > last:
            raise SpoolError(f"acknowledgement of record {seq}, but the last record is {last}")
        with self._write() as cursor:
            acked = int(self._meta(cursor, "records_acked") or 0)
            if seq > acked:
                self._set_meta(cursor, "records_acked", str(seq))

    def rewind_records(self, next_seq: int) -> None:
        """The service expects record ``next_seq`` next, below what was acknowledged: resend."""
        with self._write() as cursor:
            acked = int(self._meta(cursor, "records_acked") or 0)
            if next_seq > acked:
                return
            held = cursor.execute("SELECT 1 FROM record WHERE seq = ?", (next_seq,)).fetchone()
            if held is None and next_seq >= 1:
                raise SpoolPruned(
                    f"the service expects record {next_seq}, which was acknowledged and pruned"
                )
            self._set_meta(cursor, "records_acked", str(max(0, next_seq - 1)))

    def backlog(self) -> Backlog:
        with self._read() as cursor:
            journal_bytes = cursor.execute(
                "SELECT coalesce(sum(size - acked), 0) FROM journal"
            ).fetchone()[0]
            acked = int(self._meta(cursor, "records_acked") or 0)
            records, oldest_record = cursor.execute(
                "SELECT count(*), min(stored_at) FROM record WHERE seq > ?", (acked,)
            ).fetchone()
            oldest_chunk = cursor.execute(
                "SELECT min(c.stored_at) FROM journal_chunk AS c JOIN journal AS j "
                "ON j.name = c.name WHERE c.start + length(c.data) > j.acked"
            ).fetchone()[0]
            newest = cursor.execute(
                "SELECT max(t) FROM (SELECT max(updated_at) AS t FROM journal "
                "UNION ALL SELECT max(stored_at) FROM record)"
            ).fetchone()[0]
        oldest = min((t for t in (oldest_record, oldest_chunk) if t is not None), default=None)
        return Backlog(
            journal_bytes=int(journal_bytes),
            records=int(records),
            oldest_pending_at=None if oldest is None else _parse_timestamp(oldest),
            last_stored_at=None if newest is None else _parse_timestamp(newest),
        )

    def prune(self) -> PruneResult:
        """Delete what the service has acknowledged (events stay ``event_memory`` longer)."""
        keep_events_since = _timestamp(self.clock() - self.event_memory)
        chunks = journal_bytes = 0
        with self._write() as cursor:
            for name, acked in cursor.execute(
                "SELECT name, acked FROM journal WHERE acked > pruned"
            ).fetchall():
                count, size = cursor.execute(
                    "SELECT count(*), coalesce(sum(length(data)), 0) FROM journal_chunk "
                    "WHERE name = ? AND start + length(data) <= ?",
                    (name, acked),
                ).fetchone()
                if not count:
                    continue
                cursor.execute(
                    "DELETE FROM journal_chunk WHERE name = ? AND start + length(data) <= ?",
                    (name, acked),
                )
                cursor.execute(
                    "UPDATE journal SET pruned = coalesce("
                    "(SELECT min(start) FROM journal_chunk WHERE name = ?), size) WHERE name = ?",
                    (name, name),
                )
                chunks += int(count)
                journal_bytes += int(size)
            acked = int(self._meta(cursor, "records_acked") or 0)
            cursor.execute(
                "DELETE FROM record WHERE seq <= ? AND (digest IS NULL OR stored_at < ?)",
                (acked, keep_events_since),
            )
            records = cursor.rowcount
        return PruneResult(chunks=chunks, journal_bytes=journal_bytes, records=max(0, records))
