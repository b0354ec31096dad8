"""The OTC algorithm: one-time codes, close seals and their chain (``docs/otc.md``).

These are the primitives both sides share: the service issues codes and checks
seals with them, the lock (firmware or simulator) checks codes and makes seals
with them, offline, from its own copy of the 256-bit lock key.

Every value is ``HMAC-SHA256(lock_key, message)`` where the message starts with
a purpose label and encodes its fields unambiguously (length-prefixed strings
and bytes, 8-byte big-endian integers). Eight decimal digits are the first 8
bytes of the MAC, as a big-endian integer, modulo 10^8.

- code: bound to lock, user, operation, time window and the previous close seal;
- close seal: bound to lock, users, operation, window, previous seal and duress;
  the lock shows its digits after relocking, and its full 32 bytes chain into
  the next code;
- resync code and seal: an audited restart of the chain that needs no old state;
- duress variant: the code with its last digit plus one (mod 10).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum

from lockctl import validation
from lockctl.errors import InvalidArgument, InvalidCode

DIGITS = 8
MODULUS = 10**DIGITS
SEAL_VALUE_BYTES = 32

LABEL_CODE = b"atm-lock/otc/v1"
LABEL_SEAL = b"atm-lock/seal/v1"
LABEL_RESYNC = b"atm-lock/resync/v1"
LABEL_RESYNC_SEAL = b"atm-lock/resync-seal/v1"
LABEL_INITIAL = b"atm-lock/init/v1"
LABEL_CODE_TAG = b"atm-lock/code-tag/v1"
LABEL_CHAIN_TAG = b"atm-lock/chain-tag/v1"


class Operation(StrEnum):
    """What an opening is for; bound into its code and seal."""

    OPEN = "open"  # an ordinary opening of the safe
    FLM = "flm"  # first-line maintenance
    ROUTE = "route"  # cash-in-transit route (replenishment)
    BANK = "bank"  # bank staff


def _field(data: bytes) -> bytes:
    if len(data) > 255:
        raise InvalidArgument("a message field is longer than 255 bytes")
    return bytes((len(data),)) + data


def _u64(number: int) -> bytes:
    return number.to_bytes(8, "big")


def _mac(key: bytes, message: bytes) -> bytes:
    return hmac.new(validation.key_bytes(key), message, hashlib.sha256).digest()


def digits(mac: bytes) -> str:
    """Eight decimal digits from a MAC: its first 8 bytes, big-endian, modulo 10^8."""
    return f"{int.from_bytes(mac[:8], 'big') % MODULUS:0{DIGITS}d}"


def _operation(value: object) -> Operation:
    try:
        return Operation(str(value))
    except ValueError:
        names = ", ".join(op.value for op in Operation)
        raise InvalidArgument(f"operation must be one of {names}, got {value!r}") from None


@dataclass(frozen=True)
class CodeContext:
    """Everything an opening code is bound to."""

    lock_id: str
    user: int
    operation: Operation
    window: int
    previous_seal: bytes = field(repr=False)

    def __post_init__(self) -> None:
        validation.lock_id(self.lock_id)
        validation.user(self.user)
        object.__setattr__(self, "operation", _operation(self.operation))
        validation.non_negative(self.window, "window")
        validation.seal_bytes(self.previous_seal, "previous_seal")

    def message(self) -> bytes:
        return b"".join(
            (
                _field(LABEL_CODE),
                _field(self.lock_id.encode("ascii")),
                _u64(self.user),
                _field(self.operation.value.encode("ascii")),
                _u64(self.window),
                _field(self.previous_seal),
            )
        )


@dataclass(frozen=True)
class SealContext:
    """Everything a close seal is bound to. ``users`` are kept in ascending order."""

    lock_id: str
    users: tuple[int, ...]
    operation: Operation
    window: int
    previous_seal: bytes = field(repr=False)
    duress: bool = False

    def __post_init__(self) -> None:
        validation.lock_id(self.lock_id)
        users = tuple(sorted(validation.user(u, "users") for u in self.users))
        if not 1 <= len(users) <= 2 or len(set(users)) != len(users):
            raise InvalidArgument(f"users must be one user or two different users, got {users}")
        object.__setattr__(self, "users", users)
        object.__setattr__(self, "operation", _operation(self.operation))
        validation.non_negative(self.window, "window")
        validation.seal_bytes(self.previous_seal, "previous_seal")
        if not isinstance(self.duress, bool):
            raise InvalidArgument(f"duress must be a bool, got {self.duress!r}")

    def message(self) -> bytes:
        return b"".join(
            (
                _field(LABEL_SEAL),
                _field(self.lock_id.encode("ascii")),
                _u64(len(self.users)),
                *(_u64(u) for u in self.users),
                _field(self.operation.value.encode("ascii")),
                _u64(self.window),
                _field(self.previous_seal),
                _u64(1 if self.duress else 0),
            )
        )


@dataclass(frozen=True)
class ResyncContext:
    """A resynchronisation: bound to lock, user and window only, never to old state."""

    lock_id: str
    user: int
    window: int

    def __post_init__(self) -> None:
        validation.lock_id(self.lock_id)
        validation.user(self.user)
        validation.non_negative(self.window, "window")

    def _fields(self) -> bytes:
        return _field(self.lock_id.encode("ascii")) + _u64(self.user) + _u64(self.window)

    def message(self) -> bytes:
        return _field(LABEL_RESYNC) + self._fields()

    def seal_message(self) -> bytes:
        return _field(LABEL_RESYNC_SEAL) + self._fields()


def opening_code(key: bytes, context: CodeContext) -> str:
    """The eight-digit code that opens the lock for ``context``."""
    return digits(_mac(key, context.message()))


def resync_code(key: bytes, context: ResyncContext) -> str:
    """The eight-digit code that restarts the lock's seal chain (it does not open)."""
    return digits(_mac(key, context.message()))


