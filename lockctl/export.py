"""Offline verification of a lock-access log export (``docs/lock-log.md``).

:func:`verify_export` streams the file once: one SHA-256 per entry, a signature
check only at each checkpoint, no JSON parsing of ordinary entries (their fixed
prefix holds what the chain needs). It stops at the first fault and raises
:class:`~lockctl.errors.ExportInvalid` naming the first bad entry (its index and
line) and why; otherwise it returns an :class:`ExportSummary`.

What it catches:
- a changed entry: its hash no longer matches the ``prev`` of the entry after it,
  or, for the last entry before a checkpoint, the signed head;
- a removed, repeated or moved entry: the indexes stop counting up by one;
- a rewritten tail: the signed head of the next checkpoint does not match;
- a truncated export: entries after the last checkpoint, or no final export entry;
- forged checkpoints: the signature does not verify under a trusted key.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lockctl.auditlog import EXPORT_FORMAT, EXPORT_VERSION, GENESIS
from lockctl.errors import ExportInvalid, SigningKeyError
from lockctl.signing import PublicKeys, SignedCheckpoint, parse_public_key_text

_ENTRY_PREFIX = b'{"prev":"'
_INDEX_MARK = b'","i":'
_TIME_MARK = b',"time":"'
_KIND_MARK = b'","kind":"'
_CHECKPOINT_PREFIX = b'{"checkpoint":'
_HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ExportSummary:
    """What a valid export holds."""

    log_id: str
    start: int  # index of the first entry
    end: int  # one past the last entry
    checkpoints: int
    key_ids: tuple[str, ...]  # keys that signed its checkpoints
    pinned: bool  # signatures checked against keys given by the verifier, not the file
    first_time: str
    last_time: str
    kinds: dict[str, int] = field(default_factory=dict)

    @property
    def entries(self) -> int:
        return self.end - self.start

    def describe(self) -> str:
        kinds = ", ".join(f"{kind} {count}" for kind, count in sorted(self.kinds.items()))
        keys = ", ".join(self.key_ids)
        trust = (
            "pinned key"
            if self.pinned
            else "key carried in the export itself (not pinned: pass --public-key)"
        )
        return (
            f"log {self.log_id}: entries {self.start} to {self.end - 1} ({self.entries} entries) "
            f"from {self.first_time} to {self.last_time}; {self.checkpoints} checkpoint(s) "
            f"signed by {keys} with a {trust}; {kinds}"
        )


def _header(line: bytes, keys: PublicKeys | None) -> tuple[dict[str, Any], PublicKeys, bool]:
    try:
        header = json.loads(line)
    except ValueError:
        raise ExportInvalid(
            "the first line is not a JSON export header", index=None, line=1
        ) from None
    if not isinstance(header, dict) or header.get("format") != EXPORT_FORMAT:
        raise ExportInvalid(f"the first line is not an {EXPORT_FORMAT} header", index=None, line=1)
    if header.get("version") != EXPORT_VERSION:
        raise ExportInvalid(
            f"export version {header.get('version')!r} is not supported "
            f"(this verifier reads version {EXPORT_VERSION})",
            index=None,
            line=1,
        )
    start = header.get("start")
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ExportInvalid("header 'start' must be a non-negative integer", index=None, line=1)
    prev = header.get("prev")
    if not isinstance(prev, str) or not _HEX64.fullmatch(prev):
        raise ExportInvalid("header 'prev' must be 64 lower-case hex digits", index=None, line=1)
    if start == 0 and prev != GENESIS:
        raise ExportInvalid("an export from entry 0 must start from the zero hash", index=0, line=1)
    if not isinstance(header.get("log"), str):
        raise ExportInvalid("header 'log' must name the log", index=None, line=1)
    if keys is not None:
        return header, keys, True
    embedded = header.get("keys")
    try:
        if not isinstance(embedded, list) or not embedded:
            raise SigningKeyError("no keys")
        parsed = [parse_public_key_text(str(item["public_key"])) for item in embedded]
        return header, PublicKeys(parsed), False
    except (SigningKeyError, KeyError, TypeError):
        raise ExportInvalid(
            "no --public-key given and the header carries no usable public key",
            index=None,
            line=1,
        ) from None


def verify_export(lines: Iterable[bytes], keys: PublicKeys | None = None) -> ExportSummary:
    """Verify an export given as lines of bytes (an open binary file will do).

    ``keys`` are the trusted checkpoint keys; without them the keys written in the
    export's header are used, and the summary says the result is not pinned.
    """
    iterator = iter(lines)
    first = next(iterator, None)
    if first is None:
        raise ExportInvalid("the file is empty", index=None, line=None)
    header, trusted, pinned = _header(first.rstrip(b"\r\n"), keys)
    log_id: str = header["log"]
    start: int = header["start"]
    prev = header["prev"].encode("ascii")
    expected = start  # index of the next entry
    covered = start  # entries before this index are under a verified checkpoint
    checkpoints = 0
    signers: set[str] = set()
    kinds: dict[bytes, int] = {}
    first_entry: bytes | None = None
    last_entry = b""
    entry_line = 0
    number = 1
    sha256 = hashlib.sha256
    hexlify = binascii.hexlify

    for number, raw in enumerate(iterator, start=2):
        line = raw[:-1] if raw.endswith(b"\n") else raw
        if line.startswith(_ENTRY_PREFIX):
            if line[73:79] != _INDEX_MARK:
                raise ExportInvalid("malformed entry line", index=expected, line=number)
            comma = line.find(b",", 79)
            try:
                index = int(line[79:comma])
            except ValueError:
                raise ExportInvalid("malformed entry index", index=expected, line=number) from None
            if index != expected:
                if index > expected:
                    reason = (
                        f"expected entry {expected} here but found entry {index}: "
                        f"entry {expected} was removed or moved"
                    )
                else:
                    reason = (
                        f"expected entry {expected} here but found entry {index} again: "
                        "entries were repeated or moved"
                    )
                raise ExportInvalid(reason, index=expected, line=number)
            if line[9:73] != prev:
                if expected == start:
                    raise ExportInvalid(
                        "the first entry does not chain to the header's 'prev' hash",
                        index=expected,
                        line=number,
                    )
                if covered == expected:
                    raise ExportInvalid(
                        f"its 'prev' does not match entry {expected - 1}, which a signed "
                        "checkpoint vouches for: this entry was changed",
                        index=expected,
                        line=number,
                    )
                raise ExportInvalid(
                    f"its content does not hash to the 'prev' recorded by entry {expected}: "
                    f"entry {expected - 1} was changed (or entry {expected}'s 'prev' was)",
                    index=expected - 1,
                    line=entry_line,
                )
            kind_at = line.find(_KIND_MARK, comma)
            if kind_at < 0:
                raise ExportInvalid("entry has no kind", index=expected, line=number)
            kind_end = line.find(b'"', kind_at + 10)
            kind = line[kind_at + 10 : kind_end]
            kinds[kind] = kinds.get(kind, 0) + 1
            if first_entry is None:
                first_entry = line
            last_entry = line
            entry_line = number
            prev = hexlify(sha256(line).digest())
            expected += 1
        elif line.startswith(_CHECKPOINT_PREFIX):
            try:
                signed = SignedCheckpoint.from_line(line)
            except ValueError as exc:
                raise ExportInvalid(
                    f"malformed checkpoint: {exc}", index=None, line=number
                ) from None
            checkpoint = signed.checkpoint
            if checkpoint.log_id != log_id:
                raise ExportInvalid(
                    f"checkpoint is for log {checkpoint.log_id!r}, the export for {log_id!r}",
                    index=None,
                    line=number,
                )
            public_key = trusted.get(checkpoint.key_id)
            if public_key is None:
                raise ExportInvalid(
                    f"checkpoint of size {checkpoint.size} is signed by key "
                    f"{checkpoint.key_id}, which is not trusted ({', '.join(trusted.ids)})",
                    index=None,
                    line=number,
                )
            if not signed.verify(public_key):
                raise ExportInvalid(
                    f"checkpoint of size {checkpoint.size}: the signature does not verify",
                    index=None,
                    line=number,
                )
            if checkpoint.size > expected:
                raise ExportInvalid(
                    f"a signed checkpoint of size {checkpoint.size} follows entry "
                    f"{expected - 1}: entries {expected} to {checkpoint.size - 1} were removed",
                    index=expected,
                    line=number,
                )
            if checkpoint.size < expected:
                raise ExportInvalid(
                    f"a signed checkpoint of size {checkpoint.size} follows entry "
                    f"{expected - 1}: entries from {checkpoint.size} on were inserted or moved",
                    index=checkpoint.size,
                    line=number,
                )
            if expected == covered:
                raise ExportInvalid(
                    f"checkpoint of size {checkpoint.size} appears twice", index=None, line=number
                )
            if checkpoint.head.encode("ascii") != prev:
                raise ExportInvalid(
                    f"does not hash to the head signed in checkpoint of size {checkpoint.size}: "
                    f"entry {expected - 1} was changed (or entries from {covered} on were "
                    "rewritten)",
                    index=expected - 1,
                    line=entry_line,
                )
            covered = expected
            checkpoints += 1
            signers.add(checkpoint.key_id)
        elif not line.strip():
            raise ExportInvalid("unexpected blank line", index=None, line=number)
        else:
            raise ExportInvalid(
                "neither an entry nor a checkpoint: entry was altered or inserted",
                index=expected,
                line=number,
            )

    if first_entry is None:
        raise ExportInvalid("the export holds no entries", index=None, line=number)
    if covered != expected:
        raise ExportInvalid(
            f"entries {covered} to {expected - 1} are not covered by a signed checkpoint "
            "(the export was truncated or extended)",
            index=covered,
            line=None,
        )
    final = json.loads(last_entry)
    if final.get("kind") != "export":
        raise ExportInvalid(
            "the export does not end with its own export entry: it was truncated",
            index=expected - 1,
            line=entry_line,
        )
    if final.get("start") != start:
        raise ExportInvalid(
            f"the export entry records start {final.get('start')!r} but the header says "
            f"{start}: entries before {start} were cut off",
            index=expected - 1,
            line=entry_line,
        )
    return ExportSummary(
        log_id=log_id,
        start=start,
        end=expected,
        checkpoints=checkpoints,
        key_ids=tuple(sorted(signers)),
        pinned=pinned,
        first_time=_time_of(first_entry),
        last_time=_time_of(last_entry),
        kinds={k.decode("ascii", "replace"): v for k, v in kinds.items()},
    )


def _time_of(line: bytes) -> str:
    at = line.find(_TIME_MARK)
    value = line[at + len(_TIME_MARK) : line.find(b'"', at + len(_TIME_MARK))]
    text = value.decode("ascii", "replace")
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return "?"
    return text
