"""Random tokens and their HMAC signatures, for session and CSRF cookies.

A cookie value is ``<token>.<signature>``: the token is 32 random bytes
(base64url), the signature an HMAC-SHA256 under the service's secret key with a
purpose label, so a token signed for one purpose is useless for another. The
database keeps only SHA-256 digests of session tokens.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def _signature(secret: bytes, purpose: str, token: str) -> str:
    mac = hmac.new(secret, f"{purpose}\x00{token}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def sign(secret: bytes, purpose: str, token: str) -> str:
    return f"{token}.{_signature(secret, purpose, token)}"


def unsign(secret: bytes, purpose: str, value: str) -> str | None:
    """The token inside a signed value, or ``None`` when the signature is wrong."""
    token, dot, signature = value.rpartition(".")
    if not dot or not token or len(value) > 256:
        return None
    if hmac.compare_digest(signature, _signature(secret, purpose, token)):
        return token
    return None


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
