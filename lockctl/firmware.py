"""The lock's side of the algorithm: what the firmware does with a code keyed in.

:class:`LockFirmware` holds the lock's own copy of its key and policy and
decides, offline, whether a code opens: it tries every operation the policy
allows in every window it accepts now, plus the resync code, and compares each
candidate (and its duress variant) in constant time. It counts wrong codes and
imposes growing penalties, runs dual control, remembers spent codes, and makes
the close seal when the lock relocks.

It keeps no state of its own: each call takes a :class:`LockState` and returns
the next one, with the :class:`LockEvent` records the lock adds to its own
audit trail. The simulator (and a real lock's firmware) keeps both.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from lockctl import codes, validation
from lockctl.codes import Operation
from lockctl.errors import InvalidCode, NotOpen, ProvisioningError
from lockctl.keys import LockKey
from lockctl.policy import LockPolicy


class LockStatus(StrEnum):
    LOCKED = "locked"
    OPEN = "open"
    PENALTY = "penalty"
    DUAL_WAITING = "dual-waiting"  # first of two codes accepted


class Outcome(StrEnum):
    """What keying a code did."""

    OPENED = "opened"
    FIRST_CODE = "first-code"  # dual control: now waiting for a second user's code
    RESYNCED = "resynced"  # the seal chain restarted; the lock shows the resync seal
    WRONG_CODE = "wrong-code"
    LOCKED_OUT = "locked-out"  # this wrong code started a penalty
    IN_PENALTY = "in-penalty"  # ignored: a penalty is running
    USED_CODE = "used-code"  # a valid code that was already spent; counts as wrong
    SAME_USER = "same-user"  # dual control: the second code is the first user's
    DUAL_MISMATCH = "dual-mismatch"  # dual control: second code for another operation/window
    ALREADY_OPEN = "already-open"


class EventKind(StrEnum):
    """Records in the lock's own audit trail."""

    WRONG_CODE = "wrong-code"
    USED_CODE = "used-code"
    LOCKOUT = "lockout"
    FIRST_CODE = "first-code"
    DUAL_EXPIRED = "dual-expired"
    DUAL_REJECTED = "dual-rejected"
    OPENED = "opened"
    DURESS = "duress"
    CLOSED = "closed"
    RESYNC = "resync"


@dataclass(frozen=True)
class LockEvent:
    """One record of the lock's trail; ``seq`` counts from 0 and never repeats."""

    seq: int
    kind: EventKind
    at: datetime
    users: tuple[int, ...] = ()
    operation: Operation | None = None
    window: int | None = None
    seal: str | None = None  # the digits shown, for closed and resync
    until: datetime | None = None  # end of a lockout's penalty

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"seq": self.seq, "event": self.kind.value}
        data["at"] = validation.rfc3339(self.at)
        if self.users:
            data["users"] = list(self.users)
        if self.operation is not None:
            data["operation"] = self.operation.value
        if self.window is not None:
            data["window"] = self.window
        if self.seal is not None:
            data["seal"] = self.seal
        if self.until is not None:
            data["until"] = validation.rfc3339(self.until)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> LockEvent:
        """Read a trail record; raises :class:`ProvisioningError` naming the bad field."""
        if not isinstance(data, dict):
            raise ProvisioningError("a trail record must be an object")
        try:
            users = tuple(validation.user(u, "users") for u in data.get("users", ()))
            operation = data.get("operation")
            window = data.get("window")
            return cls(
                seq=validation.non_negative(data["seq"], "seq"),
                kind=EventKind(data["event"]),
                at=_parse_time(data["at"], "at"),
                users=users,
                operation=None if operation is None else Operation(operation),
                window=None if window is None else validation.non_negative(window, "window"),
                seal=None if data.get("seal") is None else codes.normalize(data["seal"]),
                until=None if data.get("until") is None else _parse_time(data["until"], "until"),
            )
        except KeyError as exc:
            raise ProvisioningError(f"trail record lacks {exc.args[0]!r}") from None
        except (ValueError, InvalidCode) as exc:
            raise ProvisioningError(f"trail record {data.get('seq')!r}: {exc}") from None


def _parse_time(value: object, name: str) -> datetime:
    if not isinstance(value, str):
        raise ProvisioningError(f"{name} must be an RFC 3339 time")
    try:
        return validation.aware(datetime.fromisoformat(value), name)
    except ValueError:
        raise ProvisioningError(f"{name} must be an RFC 3339 time, got {value!r}") from None


@dataclass(frozen=True)
class FirstCode:
    """Dual control: the first user's accepted code, waiting for a second user's."""

    user: int
    operation: Operation
    window: int
    duress: bool
    at: datetime


