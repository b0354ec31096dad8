"""The key vault: each lock's 256-bit key, encrypted at rest under a master key.

Records are AES-256-GCM ciphertexts with a random 96-bit nonce; the associated
data binds each record to its lock id, key version and master key id, so a
record copied onto another lock (or version) fails to decrypt. The master key
comes from a file or an environment variable and stays in memory only: records
name it by ``master_key_id``, an HMAC of a fixed label, never by its bytes, and
it is never logged or printed.

Storage is injected (:class:`KeyStore`): the service keeps the encrypted records
in its database, the command line in a JSON file, tests in memory.

Rotation:
- a lock key: :meth:`KeyVault.rotate` adds version n+1 as the active key and
  retires the old one, which stays readable (old log tags can be re-checked);
- the master key: put the new one first in a :class:`MasterKeyRing` with the old
  ones after it and call :meth:`KeyVault.rewrap`, which re-encrypts every record
  under the new key; then the old key can be dropped.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lockctl import validation
from lockctl.errors import (
    InvalidArgument,
    KeyDecryptionError,
    KeyExists,
    KeyNotFound,
    MasterKeyError,
    VaultError,
)
from lockctl.keys import LockKey

logger = logging.getLogger("lockctl.vault")

MASTER_KEY_PREFIX = "atm-lock-master-key:v1:"
MASTER_KEY_ENV = "ATM_LOCK_MASTER_KEY"
NONCE_BYTES = 12
RECORD_LABEL = b"atm-lock/key-record/v1"

Random = Callable[[int], bytes]


class MasterKey:
    """A 256-bit master key. Its bytes never appear in ``repr``, logs or records."""

    __slots__ = ("_aead", "_secret", "key_id")

    def __init__(self, secret: bytes) -> None:
        if not isinstance(secret, bytes) or len(secret) != validation.KEY_BYTES:
            raise MasterKeyError(f"a master key is {validation.KEY_BYTES} bytes")
        digest = hmac.new(secret, b"atm-lock/master-key-id/v1", hashlib.sha256).digest()
        self.key_id = digest[:8].hex()
        self._aead = AESGCM(secret)
        self._secret = secret

    @classmethod
    def generate(cls, random: Random = os.urandom) -> MasterKey:
        return cls(random(validation.KEY_BYTES))

    @classmethod
    def parse(cls, text: str, *, source: str = "the master key") -> MasterKey:
        """Read ``atm-lock-master-key:v1:<base64 of 32 bytes>`` (surrounding blanks ignored)."""
        text = text.strip()
        if not text.startswith(MASTER_KEY_PREFIX):
            raise MasterKeyError(f"{source} does not start with {MASTER_KEY_PREFIX!r}")
        try:
            secret = base64.b64decode(text[len(MASTER_KEY_PREFIX) :], validate=True)
        except (binascii.Error, ValueError):
            raise MasterKeyError(f"{source} is not valid base64") from None
        if len(secret) != validation.KEY_BYTES:
            raise MasterKeyError(f"{source} must hold {validation.KEY_BYTES} bytes")
        return cls(secret)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> MasterKey:
        try:
            text = Path(path).read_text(encoding="ascii")
        except FileNotFoundError:
            raise MasterKeyError(f"master key file {os.fspath(path)} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterKeyError(
                f"master key file {os.fspath(path)} cannot be read: {type(exc).__name__}"
            ) from None
        return cls.parse(text, source=f"master key file {os.fspath(path)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str], name: str = MASTER_KEY_ENV) -> MasterKey:
        value = environ.get(name)
        if not value:
            raise MasterKeyError(f"environment variable {name} is not set")
        return cls.parse(value, source=f"environment variable {name}")

    def to_text(self) -> str:
        """The key file's content (for writing a new key file, once)."""
        return MASTER_KEY_PREFIX + base64.b64encode(self._secret).decode("ascii") + "\n"

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a MasterKey cannot be pickled")

    def _seal(self, nonce: bytes, plaintext: bytes, aad: bytes) -> bytes:
        return self._aead.encrypt(nonce, plaintext, aad)

    def _open(self, nonce: bytes, ciphertext: bytes, aad: bytes) -> bytes:
        return self._aead.decrypt(nonce, ciphertext, aad)


