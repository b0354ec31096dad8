"""Central-control safe locks: one-time codes, close seals, the key vault and the
tamper-evident lock-access log.

The safe API:

- :class:`LockControl` (service side): ``provision``, ``issue``, ``issue_dual``,
  ``issue_resync``, ``verify_seal``, ``force_close`` over a :class:`LockChain`
  the caller persists;
- :class:`LockFirmware` (lock side): ``enter`` a code, ``relock`` for the seal,
  over a :class:`LockState` the lock persists;
- :class:`KeyVault` over a :class:`KeyStore`, sealed by a :class:`MasterKey`;
- :class:`AuditLog` over a :class:`LogStore`, signed by a :class:`CheckpointSigner`;
  :func:`verify_export` checks an export offline.

The algorithm is specified in ``docs/otc.md``, the log in ``docs/lock-log.md``.
Nothing here reads the clock, the environment or the disk on its own: time is
passed in, randomness and storage are injected.
"""

from lockctl.auditlog import (
    AuditLog,
    EntryKind,
    FileLogStore,
    LogRecord,
    LogStore,
    MemoryLogStore,
)
from lockctl.codes import Operation
from lockctl.control import (
    ChainStatus,
    CodeKind,
    ForceClosed,
    Issuance,
    IssuedCode,
    LockChain,
    LockControl,
    Outstanding,
    SealConfirmed,
    mismatch_fields,
)
from lockctl.errors import (
    ChainBlocked,
    ChainStateError,
    DualControlRequired,
    ExportInvalid,
    InvalidArgument,
    InvalidCode,
    InvalidSeal,
    KeyDecryptionError,
    KeyExists,
    KeyNotFound,
    LockCtlError,
    LogConflict,
    LogError,
    MasterKeyError,
    NothingOutstanding,
    NotOpen,
    ProvisioningError,
    SealLockout,
    SealOutstanding,
    SigningKeyError,
    VaultError,
    WindowUnavailable,
)
from lockctl.export import ExportSummary, verify_export
from lockctl.firmware import (
    Entry,
    EventKind,
    LockEvent,
    LockFirmware,
    LockState,
    LockStatus,
    Outcome,
    Relock,
)
from lockctl.keys import LockKey
from lockctl.odds import GuessingOdds
from lockctl.policy import LockPolicy, TimeWindow
from lockctl.provisioning import Provisioning
from lockctl.signing import CheckpointSigner, PublicKeys, SignedCheckpoint
from lockctl.trail import Discrepancy, compare_trail, entry_for_event
from lockctl.vault import (
    EncryptedKeyRecord,
    JsonFileKeyStore,
    KeyState,
    KeyStore,
    KeyVault,
    MasterKey,
    MasterKeyRing,
    MemoryKeyStore,
)

__version__ = "0.1.0"

__all__ = [
    "AuditLog",
    "ChainBlocked",
    "ChainStateError",
    "ChainStatus",
    "CheckpointSigner",
    "CodeKind",
    "Discrepancy",
    "DualControlRequired",
    "EncryptedKeyRecord",
    "Entry",
    "EntryKind",
    "EventKind",
    "ExportInvalid",
    "ExportSummary",
    "FileLogStore",
    "ForceClosed",
    "GuessingOdds",
    "InvalidArgument",
    "InvalidCode",
    "InvalidSeal",
    "Issuance",
    "IssuedCode",
    "JsonFileKeyStore",
    "KeyDecryptionError",
    "KeyExists",
    "KeyNotFound",
    "KeyState",
    "KeyStore",
    "KeyVault",
    "LockChain",
    "LockControl",
    "LockCtlError",
    "LockEvent",
    "LockFirmware",
    "LockKey",
    "LockPolicy",
    "LockState",
    "LockStatus",
    "LogConflict",
    "LogError",
    "LogRecord",
    "LogStore",
    "MasterKey",
    "MasterKeyError",
    "MasterKeyRing",
    "MemoryKeyStore",
    "MemoryLogStore",
    "NotOpen",
    "NothingOutstanding",
    "Operation",
    "Outcome",
    "Outstanding",
    "Provisioning",
    "ProvisioningError",
    "PublicKeys",
    "Relock",
    "SealConfirmed",
    "SealLockout",
    "SealOutstanding",
    "SignedCheckpoint",
    "SigningKeyError",
    "TimeWindow",
    "VaultError",
    "WindowUnavailable",
    "__version__",
    "compare_trail",
    "entry_for_event",
    "mismatch_fields",
    "verify_export",
]