@dataclass(frozen=True)
class Opening:
    """The lock is open (bolt withdrawn) for these users until it relocks."""

    users: tuple[int, ...]
    operation: Operation
    window: int
    duress: bool
    opened_at: datetime


@dataclass(frozen=True)
class LockState:
    """Everything the lock remembers between key presses; the caller persists it."""

    seal: bytes = field(repr=False)  # current chain value: the last close (or resync) seal
    sequence: int = 0  # relockings so far
    failures: int = 0  # wrong codes in a row
    lockouts: int = 0  # penalties since the last good code
    penalty_until: datetime | None = None
    first_code: FirstCode | None = None
    opening: Opening | None = None
    spent: frozenset[tuple[int, Operation, int]] = frozenset()  # at this chain position
    last_resync_window: int | None = None
    next_event: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The state as JSON-ready data, for a lock that keeps it in non-volatile memory.

        It holds the chain value (hex), from which with the lock key the next codes
        follow: store it as carefully as the lock's provisioning record.
        """
        first, opening = self.first_code, self.opening
        return {
            "seal": self.seal.hex(),
            "sequence": self.sequence,
            "failures": self.failures,
            "lockouts": self.lockouts,
            "penalty_until": None
            if self.penalty_until is None
            else validation.rfc3339(self.penalty_until),
            "first_code": None
            if first is None
            else {
                "user": first.user,
                "operation": first.operation.value,
                "window": first.window,
                "duress": first.duress,
                "at": validation.rfc3339(first.at),
            },
            "opening": None
            if opening is None
            else {
                "users": list(opening.users),
                "operation": opening.operation.value,
                "window": opening.window,
                "duress": opening.duress,
                "opened_at": validation.rfc3339(opening.opened_at),
            },
            "spent": sorted([user, op.value, window] for user, op, window in self.spent),
            "last_resync_window": self.last_resync_window,
            "next_event": self.next_event,
        }

    @classmethod
    def from_dict(cls, data: Any) -> LockState:
        """Read :meth:`to_dict`'s data; raises :class:`ProvisioningError` naming a bad field."""
        if not isinstance(data, dict):
            raise ProvisioningError("a lock state must be an object")
        try:
            seal_text = data["seal"]
            if not isinstance(seal_text, str):
                raise ValueError("seal must be hex text")
            penalty = data.get("penalty_until")
            first = data.get("first_code")
            opening = data.get("opening")
            resync = data.get("last_resync_window")
            return cls(
                seal=validation.seal_bytes(bytes.fromhex(seal_text)),
                sequence=validation.non_negative(data["sequence"], "sequence"),
                failures=validation.non_negative(data["failures"], "failures"),
                lockouts=validation.non_negative(data["lockouts"], "lockouts"),
                penalty_until=None if penalty is None else _parse_time(penalty, "penalty_until"),
                first_code=None
                if first is None
                else FirstCode(
                    user=validation.user(first["user"], "first_code.user"),
                    operation=Operation(first["operation"]),
                    window=validation.non_negative(first["window"], "first_code.window"),
                    duress=bool(first["duress"]),
                    at=_parse_time(first["at"], "first_code.at"),
                ),
                opening=None
                if opening is None
                else Opening(
                    users=tuple(validation.user(u, "opening.users") for u in opening["users"]),
                    operation=Operation(opening["operation"]),
                    window=validation.non_negative(opening["window"], "opening.window"),
                    duress=bool(opening["duress"]),
                    opened_at=_parse_time(opening["opened_at"], "opening.opened_at"),
                ),
                spent=frozenset(
                    (
                        validation.user(user, "spent"),
                        Operation(operation),
                        validation.non_negative(window, "spent"),
                    )
                    for user, operation, window in data["spent"]
                ),
                last_resync_window=None
                if resync is None
                else validation.non_negative(resync, "last_resync_window"),
                next_event=validation.non_negative(data["next_event"], "next_event"),
            )
        except KeyError as exc:
            raise ProvisioningError(f"lock state lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ProvisioningError(f"lock state: {exc}") from None

    def status(self, now: datetime) -> LockStatus:
        if self.opening is not None:
            return LockStatus.OPEN
        if self.penalty_until is not None and now < self.penalty_until:
            return LockStatus.PENALTY
        if self.first_code is not None:
            return LockStatus.DUAL_WAITING
        return LockStatus.LOCKED


@dataclass(frozen=True)
class Entry:
    """The result of keying a code: what happened, the next state, new trail records."""

    outcome: Outcome
    state: LockState
    events: tuple[LockEvent, ...]
    duress: bool = False  # never displayed: drives the silent alarm
    seal: str | None = None  # shown after a resync
    penalty_until: datetime | None = None


@dataclass(frozen=True)
class Relock:
    """The lock relocked: the seal it shows, the next state and the trail record."""

    seal: str
    state: LockState
    events: tuple[LockEvent, ...]


@dataclass(frozen=True)
class Expired:
    """The state after timers ran, and the trail records they added."""

    state: LockState
    events: tuple[LockEvent, ...]


@dataclass(frozen=True)
class _Match:
    resync: bool
    operation: Operation | None
    window: int
    duress: bool


class LockFirmware:
    """The decisions a central-control lock makes offline, for one lock key and policy."""

    def __init__(self, key: LockKey, policy: LockPolicy) -> None:
        if not isinstance(key, LockKey):
            raise TypeError("key must be a LockKey")
        if not isinstance(policy, LockPolicy):
            raise TypeError("policy must be a LockPolicy")
        self._key = key
        self.policy = policy
        self._operations = sorted(policy.operations, key=lambda op: op.value)

    @property
    def lock_id(self) -> str:
        return self._key.lock_id

    @property
    def key_version(self) -> int:
        return self._key.version

    def initial_state(self) -> LockState:
        """The state of a lock just provisioned with this key: the chain's first seal."""
        seal = codes.initial_seal_value(self._key.secret, self.lock_id, self._key.version)
        return LockState(seal=seal)

    # -- keying a code ---------------------------------------------------------

    def enter(self, state: LockState, *, user: int, code: str, now: datetime) -> Entry:
        """Key ``code`` for ``user`` at ``now``; malformed codes count as wrong codes."""
        validation.user(user)
        validation.aware(now)
        if state.opening is not None:
            return Entry(Outcome.ALREADY_OPEN, state, ())
        if state.penalty_until is not None and now < state.penalty_until:
            return Entry(Outcome.IN_PENALTY, state, (), penalty_until=state.penalty_until)
        expired = self.expire(state, now=now)
        state = expired.state
        events = list(expired.events)
        try:
            typed = codes.normalize(code)
        except InvalidCode:
            typed = None
        match = None if typed is None else self._match(state, user, typed, now)
        if match is None:
            return self._fail(state, events, EventKind.WRONG_CODE, user, now)
        if match.resync:
            return self._resync(state, events, user, match.window, now)
        assert match.operation is not None
        operation, window = match.operation, match.window
        if (user, operation, window) in state.spent:
            return self._fail(state, events, EventKind.USED_CODE, user, now, operation, window)
        users: tuple[int, ...] = (user,)
        duress = match.duress
        spent = {(user, operation, window)}
        if operation in self.policy.dual_control:
            first = state.first_code
            if first is None:
                state = self._event(
                    state,
                    events,
                    EventKind.FIRST_CODE,
                    now,
                    users=(user,),
                    operation=operation,
                    window=window,
                )
                pending = FirstCode(user, operation, window, duress, now)
                state = replace(state, first_code=pending, failures=0)
                return Entry(Outcome.FIRST_CODE, state, tuple(events))
            if first.user == user or first.operation != operation or first.window != window:
                outcome = Outcome.SAME_USER if first.user == user else Outcome.DUAL_MISMATCH
                state = self._event(
                    state,
                    events,
                    EventKind.DUAL_REJECTED,
                    now,
                    users=(user,),
                    operation=operation,
                    window=window,
                )
                return Entry(outcome, state, tuple(events))
            users = tuple(sorted((first.user, user)))
            duress = duress or first.duress
            spent.add((first.user, first.operation, first.window))
        opening = Opening(users, operation, window, duress, now)
        state = self._event(
            state, events, EventKind.OPENED, now, users=users, operation=operation, window=window
        )
        if duress:
            state = self._event(
                state,
                events,
                EventKind.DURESS,
                now,
                users=users,
                operation=operation,
                window=window,
            )
        state = replace(
            state,
            opening=opening,
            first_code=None,
            failures=0,
            lockouts=0,
            penalty_until=None,
            spent=state.spent | spent,
        )
        return Entry(Outcome.OPENED, state, tuple(events), duress=duress)

    def expire(self, state: LockState, *, now: datetime) -> Expired:
        """Drop a first code of two whose dual-control window has passed."""
        first = state.first_code
        limit = timedelta(seconds=self.policy.dual_window_seconds)
        if first is None or now - first.at <= limit:
            return Expired(state, ())
        events: list[LockEvent] = []
        state = self._event(
            state,
            events,
            EventKind.DUAL_EXPIRED,
            first.at + limit,
            users=(first.user,),
            operation=first.operation,
            window=first.window,
        )
        return Expired(replace(state, first_code=None), tuple(events))

    def accepts(self, state: LockState, *, user: int, code: str, now: datetime) -> bool:
        """Whether ``code`` would be accepted (opening, duress or resync) at ``now``,
        ignoring penalties, spent codes and dual control. For tests and odds checks."""
        try:
            typed = codes.normalize(code)
        except InvalidCode:
            return False
        return self._match(state, validation.user(user), typed, now) is not None

    def candidate_count(self, now: datetime) -> int:
        """How many different codes the lock accepts for one user at ``now``."""
        windows = len(self.policy.accepted_windows(now))
        return windows * (2 * len(self._operations) + 1)

    def _match(self, state: LockState, user: int, typed: str, now: datetime) -> _Match | None:
        """Compare ``typed`` with every candidate, all in constant time, without stopping
        early; an exact code wins over a duress variant, and both over a resync code."""
        secret = self._key.secret
        exact: _Match | None = None
        duress: _Match | None = None
        resync: _Match | None = None
        for window in self.policy.accepted_windows(now):
            for operation in self._operations:
                context = codes.CodeContext(self.lock_id, user, operation, window, state.seal)
                expected = codes.opening_code(secret, context)
                if codes.same_digits(expected, typed) and exact is None:
                    exact = _Match(False, operation, window, False)
                if codes.same_digits(codes.duress_code(expected), typed) and duress is None:
                    duress = _Match(False, operation, window, True)
            context_r = codes.ResyncContext(self.lock_id, user, window)
            if codes.same_digits(codes.resync_code(secret, context_r), typed) and resync is None:
                resync = _Match(True, None, window, False)
        return exact or duress or resync

    def _resync(
        self, state: LockState, events: list[LockEvent], user: int, window: int, now: datetime
    ) -> Entry:
        if state.last_resync_window is not None and window <= state.last_resync_window:
            return self._fail(state, events, EventKind.USED_CODE, user, now, None, window)
        value = codes.resync_seal_value(
            self._key.secret, codes.ResyncContext(self.lock_id, user, window)
        )
        shown = codes.seal_digits(value)
        state = self._event(
            state, events, EventKind.RESYNC, now, users=(user,), window=window, seal=shown
        )
        state = replace(
            state,
            seal=value,
            failures=0,
            lockouts=0,
            penalty_until=None,
            first_code=None,
            spent=frozenset(),
            last_resync_window=window,
        )
        return Entry(Outcome.RESYNCED, state, tuple(events), seal=shown)

    def _fail(
        self,
        state: LockState,
        events: list[LockEvent],
        kind: EventKind,
        user: int,
        now: datetime,
        operation: Operation | None = None,
        window: int | None = None,
    ) -> Entry:
        state = self._event(
            state, events, kind, now, users=(user,), operation=operation, window=window
        )
        failures = state.failures + 1
        if failures < self.policy.max_failures:
            state = replace(state, failures=failures, first_code=None)
            outcome = Outcome.USED_CODE if kind is EventKind.USED_CODE else Outcome.WRONG_CODE
            return Entry(outcome, state, tuple(events))
        until = now + timedelta(seconds=self.policy.penalty_for(state.lockouts))
        state = self._event(state, events, EventKind.LOCKOUT, now, users=(user,), until=until)
        state = replace(
            state,
            failures=0,
            lockouts=state.lockouts + 1,
            penalty_until=until,
            first_code=None,
        )
        return Entry(Outcome.LOCKED_OUT, state, tuple(events), penalty_until=until)

    @staticmethod
    def _event(
        state: LockState,
        events: list[LockEvent],
        kind: EventKind,
        now: datetime,
        **fields: Any,
    ) -> LockState:
        events.append(LockEvent(seq=state.next_event, kind=kind, at=now, **fields))
        return replace(state, next_event=state.next_event + 1)

    # -- relocking -------------------------------------------------------------

    def relock(self, state: LockState, *, now: datetime) -> Relock:
        """Throw the bolt: compute, show and chain the close seal of this opening."""
        validation.aware(now)
        opening = state.opening
        if opening is None:
            raise NotOpen(f"lock {self.lock_id} is not open")
        context = codes.SealContext(
            self.lock_id,
            opening.users,
            opening.operation,
            opening.window,
            state.seal,
            opening.duress,
        )
        value = codes.seal_value(self._key.secret, context)
        shown = codes.seal_digits(value)
        events: list[LockEvent] = []
        state = self._event(
            state,
            events,
            EventKind.CLOSED,
            now,
            users=opening.users,
            operation=opening.operation,
            window=opening.window,
            seal=shown,
        )
        state = replace(
            state,
            seal=value,
            sequence=state.sequence + 1,
            opening=None,
            first_code=None,
            spent=frozenset(),
        )
        return Relock(shown, state, tuple(events))
