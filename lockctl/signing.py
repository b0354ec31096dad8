"""Ed25519 keys for the lock-access log's checkpoints, and the checkpoint itself.

A checkpoint states "the log ``log`` had ``size`` entries and the last one hashed
to ``head`` at ``time``", signed by the service's checkpoint key. The signed
message is ``SIGNATURE_CONTEXT`` followed by the canonical JSON of the body
(keys sorted, no spaces). A key's id is the first 8 bytes of the SHA-256 of its
raw 32-byte public key, in hex, so a verifier derives it and never trusts a
claimed id.

Keys are read from PEM (PKCS#8 private, SubjectPublicKeyInfo public) or from a
line ``ed25519:<base64 of the raw 32-byte public key>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from lockctl import validation
from lockctl.errors import InvalidArgument, SigningKeyError

SIGNATURE_CONTEXT = b"atm-lock-log checkpoint v1\n"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_PEM_PUBLIC = re.compile(rb"-----BEGIN PUBLIC KEY-----.+?-----END PUBLIC KEY-----", re.DOTALL)


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id_of(public: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw(public)).digest()[:8].hex()


def public_key_text(public: Ed25519PublicKey) -> str:
    """The one-line form: ``ed25519:<base64>``."""
    return "ed25519:" + base64.b64encode(_raw(public)).decode("ascii")


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


class CheckpointSigner:
    """The service's private checkpoint key. Never printed or logged."""

    __slots__ = ("_private", "key_id", "public_key")

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        if not isinstance(private_key, Ed25519PrivateKey):
            raise SigningKeyError("a checkpoint signing key must be an Ed25519 private key")
        self._private = private_key
        self.public_key = private_key.public_key()
        self.key_id = key_id_of(self.public_key)

    @classmethod
    def generate(cls) -> CheckpointSigner:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> CheckpointSigner:
        """From the raw 32-byte private key (RFC 8032 seed); for tests and vectors."""
        try:
            return cls(Ed25519PrivateKey.from_private_bytes(seed))
        except ValueError:
            raise SigningKeyError("an Ed25519 seed is 32 bytes") from None

    @classmethod
    def from_pem(cls, data: bytes, *, source: str = "the signing key") -> CheckpointSigner:
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            raise SigningKeyError(f"{source} is not an unencrypted PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{source} is not an Ed25519 key")
        return cls(key)

    def private_pem(self) -> bytes:
        return self._private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def sign(self, checkpoint: Checkpoint) -> SignedCheckpoint:
        if checkpoint.key_id != self.key_id:
            raise SigningKeyError("the checkpoint names another key")
        return SignedCheckpoint(checkpoint, self._private.sign(checkpoint.message()))

    def __repr__(self) -> str:
        return f"CheckpointSigner(key_id={self.key_id!r})"

    def __reduce__(self) -> NoReturn:
        raise TypeError("a CheckpointSigner cannot be pickled")


class PublicKeys:
    """The checkpoint keys a verifier trusts, by derived key id."""

    def __init__(self, keys: Iterable[Ed25519PublicKey]) -> None:
        self._keys = {key_id_of(key): key for key in keys}
        if not self._keys:
            raise SigningKeyError("no public key given")

    @classmethod
    def parse(cls, data: bytes, *, source: str = "the public key") -> PublicKeys:
        """Every key in ``data``: PEM blocks and/or ``ed25519:<base64>`` lines."""
        keys: list[Ed25519PublicKey] = []
        for block in _PEM_PUBLIC.findall(data):
            try:
                key = serialization.load_pem_public_key(block)
            except ValueError:
                raise SigningKeyError(f"{source} holds a malformed PEM public key") from None
            if not isinstance(key, Ed25519PublicKey):
                raise SigningKeyError(f"{source} holds a public key that is not Ed25519")
            keys.append(key)
        rest = _PEM_PUBLIC.sub(b"", data)
        for raw_line in rest.splitlines():
            line = raw_line.strip()
            if not line or line.startswith(b"#"):
                continue
            keys.append(parse_public_key_text(line.decode("ascii", "replace"), source=source))
        if not keys:
            raise SigningKeyError(f"{source} holds no Ed25519 public key")
        return cls(keys)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(sorted(self._keys))

    def get(self, key_id: str) -> Ed25519PublicKey | None:
        return self._keys.get(key_id)

    def __iter__(self) -> Any:
        return iter(self._keys.values())


def parse_public_key_text(text: str, *, source: str = "the public key") -> Ed25519PublicKey:
    if not text.startswith("ed25519:"):
        raise SigningKeyError(f"{source}: expected a PEM public key or 'ed25519:<base64>'")
    try:
        raw = base64.b64decode(text[len("ed25519:") :], validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except (binascii.Error, ValueError):
        raise SigningKeyError(
            f"{source}: 'ed25519:' must be followed by 32 bytes in base64"
        ) from None


@dataclass(frozen=True)
class Checkpoint:
    """The log ``log_id`` had ``size`` entries; the last one hashed to ``head``."""

    log_id: str
    size: int
    head: str
    time: datetime
    key_id: str

    def __post_init__(self) -> None:
        validation.in_range(self.size, "size", 1, 2**62)
        if not isinstance(self.head, str) or not _HEX64.fullmatch(self.head):
            raise InvalidArgument("a checkpoint head is 64 lower-case hex digits")
        validation.aware(self.time, "time")

    def body(self) -> dict[str, Any]:
        return {
            "head": self.head,
            "key": self.key_id,
            "log": self.log_id,
            "size": self.size,
            "time": validation.rfc3339(self.time),
        }

    def message(self) -> bytes:
        return SIGNATURE_CONTEXT + canonical_json(self.body())


@dataclass(frozen=True)
class SignedCheckpoint:
    checkpoint: Checkpoint
    signature: bytes

    def line(self) -> bytes:
        """Its line in an export: ``{"checkpoint":{...},"signature":"<base64>"}``."""
        return canonical_json(
            {
                "checkpoint": self.checkpoint.body(),
                "signature": base64.b64encode(self.signature).decode("ascii"),
            }
        )

    @classmethod
    def from_line(cls, line: bytes) -> SignedCheckpoint:
        """Parse a checkpoint line; raises ``ValueError`` (with the reason) if malformed."""
        data = json.loads(line)
        if not isinstance(data, dict) or set(data) != {"checkpoint", "signature"}:
            raise ValueError("a checkpoint line has exactly 'checkpoint' and 'signature'")
        body = data["checkpoint"]
        if not isinstance(body, dict) or set(body) != {"head", "key", "log", "size", "time"}:
            raise ValueError("a checkpoint has exactly head, key, log, size and time")
        if not all(isinstance(body[k], str) for k in ("head", "key", "log", "time")):
            raise ValueError("checkpoint head, key, log and time are strings")
        if isinstance(body["size"], bool) or not isinstance(body["size"], int):
            raise ValueError("checkpoint size is an integer")
        try:
            signature = base64.b64decode(data["signature"], validate=True)
            checkpoint = Checkpoint(
                log_id=body["log"],
                size=body["size"],
                head=body["head"],
                time=datetime.fromisoformat(body["time"]),
                key_id=body["key"],
            )
        except (binascii.Error, TypeError, ValueError) as exc:
            raise ValueError(f"malformed checkpoint: {exc}") from None
        return cls(checkpoint, signature)

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.checkpoint.message())
        except InvalidSignature:
            return False
        return True
