"""Every error ``lockctl`` raises, in one tree.

Callers catch the branch they can handle; messages name what is wrong and never
carry a code, a key or a seal value that was not typed by the caller.

    LockCtlError
    ├── InvalidArgument (ValueError)   a parameter is malformed or out of range; names it
    ├── InvalidCode                    a one-time code does not verify
    ├── InvalidSeal                    a reported close seal does not match; carries the new chain
    │   └── SealLockout                too many wrong seals: blocked until an audited resync
    ├── ChainStateError                the lock's code chain does not allow this now
    │   ├── SealOutstanding            a code is out and its close seal has not come back
    │   ├── NothingOutstanding         no code is out, so there is no seal to check or close
    │   ├── ChainBlocked               wrong seals blocked the chain; only a resync helps
    │   ├── DualControlRequired        the operation needs two users (or forbids them)
    │   ├── WindowUnavailable          the requested time window cannot be used
    │   └── NotOpen                    a lock asked to relock is not open
    ├── VaultError                     the key vault
    │   ├── MasterKeyError             the master key is missing, malformed or unknown
    │   ├── KeyNotFound                no key for that lock (or version)
    │   ├── KeyExists                  the lock (or version) already has a key
    │   └── KeyDecryptionError         a stored record fails authentication (tampered?)
    ├── LogError                       the lock-access log
    │   ├── LogConflict                another writer appended first; re-read and retry
    │   ├── LogCorrupt                 the stored log does not verify
    │   └── SigningKeyError            a signing or public key is malformed
    ├── ExportInvalid                  an export fails verification: first bad entry and why
    └── ProvisioningError              a provisioning record or lock trail is malformed
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lockctl.control import LockChain


class LockCtlError(Exception):
    """Base of every error raised by ``lockctl``."""


class InvalidArgument(LockCtlError, ValueError):
    """A parameter is malformed or out of range; the message names it."""


class InvalidCode(LockCtlError):
    """A one-time code does not verify for the context it was checked against."""


class InvalidSeal(LockCtlError):
    """A reported close seal does not match what the lock must have shown.

    ``chain`` is the lock's chain state after the failure (its failure counter
    went up): persist it just as after a success.
    """

    def __init__(self, message: str, *, chain: LockChain, remaining_attempts: int) -> None:
        super().__init__(message)
        self.chain = chain
        self.remaining_attempts = remaining_attempts


class SealLockout(InvalidSeal):
    """Too many wrong seals in a row: the chain is blocked until an audited resync."""


class ChainStateError(LockCtlError):
    """The lock's code chain is not in a state that allows the request."""


class SealOutstanding(ChainStateError):
    """A code was issued and its close seal has not been reported yet."""


class NothingOutstanding(ChainStateError):
    """No code is outstanding, so there is no seal to verify and nothing to close."""


class ChainBlocked(ChainStateError):
    """Wrong seals blocked the chain; only an audited resynchronisation unblocks it."""


class DualControlRequired(ChainStateError):
    """The operation needs two different users under the lock's policy, or forbids two."""


class WindowUnavailable(ChainStateError):
    """The requested time window is over, too far ahead, or already used for a resync."""


class NotOpen(ChainStateError):
    """The lock is not open, so it cannot relock and show a seal."""


class VaultError(LockCtlError):
    """Base of the key vault's errors."""


class MasterKeyError(VaultError):
    """The master key is missing, malformed, or not the one a record was sealed under."""


class KeyNotFound(VaultError):
    """No key is stored for that lock or version."""


class KeyExists(VaultError):
    """The lock, or that version of its key, already has a key."""


class KeyDecryptionError(VaultError):
    """A stored key record fails authentication: altered, moved to another lock, or corrupt."""


class LogError(LockCtlError):
    """Base of the lock-access log's errors."""


class LogConflict(LogError):
    """Another writer appended at the same index first; re-read the head and retry."""


class LogCorrupt(LogError):
    """The stored log does not verify."""


class SigningKeyError(LogError):
    """A checkpoint signing key or public key is malformed."""


class ExportInvalid(LockCtlError):
    """An export fails verification.

    ``index`` is the first bad entry's index in the log (``None`` when the fault
    is not in an entry, e.g. the header); ``line`` is its 1-based line number in
    the file; ``reason`` says why.
    """

    def __init__(self, reason: str, *, index: int | None, line: int | None) -> None:
        where = []
        if index is not None:
            where.append(f"entry {index}")
        if line is not None:
            where.append(f"line {line}")
        prefix = f"{' at '.join(where)}: " if where else ""
        super().__init__(f"{prefix}{reason}")
        self.reason = reason
        self.index = index
        self.line = line


class ProvisioningError(LockCtlError):
    """A provisioning record or a downloaded lock trail is malformed."""
