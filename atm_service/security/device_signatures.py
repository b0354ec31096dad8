"""Verification of the agents' request signatures (scheme ``ATM-ED25519-V1``).

The scheme is specified, with a test vector, in ``docs/ingest-api.md``; the
agent signs with its own implementation (the service does not import the
agent), and both are tested against that vector. Pure functions: parsing the
headers, building the canonical string, verifying the Ed25519 signature. Key
lookup, clock skew and nonce replay are the business of
:mod:`atm_service.services.device_auth`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

SCHEME = "ATM-ED25519-V1"
HEADER_KEY_ID = "ATM-Key-Id"
HEADER_TIMESTAMP = "ATM-Timestamp"
HEADER_NONCE = "ATM-Nonce"
HEADER_SIGNATURE = "ATM-Signature"
HEADERS = (HEADER_KEY_ID, HEADER_TIMESTAMP, HEADER_NONCE, HEADER_SIGNATURE)

_KEY_ID = re.compile(r"^[0-9a-f]{32}$")
_TIMESTAMP = re.compile(r"^[0-9]{1,12}$")
_NONCE = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
_SIGNATURE = re.compile(r"^[A-Za-z0-9_-]{86}$")


class SignatureError(Exception):
    """The request's signature headers are missing, malformed or do not verify."""


@dataclass(frozen=True)
class SignedHeaders:
    key_id: str
    timestamp: int
    nonce: str
    signature: bytes


def key_id_of(public_key: bytes) -> str:
    """Hex of the first 16 bytes of SHA-256 over the raw 32-byte public key."""
    return hashlib.sha256(public_key).hexdigest()[:32]


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parse_headers(headers: Mapping[str, str]) -> SignedHeaders:
    """The four signature headers, checked for shape; raises :class:`SignatureError`."""
    values = {name: headers.get(name) for name in HEADERS}
    missing = [name for name, value in values.items() if not value]
    if len(missing) == len(HEADERS):
        raise SignatureError(
            "Unsigned request: device routes need the ATM-Key-Id, ATM-Timestamp, ATM-Nonce "
            "and ATM-Signature headers (see docs/ingest-api.md)."
        )
    if missing:
        raise SignatureError(f"Incomplete signature: missing {', '.join(missing)}.")
    key_id = str(values[HEADER_KEY_ID])
    timestamp = str(values[HEADER_TIMESTAMP])
    nonce = str(values[HEADER_NONCE])
    signature = str(values[HEADER_SIGNATURE])
    if not _KEY_ID.match(key_id):
        raise SignatureError("ATM-Key-Id must be 32 lower-case hex digits.")
    if not _TIMESTAMP.match(timestamp):
        raise SignatureError("ATM-Timestamp must be Unix seconds, in decimal.")
    if not _NONCE.match(nonce):
        raise SignatureError("ATM-Nonce must be 16 to 64 characters of the base64url alphabet.")
    if not _SIGNATURE.match(signature):
        raise SignatureError("ATM-Signature must be 64 bytes in base64url without padding.")
    try:
        raw = b64url_decode(signature)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError("ATM-Signature is not base64url.") from exc
    return SignedHeaders(key_id=key_id, timestamp=int(timestamp), nonce=nonce, signature=raw)


def canonical_string(
    *, method: str, target: str, body_sha256: str, timestamp: int, nonce: str, key_id: str
) -> bytes:
    """The bytes the agent signed: seven lines joined by LF, no trailing LF."""
    return "\n".join(
        (SCHEME, method.upper(), target, body_sha256, str(timestamp), nonce, key_id)
    ).encode("ascii")


def verify(
    *, public_key: bytes, signed: SignedHeaders, method: str, target: str, body: bytes
) -> None:
    """Raise :class:`SignatureError` unless ``signed.signature`` is good for this request."""
    message = canonical_string(
        method=method,
        target=target,
        body_sha256=hashlib.sha256(body).hexdigest(),
        timestamp=signed.timestamp,
        nonce=signed.nonce,
        key_id=signed.key_id,
    )
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signed.signature, message)
    except (InvalidSignature, ValueError) as exc:
        raise SignatureError(
            "Bad signature: it does not verify with the enrolled key over this method, "
            "path, body, timestamp and nonce."
        ) from exc
