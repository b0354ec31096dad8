"""The device's Ed25519 key and the request signature every upload carries.

The scheme (``ATM-ED25519-V1``, specified with a test vector in
``docs/ingest-api.md``) signs one canonical string::

    ATM-ED25519-V1
    <METHOD>
    <request target: raw path, then "?" and the raw query when there is one>
    <lower-case hex SHA-256 of the body bytes (of b"" when there is none)>
    <timestamp: Unix seconds, decimal>
    <nonce>
    <key id>

lines joined by a single LF, without a trailing one, encoded as ASCII. The
request carries the parts in headers ``ATM-Key-Id``, ``ATM-Timestamp``,
``ATM-Nonce`` and ``ATM-Signature`` (base64url, no padding). The key id is the
first 16 bytes of SHA-256 over the raw 32-byte public key, in hex.

The key file is the private key as unencrypted PKCS #8 PEM (what
``openssl genpkey -algorithm ed25519`` writes), created with mode 0600; a key
file that others may read is refused, as ssh does.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import secrets
import stat
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from device_agent.errors import KeyFileError

SCHEME = "ATM-ED25519-V1"
HEADER_KEY_ID = "ATM-Key-Id"
HEADER_TIMESTAMP = "ATM-Timestamp"
HEADER_NONCE = "ATM-Nonce"
HEADER_SIGNATURE = "ATM-Signature"

NONCE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")

Clock = Callable[[], datetime]
NonceSource = Callable[[], str]


def b64url(data: bytes) -> str:
    """Base64url without padding (RFC 4648 section 5)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def key_id_of(public_key: bytes) -> str:
    """The key id: hex of the first 16 bytes of SHA-256 over the raw public key."""
    if len(public_key) != 32:
        raise ValueError("an Ed25519 public key has 32 bytes")
    return hashlib.sha256(public_key).hexdigest()[:32]


def canonical_string(
    *, method: str, target: str, body: bytes, timestamp: int, nonce: str, key_id: str
) -> bytes:
    """The exact bytes that are signed for one request."""
    if not NONCE_PATTERN.match(nonce):
        raise ValueError("a nonce is 16 to 64 characters of the base64url alphabet")
    if not target.startswith("/"):
        raise ValueError("the request target is a path starting with '/'")
    lines = (
        SCHEME,
        method.upper(),
        target,
        hashlib.sha256(body).hexdigest(),
        str(timestamp),
        nonce,
        key_id,
    )
    return "\n".join(lines).encode("ascii")


def new_nonce() -> str:
    """16 random bytes, base64url: 22 characters."""
    return b64url(secrets.token_bytes(16))


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class DeviceKey:
    """The ATM's Ed25519 key pair."""

    private_key: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> DeviceKey:
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> DeviceKey:
        """The key whose 32-byte private seed is ``seed`` (test vectors use this)."""
        return cls(Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )

    @property
    def public_key_b64(self) -> str:
        """The public key as enrolled at the service: base64url of the raw 32 bytes."""
        return b64url(self.public_key)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)

    def signature_headers(
        self, *, method: str, target: str, body: bytes, timestamp: int, nonce: str
    ) -> dict[str, str]:
        """The four headers that authenticate one request."""
        message = canonical_string(
            method=method,
            target=target,
            body=body,
            timestamp=timestamp,
            nonce=nonce,
            key_id=self.key_id,
        )
        return {
            HEADER_KEY_ID: self.key_id,
            HEADER_TIMESTAMP: str(timestamp),
            HEADER_NONCE: nonce,
            HEADER_SIGNATURE: b64url(self.sign(message)),
        }

    def pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )


def write_key_file(path: Path, key: DeviceKey, *, overwrite: bool = False) -> None:
    """Write ``key`` to ``path`` with mode 0600; the file never exists with wider permissions."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        descriptor = os.open(path, flags, 0o600)
    except FileExistsError:
        raise KeyFileError(
            f"{path} already exists; a device key is not replaced by accident "
            "(use --force to overwrite, then enrol the new public key)"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(descriptor, "wb") as handle:
        os.fchmod(handle.fileno(), 0o600)
        handle.write(key.pem())
        handle.flush()
        os.fsync(handle.fileno())


def load_key_file(path: Path) -> DeviceKey:
    """Read the device key, refusing a file that group or others may read."""
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(
            f"no key file at {path}; create one with `atm-agent keygen --key {path}`"
        ) from None
    except OSError as exc:
        raise KeyFileError(f"cannot read the key file {path}: {exc.strerror}") from exc
    if os.name == "posix" and stat.S_IMODE(mode) & 0o077:
        raise KeyFileError(
            f"the key file {path} is readable by others (mode {stat.S_IMODE(mode):04o}); "
            f"run `chmod 600 {path}`"
        )
    try:
        private_key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise KeyFileError(
            f"{path} is not an unencrypted PEM private key ({exc.__class__.__name__})"
        ) from exc
    if not isinstance(private_key, Ed25519PrivateKey):
        raise KeyFileError(f"{path} holds a {type(private_key).__name__}, not an Ed25519 key")
    return DeviceKey(private_key)


class RequestSigner(httpx.Auth):
    """Signs every request an ``httpx`` client sends, afresh on every attempt."""

    requires_request_body = True

    def __init__(
        self, key: DeviceKey, *, clock: Clock = system_clock, nonces: NonceSource = new_nonce
    ) -> None:
        self.key = key
        self.clock = clock
        self.nonces = nonces

    def headers_for(self, request: httpx.Request) -> Mapping[str, str]:
        return self.key.signature_headers(
            method=request.method,
            target=request.url.raw_path.decode("ascii"),
            body=request.content,
            timestamp=int(self.clock().timestamp()),
            nonce=self.nonces(),
        )

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers.update(self.headers_for(request))
        yield request
