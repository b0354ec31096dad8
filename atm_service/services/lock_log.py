"""The lock-access log for auditors: filtered reading, verification of what is stored, export.

- :func:`query` pages through entries by lock (ATM), person, kind and time, newest first;
- :func:`verify_stored` re-checks the whole stored log now: each line against its
  stored hash and the next entry's ``prev``, the indexes without gaps, and every
  signed checkpoint (signature under the service's key, head at its size). It
  answers "valid up to N" or the first bad entry and why, like ``atm-lock
  verify-export`` does for a file;
- :func:`export` writes a signed export (``docs/lock-log.md``) that anyone can check
  offline with ``atm-lock verify-export FILE --public-key KEY``. The export is itself
  logged (``export``, who and from which entry) before it is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import datetime
from typing import IO

from sqlmodel import Session, col, func, or_, select

from atm_service.errors import InvalidInput
from atm_service.models.locks import (
    LockLogCheckpoint,
    LockLogEntry,
    LogEntryPublic,
    LogVerification,
)
from atm_service.services.lock_secrets import LockSecrets
from atm_service.services.lock_stores import READ_BATCH, parse_fields
from lockctl import SignedCheckpoint
from lockctl.auditlog import GENESIS
from lockctl.signing import public_key_text


def to_public(row: LockLogEntry) -> LogEntryPublic:
    return LogEntryPublic(
        index=row.position,
        time=row.time,
        kind=row.kind,
        lock_id=row.lock_id,
        actor=row.actor,
        fields=parse_fields(row.line),
        line=row.line,
    )


def query(
    session: Session,
    *,
    lock_id: str | None = None,
    username: str | None = None,
    user_number: int | None = None,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[LockLogEntry], int]:
    """Entries matching every filter given, newest first, and how many match."""
    statement = select(LockLogEntry)
    if lock_id is not None:
        statement = statement.where(col(LockLogEntry.lock_id) == lock_id)
    if username is not None or user_number is not None:
        who = []
        if username is not None:
            who.append(col(LockLogEntry.actor) == username)
        if user_number is not None:
            who.append(col(LockLogEntry.users).contains(f",{user_number},"))
        statement = statement.where(or_(*who))
    if kind is not None:
        statement = statement.where(col(LockLogEntry.kind) == kind)
    if since is not None:
        statement = statement.where(col(LockLogEntry.time) >= since)
    if until is not None:
        statement = statement.where(col(LockLogEntry.time) < until)
    total = session.exec(select(func.count()).select_from(statement.subquery())).one()
    rows = session.exec(
        statement.order_by(col(LockLogEntry.position).desc()).offset(offset).limit(limit)
    )
    return list(rows), int(total)


def kinds(session: Session) -> list[str]:
    return sorted(session.exec(select(LockLogEntry.kind).distinct()))


def size(session: Session) -> int:
    last = session.exec(select(func.max(LockLogEntry.position))).one()
    return 0 if last is None else int(last) + 1


def verify_stored(session: Session, *, secrets: LockSecrets) -> LogVerification:
    """Check the stored log from entry 0, now."""
    signer = secrets.signer()
    public = signer.public_key
    checkpoints = {
        checkpoint.checkpoint.size: checkpoint
        for checkpoint in (
            SignedCheckpoint.from_line(line.encode("ascii"))
            for line in session.exec(
                select(LockLogCheckpoint.line).order_by(col(LockLogCheckpoint.size))
            )
        )
    }
    total = size(session)
    prev = GENESIS
    count = 0
    covered = 0
    bad: tuple[int, str] | None = None
    while bad is None and count < total:
        rows = list(
            session.exec(
                select(LockLogEntry.position, LockLogEntry.line, LockLogEntry.digest)
                .where(col(LockLogEntry.position) >= count)
                .order_by(col(LockLogEntry.position))
                .limit(READ_BATCH)
            )
        )
        if not rows:
            break
        for position, text, stored in rows:
            if position != count:
                bad = (count, f"entry {count} is missing (the next stored entry is {position})")
                break
            line = text.encode("ascii", "replace")
            prefix = f'{{"prev":"{prev}","i":{count},'.encode("ascii")
            if not line.startswith(prefix):
                if count > 0 and line.startswith(b'{"prev":"') and f',"i":{count},' in text:
                    bad = (
                        count - 1,
                        f"its content does not hash to the 'prev' recorded by entry {count}",
                    )
                else:
                    bad = (count, "its index or 'prev' field is not what the chain requires")
                break
            digest = hashlib.sha256(line).hexdigest()
            if digest != stored:
                bad = (count, "its content does not match the hash stored when it was written")
                break
            checkpoint = checkpoints.get(count + 1)
            if checkpoint is not None:
                body = checkpoint.checkpoint
                if body.key_id != signer.key_id:
                    bad = (
                        count,
                        f"checkpoint at {count + 1} entries is signed by key {body.key_id}, "
                        f"not the service's key {signer.key_id}",
                    )
                    break
                if not checkpoint.verify(public):
                    bad = (count, f"the signature of the checkpoint at {count + 1} entries is bad")
                    break
                if body.head != digest:
                    bad = (
                        count,
                        "it does not hash to the head signed in the checkpoint at "
                        f"{count + 1} entries",
                    )
                    break
                covered = count + 1
            prev = digest
            count += 1
    valid = bad is None
    key_text = public_key_text(public)
    if valid:
        uncovered = count - covered
        summary = (
            f"Valid: all {count} entries chain correctly"
            + (
                f"; {len(checkpoints)} signed checkpoint(s) verified, the last covering "
                f"{covered} entries"
                if checkpoints
                else "; no checkpoint signed yet"
            )
            + (f"; {uncovered} newer entries await the next checkpoint" if uncovered else "")
            + "."
        )
    else:
        assert bad is not None
        summary = f"Not valid: entry {bad[0]}: {bad[1]}. Entries before it verify ({bad[0]})."
    return LogVerification(
        valid=valid,
        entries=total,
        verified=count if valid else (bad[0] if bad else count),
        checkpoints=len(checkpoints),
        covered=covered,
        first_bad_index=None if bad is None else bad[0],
        reason=None if bad is None else bad[1],
        key_id=signer.key_id,
        public_key=key_text,
        summary=summary,
    )


def export(
    session: Session, *, secrets: LockSecrets, out: IO[bytes], by: str, start: int, now: datetime
) -> int:
    """Write a signed export from entry ``start`` to ``out`` (the export entry is logged and
    committed first); returns the number of entries written."""
    total = size(session)
    if start > total:
        raise InvalidInput(
            f"start {start} is past the end of the log ({total} entries).", field="start"
        )
    log = secrets.audit_log(session)
    count = log.export(out, now=now, by=by, start=start)
    session.commit()
    return count


SPOOL_BYTES = 8 * 1024 * 1024


def read_chunks(spool: IO[bytes], size: int = 256 * 1024) -> Iterator[bytes]:
    """An export written to ``spool``, from the start, in chunks; closes it at the end."""
    try:
        spool.seek(0)
        while chunk := spool.read(size):
            yield chunk
    finally:
        spool.close()
