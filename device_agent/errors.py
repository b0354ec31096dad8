"""The agent's errors: one tree, so callers can catch a whole family.

    AgentError
    ├── KeyFileError              the device key file is missing, malformed or readable by others
    ├── SpoolError                the local spool refused or cannot do something
    │   ├── JournalGap            bytes offered past the end of what is stored
    │   ├── JournalConflict       bytes offered for a stored range differ from what is stored
    │   ├── InvalidRecord         a cash-unit, status or event record that cannot be stored
    │   └── SpoolPruned           a resend needs bytes or records already pruned
    ├── UploadError               talking to the central service failed
    │   ├── ServiceUnreachable    no HTTP answer at all (connect, timeout, reset); retryable
    │   ├── ServiceUnavailable    5xx or 429; retryable, perhaps after ``retry_after``
    │   ├── RequestNotAuthentic   401: signature, clock skew or nonce refused; retryable
    │   ├── KeyNotAccepted        403: the key is not enrolled for this ATM, or revoked
    │   ├── OffsetMismatch        409: the service expects another journal offset or sequence
    │   ├── BatchTooLarge         413: the service wants smaller requests
    │   └── UploadRejected        any other refusal (4xx); not retried for the same data
    └── LinkUnavailable           the serial link cannot be started

Foreign errors (``httpx``, ``sqlite3``, ``cryptography``) are translated once,
where they happen, with ``raise ... from exc``.
"""

from __future__ import annotations


class AgentError(Exception):
    """Base of every error the agent raises on purpose."""


class KeyFileError(AgentError):
    """The device key file cannot be used."""


class SpoolError(AgentError):
    """The spool refused an operation, or its file cannot be used."""


class JournalGap(SpoolError):
    """Bytes were offered past the end of the stored journal: earlier bytes are missing."""

    def __init__(self, name: str, offset: int, expected: int) -> None:
        super().__init__(
            f"journal {name}: bytes offered at offset {offset}, but only {expected} bytes are "
            f"stored; send from offset {expected}"
        )
        self.name = name
        self.offset = offset
        self.expected = expected


class JournalConflict(SpoolError):
    """Bytes offered for an already stored range differ from the stored ones."""

    def __init__(self, name: str, offset: int, position: int) -> None:
        super().__init__(
            f"journal {name}: bytes offered at offset {offset} differ from the stored bytes "
            f"at offset {position}; a journal only grows and is never rewritten"
        )
        self.name = name
        self.offset = offset
        self.position = position


class InvalidRecord(SpoolError):
    """A record the spool will not store (wrong shape, not JSON, too large)."""


class SpoolPruned(SpoolError):
    """A resend was asked for data that was acknowledged earlier and pruned since."""


class UploadError(AgentError):
    """An upload or heartbeat did not succeed."""

    retryable = False


class ServiceUnreachable(UploadError):
    retryable = True


class ServiceUnavailable(UploadError):
    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class RequestNotAuthentic(UploadError):
    """401: usually the agent's clock is off; the next attempt is signed anew."""

    retryable = True


class KeyNotAccepted(UploadError):
    """403: an administrator must enrol this key for the ATM (or it was revoked)."""

    retryable = True


class OffsetMismatch(UploadError):
    """409: the service holds a different amount of a stream than the request assumed."""

    def __init__(self, message: str, *, expected: int | None, conflict: bool) -> None:
        super().__init__(message)
        self.expected = expected
        self.conflict = conflict


class BatchTooLarge(UploadError):
    retryable = True


class UploadRejected(UploadError):
    """The service refused the data itself; sending it again would not help."""


class LinkUnavailable(AgentError):
    """The serial link to the device cannot be started."""