class MasterKeyRing:
    """The master key that encrypts new records, then older ones still needed to read."""

    def __init__(self, primary: MasterKey, *older: MasterKey) -> None:
        keys = (primary, *older)
        ids = [key.key_id for key in keys]
        if len(set(ids)) != len(ids):
            raise MasterKeyError("the same master key appears twice in the ring")
        self.primary = primary
        self._by_id = {key.key_id: key for key in keys}

    def get(self, key_id: str) -> MasterKey:
        try:
            return self._by_id[key_id]
        except KeyError:
            raise MasterKeyError(
                f"no master key {key_id!r} is loaded; add the key it was sealed under to the ring"
            ) from None

    def __repr__(self) -> str:
        return f"MasterKeyRing(primary={self.primary.key_id!r}, keys={sorted(self._by_id)!r})"


class KeyState(StrEnum):
    ACTIVE = "active"
    RETIRED = "retired"


@dataclass(frozen=True)
class EncryptedKeyRecord:
    """What the store keeps for one version of a lock's key; nothing in it is secret."""

    lock_id: str
    version: int
    state: KeyState
    created_at: datetime
    master_key_id: str
    nonce: bytes
    ciphertext: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock": self.lock_id,
            "version": self.version,
            "state": self.state.value,
            "created_at": validation.rfc3339(self.created_at),
            "master_key_id": self.master_key_id,
            "nonce": base64.b64encode(self.nonce).decode("ascii"),
            "ciphertext": base64.b64encode(self.ciphertext).decode("ascii"),
        }

    @classmethod
    def from_dict(cls, data: Any) -> EncryptedKeyRecord:
        try:
            return cls(
                lock_id=validation.lock_id(data["lock"]),
                version=validation.in_range(data["version"], "version", 1, 2**32),
                state=KeyState(data["state"]),
                created_at=validation.aware(datetime.fromisoformat(data["created_at"])),
                master_key_id=str(data["master_key_id"]),
                nonce=base64.b64decode(data["nonce"], validate=True),
                ciphertext=base64.b64decode(data["ciphertext"], validate=True),
            )
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:
            raise VaultError(f"a stored key record is malformed: {exc!r}") from None


def record_aad(lock_id: str, version: int, master_key_id: str) -> bytes:
    """Associated data of a record: label, lock id, version, master key id."""
    parts = [RECORD_LABEL, lock_id.encode("ascii"), master_key_id.encode("ascii")]
    fields = b"".join(bytes((len(p),)) + p for p in parts[:2])
    return fields + version.to_bytes(8, "big") + bytes((len(parts[2]),)) + parts[2]


class KeyStore(Protocol):
    """Where encrypted key records live. One record per (lock id, version)."""

    def insert(self, record: EncryptedKeyRecord) -> None:
        """Add a record; raise :class:`KeyExists` if that lock and version exist."""

    def update(self, record: EncryptedKeyRecord) -> None:
        """Replace the record with the same lock and version; :class:`KeyNotFound` if none."""

    def get(self, lock_id: str, version: int) -> EncryptedKeyRecord | None: ...

    def versions(self, lock_id: str) -> list[EncryptedKeyRecord]:
        """The lock's records, oldest version first."""

    def records(self) -> Iterator[EncryptedKeyRecord]:
        """Every record (for rewrapping)."""