def seal_value(key: bytes, context: SealContext) -> bytes:
    """The 32-byte close seal the lock computes when it relocks."""
    return _mac(key, context.message())


def resync_seal_value(key: bytes, context: ResyncContext) -> bytes:
    """The 32-byte seal a lock takes (and shows) after accepting a resync code."""
    return _mac(key, context.seal_message())


def initial_seal_value(key: bytes, lock_id: str, key_version: int) -> bytes:
    """The chain's first value, for a lock just provisioned with this key version."""
    message = (
        _field(LABEL_INITIAL)
        + _field(validation.lock_id(lock_id).encode("ascii"))
        + _u64(validation.in_range(key_version, "key_version", 1, 2**32))
    )
    return _mac(key, message)


def seal_digits(value: bytes) -> str:
    """The eight digits the lock displays for a seal value."""
    return digits(validation.seal_bytes(value, "seal value"))


def duress_code(code: str) -> str:
    """The duress variant of a code: its last digit plus one, modulo 10."""
    code = normalize(code)
    return code[:-1] + str((int(code[-1]) + 1) % 10)


def normalize(text: str) -> str:
    """A code or seal as typed (spaces and hyphens allowed) as its eight digits.

    Raises :class:`InvalidCode` for anything else; the message does not echo it.
    """
    if not isinstance(text, str):
        raise InvalidCode("a code or seal must be text")
    compact = text.replace(" ", "").replace("-", "")
    if len(compact) != DIGITS or not compact.isascii() or not compact.isdigit():
        raise InvalidCode(f"a code or seal is exactly {DIGITS} digits")
    return compact


def same_digits(expected: str, given: str) -> bool:
    """Constant-time comparison of two digit strings."""
    return hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))


def verify_opening_code(key: bytes, context: CodeContext, code: str) -> None:
    """Raise :class:`InvalidCode` unless ``code`` opens for ``context`` (duress excluded).

    The comparison is constant-time; the error does not say how close the code was.
    """
    if not same_digits(opening_code(key, context), normalize(code)):
        raise InvalidCode("the code does not verify for this lock, user, operation and window")


def code_tag(key: bytes, context: CodeContext | ResyncContext) -> str:
    """What proves which code was issued, without revealing it: 16 bytes of
    ``HMAC(key, label || code message)``, hex. A key holder recomputes it."""
    return _mac(key, _field(LABEL_CODE_TAG) + context.message())[:16].hex()


def chain_tag(value: bytes) -> str:
    """A public name for a seal value (16 bytes of SHA-256, hex): links each issuance in
    the log to the seal it was chained to, without disclosing the value."""
    data = _field(LABEL_CHAIN_TAG) + _field(validation.seal_bytes(value, "seal value"))
    return hashlib.sha256(data).digest()[:16].hex()
