"""The lock library's storage, in the service's database.

:class:`DbKeyStore` is a :class:`lockctl.KeyStore` over ``lock_key_record``
(ciphertexts only: the master key never reaches the database), and
:class:`DbLogStore` a :class:`lockctl.LogStore` over ``lock_log_entry`` and
``lock_log_checkpoint``. Both work inside the caller's session, so a log entry
commits (or rolls back) with the change it records.

Appends are serialised across instances: on PostgreSQL the first read of the
log's head in a transaction takes a transaction-level advisory lock, held until
commit; on SQLite every transaction already holds the write lock. Should two
writers still race, the primary key on the entry's position refuses the second
(:class:`lockctl.LogConflict`), and :class:`lockctl.AuditLog` re-reads the head
and retries.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from atm_service.models.locks import LockKeyRecord, LockLogCheckpoint, LockLogEntry
from lockctl import (
    EncryptedKeyRecord,
    KeyExists,
    KeyNotFound,
    KeyState,
    LogConflict,
    LogRecord,
    SignedCheckpoint,
)

# pg_advisory_xact_lock key of the lock-access log ("lockslog" in ASCII).
LOG_ADVISORY_KEY = 0x6C6F636B736C6F67
_LOCKED = "lock_log_advisory_lock"
READ_BATCH = 2000


class DbKeyStore:
    """Encrypted lock-key records in ``lock_key_record``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    @staticmethod
    def _record(row: LockKeyRecord) -> EncryptedKeyRecord:
        return EncryptedKeyRecord(
            lock_id=row.lock_id,
            version=row.version,
            state=KeyState(row.state),
            created_at=row.created_at,
            master_key_id=row.master_key_id,
            nonce=bytes(row.nonce),
            ciphertext=bytes(row.ciphertext),
        )

    def insert(self, record: EncryptedKeyRecord) -> None:
        if self.session.get(LockKeyRecord, (record.lock_id, record.version)) is not None:
            raise KeyExists(f"lock {record.lock_id} already has key version {record.version}")
        self.session.add(
            LockKeyRecord(
                lock_id=record.lock_id,
                version=record.version,
                state=record.state.value,
                created_at=record.created_at,
                master_key_id=record.master_key_id,
                nonce=record.nonce,
                ciphertext=record.ciphertext,
            )
        )
        self.session.flush()

    def update(self, record: EncryptedKeyRecord) -> None:
        row = self.session.get(LockKeyRecord, (record.lock_id, record.version))
        if row is None:
            raise KeyNotFound(f"lock {record.lock_id} has no key version {record.version}")
        row.state = record.state.value
        row.master_key_id = record.master_key_id
        row.nonce = record.nonce
        row.ciphertext = record.ciphertext
        self.session.add(row)
        self.session.flush()

    def get(self, lock_id: str, version: int) -> EncryptedKeyRecord | None:
        row = self.session.get(LockKeyRecord, (lock_id, version))
        return None if row is None else self._record(row)

    def versions(self, lock_id: str) -> list[EncryptedKeyRecord]:
        rows = self.session.exec(
            select(LockKeyRecord)
            .where(col(LockKeyRecord.lock_id) == lock_id)
            .order_by(col(LockKeyRecord.version))
        )
        return [self._record(row) for row in rows]

    def records(self) -> Iterator[EncryptedKeyRecord]:
        rows = self.session.exec(
            select(LockKeyRecord).order_by(col(LockKeyRecord.lock_id), col(LockKeyRecord.version))
        )
        return iter([self._record(row) for row in rows])


def _users(fields: dict[str, Any]) -> str:
    numbers: set[int] = set()
    for name in ("user", "dual_with"):
        if isinstance(fields.get(name), int):
            numbers.add(fields[name])
    for value in fields.get("users") or ():
        if isinstance(value, int):
            numbers.add(value)
    text_ = ",".join(str(n) for n in sorted(numbers))
    return f",{text_}," if text_ else ""


class DbLogStore:
    """The lock-access log in ``lock_log_entry`` and ``lock_log_checkpoint``."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _serialise(self) -> None:
        if self.session.get_bind().dialect.name != "postgresql":
            return
        transaction = self.session.get_transaction()
        if transaction is not None and self.session.info.get(_LOCKED) is transaction:
            return
        self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOG_ADVISORY_KEY})
        self.session.info[_LOCKED] = self.session.get_transaction()

    def last(self) -> LogRecord | None:
        self._serialise()
        row = self.session.exec(
            select(LockLogEntry).order_by(col(LockLogEntry.position).desc()).limit(1)
        ).first()
        if row is None:
            return None
        return LogRecord(row.position, row.line.encode("ascii"), bytes.fromhex(row.digest))

    def append(self, record: LogRecord) -> None:
        fields = record.fields()
        lock = fields.get("lock")
        by = fields.get("by")
        row = LockLogEntry(
            position=record.index,
            line=record.line.decode("ascii"),
            digest=record.hash,
            kind=str(fields["kind"]),
            time=datetime.fromisoformat(str(fields["time"])),
            lock_id=lock if isinstance(lock, str) else None,
            actor=by[:64] if isinstance(by, str) else None,
            users=_users(fields)[:200],
        )
        try:
            with self.session.begin_nested():
                self.session.add(row)
        except IntegrityError:
            raise LogConflict(f"entry {record.index} was taken by another writer") from None

    def read(self, start: int, stop: int) -> Iterator[LogRecord]:
        position = start
        while position < stop:
            rows = list(
                self.session.exec(
                    select(LockLogEntry.position, LockLogEntry.line, LockLogEntry.digest)
                    .where(col(LockLogEntry.position) >= position)
                    .where(col(LockLogEntry.position) < stop)
                    .order_by(col(LockLogEntry.position))
                    .limit(READ_BATCH)
                )
            )
            if not rows:
                return
            for index, line, digest in rows:
                yield LogRecord(index, line.encode("ascii"), bytes.fromhex(digest))
            position = rows[-1][0] + 1

    def add_checkpoint(self, checkpoint: SignedCheckpoint) -> None:
        size = checkpoint.checkpoint.size
        if self.session.get(LockLogCheckpoint, size) is not None:
            return
        try:
            with self.session.begin_nested():
                self.session.add(
                    LockLogCheckpoint(
                        size=size,
                        line=checkpoint.line().decode("ascii"),
                        created_at=checkpoint.checkpoint.time,
                    )
                )
        except IntegrityError:
            return  # another writer kept a checkpoint of this size first

    def checkpoints(self, after_size: int = 0) -> Iterator[SignedCheckpoint]:
        rows = self.session.exec(
            select(LockLogCheckpoint.line)
            .where(col(LockLogCheckpoint.size) > after_size)
            .order_by(col(LockLogCheckpoint.size))
        )
        return iter([SignedCheckpoint.from_line(line.encode("ascii")) for line in rows])


def parse_fields(line: str) -> dict[str, Any]:
    """An entry's own fields, without ``prev``, ``i``, ``time`` and ``kind``."""
    data: dict[str, Any] = json.loads(line)
    for name in ("prev", "i", "time", "kind"):
        data.pop(name, None)
    return data
