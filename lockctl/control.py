"""The service's side: issue one-time codes, verify close seals, resync, force-close.

:class:`LockControl` is the safe API over :mod:`lockctl.codes`. It keeps no
state: each call takes the lock's :class:`LockChain` (the last confirmed seal,
the code that is out, seal failures) and returns the next one, which the caller
persists in the same transaction as the log entry describing what happened.

The chain enforces what the commercial locks enforce: one code out at a time
per lock, its close seal back before the next code (the next code is derived
from that seal, so the lock would refuse anything else), wrong seals counted
and, past the limit, the chain blocked until an audited resynchronisation.
Result objects give the fields for the lock-access log through
``audit_fields()``: what proves each code, never the code.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from lockctl import codes, validation
from lockctl.codes import Operation
from lockctl.errors import (
    ChainBlocked,
    DualControlRequired,
    InvalidArgument,
    InvalidCode,
    InvalidSeal,
    NothingOutstanding,
    SealLockout,
    SealOutstanding,
    WindowUnavailable,
)
from lockctl.keys import LockKey
from lockctl.policy import LockPolicy, TimeWindow


class CodeKind(StrEnum):
    OPENING = "opening"
    RESYNC = "resync"


class ChainStatus(StrEnum):
    READY = "ready"  # a code may be issued
    AWAITING_SEAL = "awaiting-seal"  # a code is out; its seal must come back first
    BLOCKED = "blocked"  # too many wrong seals; only a resync helps


@dataclass(frozen=True)
class Outstanding:
    """The code (or dual pair, or resync) that is out and whose seal is awaited."""

    kind: CodeKind
    users: tuple[int, ...]
    operation: Operation | None
    window: int
    issued_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "users": list(self.users),
            "operation": None if self.operation is None else self.operation.value,
            "window": self.window,
            "issued_at": validation.rfc3339(self.issued_at),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Outstanding:
        if not isinstance(data, dict):
            raise InvalidArgument("outstanding must be an object")
        try:
            operation = data["operation"]
            return cls(
                kind=CodeKind(data["kind"]),
                users=tuple(validation.user(u, "outstanding.users") for u in data["users"]),
                operation=None if operation is None else Operation(operation),
                window=validation.non_negative(data["window"], "outstanding.window"),
                issued_at=validation.aware(
                    datetime.fromisoformat(data["issued_at"]), "outstanding.issued_at"
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidArgument(f"outstanding is malformed: {exc}") from None


@dataclass(frozen=True)
class LockChain:
    """The service's state for one lock. Persist it after every call that returns one."""

    lock_id: str
    key_version: int
    seal: bytes = field(repr=False)  # the last confirmed seal value (32 bytes)
    sequence: int = 0  # close seals confirmed since provisioning
    outstanding: Outstanding | None = None
    seal_failures: int = 0  # wrong seals in a row for the outstanding code
    blocked: bool = False
    last_resync_window: int | None = None

    def __post_init__(self) -> None:
        validation.lock_id(self.lock_id)
        validation.in_range(self.key_version, "key_version", 1, 2**32)
        validation.seal_bytes(self.seal, "seal")
        validation.non_negative(self.sequence, "sequence")
        validation.non_negative(self.seal_failures, "seal_failures")

    @property
    def status(self) -> ChainStatus:
        if self.blocked:
            return ChainStatus.BLOCKED
        if self.outstanding is not None:
            return ChainStatus.AWAITING_SEAL
        return ChainStatus.READY

    @property
    def chain_tag(self) -> str:
        """Public name of the current seal value, as written in the log."""
        return codes.chain_tag(self.seal)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form, for a database column or a file."""
        return {
            "lock": self.lock_id,
            "key_version": self.key_version,
            "seal": base64.b64encode(self.seal).decode("ascii"),
            "sequence": self.sequence,
            "outstanding": None if self.outstanding is None else self.outstanding.to_dict(),
            "seal_failures": self.seal_failures,
            "blocked": self.blocked,
            "last_resync_window": self.last_resync_window,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LockChain:
        if not isinstance(data, dict):
            raise InvalidArgument("a lock chain must be an object")
        try:
            seal = base64.b64decode(data["seal"], validate=True)
            outstanding = data.get("outstanding")
            last = data.get("last_resync_window")
            return cls(
                lock_id=data["lock"],
                key_version=data["key_version"],
                seal=seal,
                sequence=data.get("sequence", 0),
                outstanding=None if outstanding is None else Outstanding.from_dict(outstanding),
                seal_failures=data.get("seal_failures", 0),
                blocked=bool(data.get("blocked", False)),
                last_resync_window=None
                if last is None
                else validation.non_negative(last, "last_resync_window"),
            )
        except KeyError as exc:
            raise InvalidArgument(f"lock chain lacks {exc.args[0]!r}") from None
        except (TypeError, binascii.Error) as exc:
            raise InvalidArgument(f"lock chain is malformed: {exc}") from None


@dataclass(frozen=True)
class IssuedCode:
    """A code for one user. Show ``code`` to that user only; log ``audit_fields()``."""

    kind: CodeKind
    lock_id: str
    user: int
    operation: Operation | None
    window: TimeWindow
    key_version: int
    code: str = field(repr=False)
    code_tag: str
    previous_chain: str
    issued_at: datetime
    dual_with: int | None = None

    def audit_fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "lock": self.lock_id,
            "purpose": self.kind.value,
            "user": self.user,
            "window": self.window.index,
            "valid_from": validation.rfc3339(self.window.starts_at),
            "valid_until": validation.rfc3339(self.window.valid_until),
            "key_version": self.key_version,
            "code_tag": self.code_tag,
            "chain": self.previous_chain,
        }
        if self.operation is not None:
            data["operation"] = self.operation.value
        if self.dual_with is not None:
            data["dual_with"] = self.dual_with
        return data


@dataclass(frozen=True)
class Issuance:
    """The codes issued (one, or two for dual control) and the chain to persist."""

    codes: tuple[IssuedCode, ...]
    chain: LockChain


@dataclass(frozen=True)
class SealConfirmed:
    """A reported seal matched: the lock was relocked (or resynchronised)."""

    kind: CodeKind
    lock_id: str
    users: tuple[int, ...]
    operation: Operation | None
    window: int
    seal: str
    duress: bool
    previous_chain: str
    chain: LockChain

    def audit_fields(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "lock": self.lock_id,
            "purpose": self.kind.value,
            "users": list(self.users),
            "window": self.window,
            "matched": True,
            "duress": self.duress,
            "seal": self.seal,
            "previous_chain": self.previous_chain,
            "chain": self.chain.chain_tag,
            "sequence": self.chain.sequence,
        }
        if self.operation is not None:
            data["operation"] = self.operation.value
        return data


@dataclass(frozen=True)
class ForceClosed:
    """An outstanding code was closed without a seal (abandoned), by decision.

    The lock cannot be told: the abandoned code still opens it until
    ``usable_until`` (its window's end, lookback and clock skew included). Tell the
    dispatcher; an opening with it after the force-close is flagged by
    :func:`lockctl.compare_trail`.
    """

    abandoned: Outstanding
    chain: LockChain
    usable_until: datetime

    def audit_fields(self) -> dict[str, Any]:
        data = {"lock": self.chain.lock_id, **self.abandoned.to_dict()}
        data["purpose"] = data.pop("kind")
        data["chain"] = self.chain.chain_tag
        data["usable_until"] = validation.rfc3339(self.usable_until)
        return data


def mismatch_fields(error: InvalidSeal, reported: str) -> dict[str, Any]:
    """Log fields for a seal that did not match (``reported`` as typed)."""
    chain = error.chain
    return {
        "lock": chain.lock_id,
        "matched": False,
        "seal": reported[:32],
        "remaining_attempts": error.remaining_attempts,
        "blocked": chain.blocked,
        "chain": chain.chain_tag,
    }


class LockControl:
    """Issue codes and verify seals for locks under one policy."""

    def __init__(self, policy: LockPolicy) -> None:
        if not isinstance(policy, LockPolicy):
            raise TypeError("policy must be a LockPolicy")
        self.policy = policy

    def provision(self, key: LockKey) -> LockChain:
        """The chain of a lock just loaded with ``key`` (a new lock or a new key version)."""
        seal = codes.initial_seal_value(key.secret, key.lock_id, key.version)
        return LockChain(lock_id=key.lock_id, key_version=key.version, seal=seal)

    # -- issuing ---------------------------------------------------------------

    def issue(
        self,
        chain: LockChain,
        key: LockKey,
        *,
        user: int,
        operation: Operation,
        now: datetime,
        window: int | None = None,
    ) -> Issuance:
        """One user's code for ``operation``, valid in ``window`` (default: the one
        containing ``now``). Raises if a seal is outstanding or the chain is blocked."""
        operation = self._operation(operation)
        if operation in self.policy.dual_control:
            raise DualControlRequired(
                f"operation {operation.value} needs two users at lock {chain.lock_id}"
            )
        return self._issue_opening(chain, key, (user,), operation, now, window)

    def issue_dual(
        self,
        chain: LockChain,
        key: LockKey,
        *,
        users: tuple[int, int],
        operation: Operation,
        now: datetime,
        window: int | None = None,
    ) -> Issuance:
        """Two codes, one per user, both needed within the dual-control window."""
        operation = self._operation(operation)
        if operation not in self.policy.dual_control:
            raise DualControlRequired(
                f"operation {operation.value} is single-user at lock {chain.lock_id}"
            )
        if len(users) != 2 or users[0] == users[1]:
            raise InvalidArgument(f"dual control needs two different users, got {users!r}")
        return self._issue_opening(chain, key, tuple(users), operation, now, window)

    def issue_resync(
        self,
        chain: LockChain,
        key: LockKey,
        *,
        user: int,
        now: datetime,
        window: int | None = None,
    ) -> Issuance:
        """A resync code: restarts the lock's seal chain when a seal is lost or the chain
        is blocked. It does not open. Any outstanding code is abandoned; log why."""
        self._check_key(chain, key)
        validation.user(user)
        index = self._window(now, window)
        out = chain.outstanding
        repeat = (
            out is not None
            and out.kind is CodeKind.RESYNC
            and out.users == (user,)
            and out.window == index
        )
        last = chain.last_resync_window
        if not repeat and last is not None and index <= last:
            next_start = self.policy.window(last + 1).starts_at
            raise WindowUnavailable(
                f"lock {chain.lock_id} had a resync in this window; the next resync can "
                f"be issued from {validation.rfc3339(next_start)}"
            )
        context = codes.ResyncContext(chain.lock_id, user, index)
        issued = IssuedCode(
            kind=CodeKind.RESYNC,
            lock_id=chain.lock_id,
            user=user,
            operation=None,
            window=self.policy.window(index),
            key_version=key.version,
            code=codes.resync_code(key.secret, context),
            code_tag=codes.code_tag(key.secret, context),
            previous_chain=chain.chain_tag,
            issued_at=now,
        )
        outstanding = Outstanding(CodeKind.RESYNC, (user,), None, index, now)
        new_chain = replace(
            chain, outstanding=outstanding, seal_failures=0, last_resync_window=index
        )
        return Issuance((issued,), new_chain)

    def _issue_opening(
        self,
        chain: LockChain,
        key: LockKey,
        users: tuple[int, ...],
        operation: Operation,
        now: datetime,
        window: int | None,
    ) -> Issuance:
        self._check_key(chain, key)
        for user in users:
            validation.user(user)
        if chain.blocked:
            raise ChainBlocked(
                f"lock {chain.lock_id} is blocked after wrong close seals; issue a resync"
            )
        if chain.outstanding is not None:
            raise SealOutstanding(
                f"lock {chain.lock_id} has a code out since "
                f"{validation.rfc3339(chain.outstanding.issued_at)}; its close seal must be "
                "reported (or the code force-closed) first"
            )
        index = self._window(now, window)
        time_window = self.policy.window(index)
        issued = []
        for user in users:
            context = codes.CodeContext(chain.lock_id, user, operation, index, chain.seal)
            other = [u for u in users if u != user]
            issued.append(
                IssuedCode(
                    kind=CodeKind.OPENING,
                    lock_id=chain.lock_id,
                    user=user,
                    operation=operation,
                    window=time_window,
                    key_version=key.version,
                    code=codes.opening_code(key.secret, context),
                    code_tag=codes.code_tag(key.secret, context),
                    previous_chain=chain.chain_tag,
                    issued_at=now,
                    dual_with=other[0] if other else None,
                )
            )
        outstanding = Outstanding(CodeKind.OPENING, tuple(sorted(users)), operation, index, now)
        return Issuance(tuple(issued), replace(chain, outstanding=outstanding, seal_failures=0))

    # -- seals -----------------------------------------------------------------

    def verify_seal(
        self, chain: LockChain, key: LockKey, seal: str, *, now: datetime
    ) -> SealConfirmed:
        """Check the seal the lock showed against the outstanding code, in constant time.

        Returns the confirmation (with the next chain) or raises :class:`InvalidSeal`
        (or :class:`SealLockout` at the limit) carrying the chain to persist.
        """
        self._check_key(chain, key)
        validation.aware(now)
        try:
            typed = codes.normalize(seal)
        except InvalidCode:
            raise InvalidArgument("seal must be the 8 digits the lock shows") from None
        out = chain.outstanding
        if out is None:
            raise NothingOutstanding(f"lock {chain.lock_id} has no code out; no seal is due")
        if chain.blocked and out.kind is CodeKind.OPENING:
            raise ChainBlocked(
                f"lock {chain.lock_id} is blocked after wrong close seals; issue a resync"
            )
        previous = chain.chain_tag
        if out.kind is CodeKind.RESYNC:
            value = codes.resync_seal_value(
                key.secret, codes.ResyncContext(chain.lock_id, out.users[0], out.window)
            )
            if codes.same_digits(codes.seal_digits(value), typed):
                confirmed = replace(
                    chain, seal=value, outstanding=None, seal_failures=0, blocked=False
                )
                return SealConfirmed(
                    CodeKind.RESYNC,
                    chain.lock_id,
                    out.users,
                    None,
                    out.window,
                    typed,
                    False,
                    previous,
                    confirmed,
                )
            raise self._mismatch(chain)
        assert out.operation is not None
        candidates = []
        for duress in (False, True):
            context = codes.SealContext(
                chain.lock_id, out.users, out.operation, out.window, chain.seal, duress
            )
            value = codes.seal_value(key.secret, context)
            candidates.append((codes.same_digits(codes.seal_digits(value), typed), duress, value))
        for matched, duress, value in candidates:
            if matched:
                confirmed = replace(
                    chain,
                    seal=value,
                    sequence=chain.sequence + 1,
                    outstanding=None,
                    seal_failures=0,
                )
                return SealConfirmed(
                    CodeKind.OPENING,
                    chain.lock_id,
                    out.users,
                    out.operation,
                    out.window,
                    typed,
                    duress,
                    previous,
                    confirmed,
                )
        raise self._mismatch(chain)

    def _mismatch(self, chain: LockChain) -> InvalidSeal:
        failures = chain.seal_failures + 1
        remaining = max(0, self.policy.max_seal_failures - failures)
        if remaining == 0:
            out = chain.outstanding
            keep = out if out is not None and out.kind is CodeKind.OPENING else None
            blocked = replace(chain, seal_failures=failures, blocked=True, outstanding=keep)
            return SealLockout(
                f"lock {chain.lock_id}: wrong close seal; {failures} wrong in a row blocks the "
                "lock's codes until an audited resync",
                chain=blocked,
                remaining_attempts=0,
            )
        return InvalidSeal(
            f"lock {chain.lock_id}: the close seal does not match; {remaining} attempt(s) left",
            chain=replace(chain, seal_failures=failures),
            remaining_attempts=remaining,
        )

    def force_close(self, chain: LockChain, *, now: datetime) -> ForceClosed:
        """Abandon the outstanding code without a seal (it was not used, or the seal is
        lost). The chain stays at the last confirmed seal; if the lock did open, the next
        code will fail there and a resync is needed. Log who decided and why."""
        validation.aware(now)
        out = chain.outstanding
        if out is None:
            raise NothingOutstanding(f"lock {chain.lock_id} has no code out to close")
        usable_until = self.policy.window(out.window).valid_until + timedelta(
            seconds=self.policy.clock_skew_seconds
        )
        return ForceClosed(out, replace(chain, outstanding=None, seal_failures=0), usable_until)

    # -- helpers ---------------------------------------------------------------

    def _operation(self, operation: object) -> Operation:
        try:
            op = Operation(str(operation))
        except ValueError:
            raise InvalidArgument(f"unknown operation {operation!r}") from None
        if op not in self.policy.operations:
            raise InvalidArgument(f"the lock's policy does not allow operation {op.value}")
        return op

    @staticmethod
    def _check_key(chain: LockChain, key: LockKey) -> None:
        if not isinstance(key, LockKey):
            raise TypeError("key must be a LockKey")
        if key.lock_id != chain.lock_id or key.version != chain.key_version:
            raise InvalidArgument(
                f"key is for lock {key.lock_id} version {key.version}, but the chain is for "
                f"lock {chain.lock_id} version {chain.key_version}"
            )

    def _window(self, now: datetime, window: int | None) -> int:
        validation.aware(now)
        current = self.policy.window_index(now)
        if window is None:
            return current
        validation.non_negative(window, "window")
        accepted = self.policy.accepted_windows(now)
        if window < accepted.start:
            ended = self.policy.window(window).valid_until
            raise WindowUnavailable(f"window {window} ended at {validation.rfc3339(ended)}")
        start = self.policy.window(window).starts_at
        if start - now > timedelta(seconds=self.policy.max_ahead_seconds):
            raise WindowUnavailable(
                f"window {window} starts at {validation.rfc3339(start)}, more than "
                f"{self.policy.max_ahead_seconds} s ahead"
            )
        return window