class MemoryKeyStore:
    """A :class:`KeyStore` in a dict."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, int], EncryptedKeyRecord] = {}

    def insert(self, record: EncryptedKeyRecord) -> None:
        key = (record.lock_id, record.version)
        if key in self._records:
            raise KeyExists(f"lock {record.lock_id} already has key version {record.version}")
        self._records[key] = record

    def update(self, record: EncryptedKeyRecord) -> None:
        key = (record.lock_id, record.version)
        if key not in self._records:
            raise KeyNotFound(f"lock {record.lock_id} has no key version {record.version}")
        self._records[key] = record

    def get(self, lock_id: str, version: int) -> EncryptedKeyRecord | None:
        return self._records.get((lock_id, version))

    def versions(self, lock_id: str) -> list[EncryptedKeyRecord]:
        found = [r for (lock, _), r in self._records.items() if lock == lock_id]
        return sorted(found, key=lambda r: r.version)

    def records(self) -> Iterator[EncryptedKeyRecord]:
        return iter(sorted(self._records.values(), key=lambda r: (r.lock_id, r.version)))


class JsonFileKeyStore(MemoryKeyStore):
    """A :class:`KeyStore` in one JSON file (mode 0600), rewritten atomically on change;
    for the command line and single-host installations."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        super().__init__()
        self.path = Path(path)
        if self.path.exists():
            try:
                data = json.loads(self.path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise VaultError(f"key file {self.path} cannot be read: {exc}") from None
            if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
                raise VaultError(f"key file {self.path} is not a lock key file")
            for item in data["keys"]:
                MemoryKeyStore.insert(self, EncryptedKeyRecord.from_dict(item))

    def insert(self, record: EncryptedKeyRecord) -> None:
        super().insert(record)
        self._save()

    def update(self, record: EncryptedKeyRecord) -> None:
        super().update(record)
        self._save()

    def _save(self) -> None:
        payload = {"format": "atm-lock-keys", "version": 1}
        text = json.dumps(
            {**payload, "keys": [r.to_dict() for r in self.records()]}, indent=1, sort_keys=True
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".keys-")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                out.write(text + "\n")
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


class KeyVault:
    """Create, rotate, read and rewrap lock keys over a :class:`KeyStore`."""

    def __init__(
        self,
        store: KeyStore,
        masters: MasterKeyRing | MasterKey,
        *,
        random: Random = os.urandom,
    ) -> None:
        self.store = store
        self.masters = masters if isinstance(masters, MasterKeyRing) else MasterKeyRing(masters)
        self._random = random

    def create(self, lock_id: str, *, now: datetime) -> LockKey:
        """Version 1 of a new lock's key; :class:`KeyExists` if the lock has one."""
        validation.lock_id(lock_id)
        if self.store.versions(lock_id):
            raise KeyExists(f"lock {lock_id} already has a key; rotate it instead")
        return self._add(lock_id, 1, now)

    def rotate(self, lock_id: str, *, now: datetime) -> LockKey:
        """A new active key version; the previous ones are retired but stay readable."""
        records = self.store.versions(validation.lock_id(lock_id))
        if not records:
            raise KeyNotFound(f"lock {lock_id} has no key to rotate")
        key = self._add(lock_id, records[-1].version + 1, now)
        for record in records:
            if record.state is KeyState.ACTIVE:
                self.store.update(replace(record, state=KeyState.RETIRED))
        logger.info("lock key rotated", extra={"lock_id": lock_id, "key_version": key.version})
        return key

    def active(self, lock_id: str) -> LockKey:
        """The newest active key of a lock."""
        records = self.store.versions(validation.lock_id(lock_id))
        active = [r for r in records if r.state is KeyState.ACTIVE]
        if not active:
            raise KeyNotFound(f"lock {lock_id} has no active key")
        return self._decrypt(active[-1])

    def get(self, lock_id: str, version: int) -> LockKey:
        record = self.store.get(validation.lock_id(lock_id), version)
        if record is None:
            raise KeyNotFound(f"lock {lock_id} has no key version {version}")
        return self._decrypt(record)

    def rewrap(self, *, lock_id: str | None = None) -> int:
        """Re-encrypt every record (of one lock, or all) that is not under the primary
        master key; returns how many were rewritten."""
        primary = self.masters.primary
        records = self.store.versions(lock_id) if lock_id else list(self.store.records())
        count = 0
        for record in records:
            if record.master_key_id == primary.key_id:
                continue
            key = self._decrypt(record)
            self.store.update(self._encrypt(key, record.state, record.created_at))
            count += 1
        logger.info("lock keys rewrapped", extra={"count": count, "master_key_id": primary.key_id})
        return count

    def _add(self, lock_id: str, version: int, now: datetime) -> LockKey:
        validation.aware(now)
        key = LockKey(lock_id, version, self._random(validation.KEY_BYTES))
        self.store.insert(self._encrypt(key, KeyState.ACTIVE, now))
        logger.info(
            "lock key created",
            extra={
                "lock_id": lock_id,
                "key_version": version,
                "master_key_id": self.masters.primary.key_id,
            },
        )
        return key

    def _encrypt(self, key: LockKey, state: KeyState, created_at: datetime) -> EncryptedKeyRecord:
        master = self.masters.primary
        nonce = self._random(NONCE_BYTES)
        if len(nonce) != NONCE_BYTES:
            raise InvalidArgument("the random source returned a short nonce")
        aad = record_aad(key.lock_id, key.version, master.key_id)
        return EncryptedKeyRecord(
            lock_id=key.lock_id,
            version=key.version,
            state=state,
            created_at=created_at,
            master_key_id=master.key_id,
            nonce=nonce,
            ciphertext=master._seal(nonce, key.secret, aad),
        )

    def _decrypt(self, record: EncryptedKeyRecord) -> LockKey:
        master = self.masters.get(record.master_key_id)
        aad = record_aad(record.lock_id, record.version, record.master_key_id)
        try:
            secret = master._open(record.nonce, record.ciphertext, aad)
        except (InvalidTag, ValueError):
            raise KeyDecryptionError(
                f"key record of lock {record.lock_id} version {record.version} fails "
                "authentication: it was altered, moved, or sealed under another key"
            ) from None
        return LockKey(record.lock_id, record.version, secret)
