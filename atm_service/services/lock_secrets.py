"""The secrets of lock control, loaded from the settings and kept in memory only.

- the **master key**, which encrypts every lock key in the database
  (``ATM_LOCK_MASTER_KEY_FILE``, a file made by ``atm-lock new-master-key``, or
  its text in ``ATM_LOCK_MASTER_KEY``), and while it is being rotated the
  previous ones (``ATM_LOCK_PREVIOUS_MASTER_KEY_FILES``), which only decrypt:
  new records are sealed under the current key, and
  :func:`rewrap_lock_keys` (``atm-service rewrap-lock-keys``) re-seals the old
  ones, after which the previous keys can be dropped;
- the **checkpoint signing key** of the lock-access log, Ed25519
  (``ATM_LOCK_LOG_SIGNING_KEY_FILE``, a PEM file made by ``atm-lock
  new-signing-key``, or the PEM text in ``ATM_LOCK_LOG_SIGNING_KEY``).

Neither reaches the database, a log line or a response. Without them every
lock operation is refused with :class:`~atm_service.errors.NotConfigured` (503),
whose message says which setting is missing, never a key.
"""

from __future__ import annotations

import threading
from datetime import datetime
from pathlib import Path

from sqlmodel import Session

from atm_service.config import Settings
from atm_service.errors import NotConfigured
from atm_service.services.lock_stores import DbKeyStore, DbLogStore
from lockctl import (
    AuditLog,
    CheckpointSigner,
    KeyDecryptionError,
    KeyVault,
    LockControl,
    LockCtlError,
    LockKey,
    LockPolicy,
    MasterKey,
    MasterKeyError,
    MasterKeyRing,
    SigningKeyError,
)


class ServiceVault(KeyVault):
    """The key vault, with its key errors told as the service's: a record sealed under a
    master key that is not loaded, or one that fails authentication, is a 503 that says
    what to configure, never a traceback."""

    def _translated(self, exc: LockCtlError) -> NotConfigured:
        if isinstance(exc, MasterKeyError):
            return NotConfigured(
                f"A lock key is sealed under a master key the service has not loaded ({exc}); "
                "add the previous master key file to ATM_LOCK_PREVIOUS_MASTER_KEY_FILES, or "
                "finish the rotation with `atm-service rewrap-lock-keys`."
            )
        return NotConfigured(f"A lock key cannot be read: {exc}.")

    def create(self, lock_id: str, *, now: datetime) -> LockKey:
        try:
            return super().create(lock_id, now=now)
        except (MasterKeyError, KeyDecryptionError) as exc:
            raise self._translated(exc) from None

    def active(self, lock_id: str) -> LockKey:
        try:
            return super().active(lock_id)
        except (MasterKeyError, KeyDecryptionError) as exc:
            raise self._translated(exc) from None

    def get(self, lock_id: str, version: int) -> LockKey:
        try:
            return super().get(lock_id, version)
        except (MasterKeyError, KeyDecryptionError) as exc:
            raise self._translated(exc) from None

    def rewrap(self, *, lock_id: str | None = None) -> int:
        try:
            return super().rewrap(lock_id=lock_id)
        except (MasterKeyError, KeyDecryptionError) as exc:
            raise self._translated(exc) from None


class LockSecrets:
    """Loads the master key and the signing key on first use; hands out the vault and log."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._master: MasterKeyRing | None = None
        self._signer: CheckpointSigner | None = None

    @property
    def log_id(self) -> str:
        return self.settings.lock_log_id

    def master_key(self) -> MasterKey:
        """The current master key, which seals every new record."""
        return self.master_ring().primary

    def master_ring(self) -> MasterKeyRing:
        """The current master key, then the previous ones that still decrypt."""
        with self._lock:
            if self._master is None:
                primary = _load_master(self.settings)
                older = _load_previous(self.settings)
                self._master = MasterKeyRing(
                    primary, *[key for key in older if key.key_id != primary.key_id]
                )
            return self._master

    def signer(self) -> CheckpointSigner:
        with self._lock:
            if self._signer is None:
                self._signer = _load_signer(self.settings)
            return self._signer

    def check(self) -> None:
        """Refuse at once when lock control is not configured."""
        self.master_key()
        self.signer()

    def vault(self, session: Session) -> ServiceVault:
        return ServiceVault(DbKeyStore(session), self.master_ring())

    def audit_log(self, session: Session) -> AuditLog:
        return AuditLog(
            DbLogStore(session),
            self.signer(),
            log_id=self.log_id,
            checkpoint_every=self.settings.lock_checkpoint_every,
        )

    @staticmethod
    def control(policy: dict[str, object]) -> LockControl:
        return LockControl(LockPolicy.from_dict(policy))


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise NotConfigured(
            f"Lock control cannot read its {what} file {path}: {exc.strerror or exc}."
        ) from None


def _load_master(settings: Settings) -> MasterKey:
    try:
        if settings.lock_master_key_file is not None:
            return MasterKey.from_file(settings.lock_master_key_file)
        if settings.lock_master_key is not None:
            return MasterKey.parse(
                settings.lock_master_key.get_secret_value(), source="ATM_LOCK_MASTER_KEY"
            )
    except MasterKeyError as exc:
        raise NotConfigured(f"Lock control's master key is unusable: {exc}.") from None
    raise NotConfigured(
        "Lock control is not configured: set ATM_LOCK_MASTER_KEY_FILE to a master key file "
        "(`atm-lock new-master-key`) or put the key in ATM_LOCK_MASTER_KEY."
    )


def _load_previous(settings: Settings) -> list[MasterKey]:
    keys: list[MasterKey] = []
    for path in settings.lock_previous_master_key_files:
        try:
            keys.append(MasterKey.from_file(path))
        except MasterKeyError as exc:
            raise NotConfigured(f"A previous lock master key is unusable: {exc}.") from None
    return keys


def rewrap_lock_keys(session: Session, *, secrets: LockSecrets) -> int:
    """Re-seal every lock key not under the current master key; how many were re-sealed.

    One transaction: either every record is under the current key afterwards, or none
    changed. Then ``ATM_LOCK_PREVIOUS_MASTER_KEY_FILES`` can be emptied.
    """
    count = secrets.vault(session).rewrap()
    session.commit()
    return count


def _load_signer(settings: Settings) -> CheckpointSigner:
    data: bytes | None = None
    source = ""
    if settings.lock_log_signing_key_file is not None:
        data = _read(settings.lock_log_signing_key_file, "log signing key")
        source = f"signing key file {settings.lock_log_signing_key_file}"
    elif settings.lock_log_signing_key is not None:
        data = settings.lock_log_signing_key.get_secret_value().encode()
        source = "ATM_LOCK_LOG_SIGNING_KEY"
    if data is None:
        raise NotConfigured(
            "Lock control is not configured: set ATM_LOCK_LOG_SIGNING_KEY_FILE to the lock-access "
            "log's Ed25519 key (`atm-lock new-signing-key`) or put the PEM in "
            "ATM_LOCK_LOG_SIGNING_KEY."
        )
    try:
        return CheckpointSigner.from_pem(data, source=source)
    except (SigningKeyError, LockCtlError) as exc:
        raise NotConfigured(f"Lock control's log signing key is unusable: {exc}.") from None
