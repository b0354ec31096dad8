"""A lock's own audit trail beside the service's log: import and comparison.

A lock keeps its own numbered trail (:class:`~lockctl.firmware.LockEvent`) that
an engineer or auditor downloads at the lock. :func:`entry_for_event` turns a
trail record into a log entry (kind and fields) so wrong codes, lockouts and
duress seen only by the lock reach the service's log. :func:`compare_trail`
checks the two records of the same lock against each other and lists every
discrepancy: an opening the service never issued a code for is critical, a seal
the engineer never reported is a warning.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from lockctl import validation
from lockctl.auditlog import EntryKind
from lockctl.errors import InvalidArgument, ProvisioningError
from lockctl.firmware import EventKind, LockEvent

TRAIL_FORMAT = "atm-lock-trail"


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True)
class Discrepancy:
    severity: Severity
    kind: str
    message: str
    lock_seq: int | None = None
    log_index: int | None = None


def parse_trail(text: str | bytes) -> tuple[str, list[LockEvent]]:
    """Read a downloaded trail (JSON lines: a header naming the lock, then one record per
    line); returns the lock id and the records. Raises :class:`ProvisioningError` naming
    the bad line."""
    lines = (text.decode("utf-8", "replace") if isinstance(text, bytes) else text).splitlines()
    try:
        header = json.loads(lines[0]) if lines else None
    except ValueError:
        header = None
    if not isinstance(header, dict) or header.get("format") != TRAIL_FORMAT:
        raise ProvisioningError(f"line 1: not an {TRAIL_FORMAT} header")
    try:
        lock_id = validation.lock_id(header.get("lock"))
    except InvalidArgument as exc:
        raise ProvisioningError(f"line 1: {exc}") from None
    events = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        try:
            events.append(LockEvent.from_dict(json.loads(line)))
        except ValueError:
            raise ProvisioningError(f"line {number}: not JSON") from None
        except ProvisioningError as exc:
            raise ProvisioningError(f"line {number}: {exc}") from None
    return lock_id, events


def entry_for_event(lock_id: str, event: LockEvent) -> tuple[EntryKind, dict[str, Any]]:
    """The log entry that records a trail record imported from lock ``lock_id``."""
    fields: dict[str, Any] = {"lock": validation.lock_id(lock_id), "source": "lock"}
    fields.update({f"lock_{k}" if k in ("seq", "at") else k: v for k, v in event.to_dict().items()})
    if event.kind in (EventKind.WRONG_CODE, EventKind.USED_CODE):
        return EntryKind.FAILURE, fields
    if event.kind is EventKind.LOCKOUT:
        return EntryKind.LOCKOUT, fields
    if event.kind is EventKind.DURESS:
        return EntryKind.DURESS, fields
    return EntryKind.LOCK_EVENT, fields


def _users(entry: Mapping[str, Any]) -> tuple[int, ...]:
    if "users" in entry:
        return tuple(sorted(entry["users"]))
    return (entry["user"],) if "user" in entry else ()


def compare_trail(
    lock_id: str, events: Iterable[LockEvent], entries: Iterable[Mapping[str, Any]]
) -> list[Discrepancy]:
    """Compare lock ``lock_id``'s trail with the service's log entries (parsed JSON
    objects, any locks; other locks' entries are ignored). Entries older than the
    trail's first record are not checked against it."""
    trail = sorted(events, key=lambda e: e.seq)
    mine = [e for e in entries if e.get("lock") == lock_id]
    found: list[Discrepancy] = []
    if not trail:
        return found
    since = validation.rfc3339(trail[0].at)
    issued = {
        (e.get("user"), e.get("operation"), e.get("window"))
        for e in mine
        if e.get("kind") == EntryKind.CODE_ISSUED and e.get("purpose") == "opening"
    }
    reported = {
        e.get("seal")
        for e in mine
        if e.get("kind") in (EntryKind.SEAL_REPORTED, EntryKind.RESYNC_CONFIRMED)
        and e.get("matched")
    }
    duress = {(_users(e), e.get("window")) for e in mine if e.get("kind") == EntryKind.DURESS}
    force_closed = {
        (user, e.get("operation"), e.get("window")): str(e.get("time", ""))
        for e in mine
        if e.get("kind") == EntryKind.FORCE_CLOSE and e.get("purpose") == "opening"
        for user in _users(e)
    }
    imported = {e.get("lock_seq") for e in mine if e.get("source") == "lock"}
    shown: set[str] = set()
    for event in trail:
        operation = None if event.operation is None else event.operation.value
        if event.kind is EventKind.OPENED:
            for user in event.users:
                closed_at = force_closed.get((user, operation, event.window))
                if closed_at is not None:
                    late = validation.rfc3339(event.at) > closed_at
                    found.append(
                        Discrepancy(
                            Severity.CRITICAL if late else Severity.WARNING,
                            "opened-after-force-close" if late else "force-closed-code-used",
                            f"the lock opened for user {user} ({operation}, window "
                            f"{event.window}) with a code force-closed at {closed_at}"
                            + ("" if late else ": its seal was lost"),
                            lock_seq=event.seq,
                        )
                    )
                if (user, operation, event.window) not in issued:
                    found.append(
                        Discrepancy(
                            Severity.CRITICAL,
                            "opened-without-issue",
                            f"the lock opened for user {user} ({operation}, window "
                            f"{event.window}) but the log has no code issued for it",
                            lock_seq=event.seq,
                        )
                    )
        elif event.kind in (EventKind.CLOSED, EventKind.RESYNC):
            assert event.seal is not None
            shown.add(event.seal)
            if event.seal not in reported:
                found.append(
                    Discrepancy(
                        Severity.WARNING,
                        "seal-not-reported",
                        f"the lock showed seal {event.seal} ({event.kind.value}) and the log "
                        "has no matching seal report",
                        lock_seq=event.seq,
                    )
                )
        elif event.kind is EventKind.DURESS:
            if (tuple(sorted(event.users)), event.window) not in duress and (
                event.seq not in imported
            ):
                found.append(
                    Discrepancy(
                        Severity.CRITICAL,
                        "duress-not-logged",
                        f"the lock recorded a duress opening by {list(event.users)} that the "
                        "log does not show",
                        lock_seq=event.seq,
                    )
                )
        elif (
            event.kind in (EventKind.WRONG_CODE, EventKind.USED_CODE, EventKind.LOCKOUT)
            and event.seq not in imported
        ):
            found.append(
                Discrepancy(
                    Severity.WARNING,
                    "not-imported",
                    f"lock record {event.seq} ({event.kind.value}) is not in the log",
                    lock_seq=event.seq,
                )
            )
    for entry in mine:
        if (
            entry.get("kind") in (EntryKind.SEAL_REPORTED, EntryKind.RESYNC_CONFIRMED)
            and entry.get("matched")
            and str(entry.get("time", "")) >= since
            and entry.get("seal") not in shown
        ):
            found.append(
                Discrepancy(
                    Severity.CRITICAL,
                    "seal-not-shown",
                    f"the log accepted seal {entry.get('seal')} that the lock never showed",
                    log_index=entry.get("i"),
                )
            )
    return found
