"""Lock control in the service: provisioning, the issuance rules, seals, force-close, resync.

The rules (``docs/locks.md``):

* A code is issued only to the engineer who holds the task (or the task's second
  custodian, for dual control), for the lock of the task's ATM, while the task is
  on site, inside the task's access window: from arrival until the restore
  deadline or ``lock_access_minutes`` after arrival, whichever is later.
* The operation follows the task: first-line repair ``flm``, second-line repair
  ``open``, replenishment ``route`` (the cash-in-transit user of a central-control
  lock); ``bank`` is never issued for field work.
* A dual-control lock needs two people: each asks for their own code. The first
  request waits (nothing is issued); the second, from the other person, within the
  lock policy's dual window, issues both codes at once. Each person sees only
  their own code, once.
* One code cycle at a time per lock: its close seal must come back (or a
  dispatcher force-closes it) before the next code. Every request, issuance, seal,
  force-close and resync goes into the lock-access log in the same transaction as
  the lock's chain state; never the code.

Every use case locks the lock's row first, so instances take turns at one lock,
and a unique ``open_key`` on the open cycle backs that up in the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from atm_service.errors import (
    Conflict,
    InvalidInput,
    NotFound,
    PermissionDenied,
)
from atm_service.models.engineers import Engineer
from atm_service.models.fleet import Atm
from atm_service.models.locks import (
    AlarmKind,
    CodeOut,
    CustodianPublic,
    ForceClosedOut,
    IssuanceKind,
    IssuancePublic,
    IssuanceState,
    Lock,
    LockCreate,
    LockIssuance,
    LockPublic,
    LockState,
    SealOut,
    TaskCustodian,
)
from atm_service.models.tasks import HELD_STATES, Task, TaskKind, TaskState
from atm_service.models.users import User
from atm_service.services import engineers, lock_alarms
from atm_service.services.lock_secrets import LockSecrets
from lockctl import (
    ChainBlocked,
    CodeKind,
    InvalidArgument,
    InvalidSeal,
    IssuedCode,
    KeyExists,
    LockChain,
    LockCtlError,
    LockPolicy,
    NothingOutstanding,
    Operation,
    Provisioning,
    SealLockout,
    SealOutstanding,
    WindowUnavailable,
    mismatch_fields,
)
from lockctl import codes as otc

OPERATION_FOR_KIND = {
    TaskKind.FLM: Operation.FLM,
    TaskKind.SLM: Operation.OPEN,
    TaskKind.REPLENISHMENT: Operation.ROUTE,
}


@dataclass(frozen=True)
class Timing:
    """The service's time rules around the lock policy (from the settings)."""

    access_minutes: int = 240
    seal_grace_minutes: int = 30


def access_window(task: Task, *, timing: Timing) -> tuple[datetime, datetime] | None:
    """When codes may be issued for ``task``: from arrival until the restore deadline or
    ``access_minutes`` after arrival, whichever is later. ``None`` before arrival."""
    if task.arrived_at is None:
        return None
    end = max(task.restore_due, task.arrived_at + timedelta(minutes=timing.access_minutes))
    return task.arrived_at, end


def _open_key(lock: Lock) -> str:
    return f"lock:{lock.id}"


def _fmt(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


# --- reading ---------------------------------------------------------------------------


def lock_for_atm(session: Session, *, atm_id: int, for_update: bool = False) -> Lock:
    query = select(Lock).where(col(Lock.atm_id) == atm_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    lock = session.exec(query).first()
    if lock is None:
        atm = session.get(Atm, atm_id)
        if atm is None:
            raise NotFound(f"No ATM with id {atm_id}.")
        raise NotFound(f"ATM {atm.terminal_id} has no safe lock provisioned.")
    return lock


def find_lock(session: Session, *, atm_id: int) -> Lock | None:
    return session.exec(select(Lock).where(col(Lock.atm_id) == atm_id)).first()


def get_lock(session: Session, *, lock_pk: int) -> Lock:
    lock = session.get(Lock, lock_pk)
    if lock is None:
        raise NotFound(f"No lock with id {lock_pk}.")
    return lock


def open_cycle(session: Session, lock: Lock) -> LockIssuance | None:
    return session.exec(
        select(LockIssuance)
        .where(col(LockIssuance.open_key) == _open_key(lock))
        .execution_options(populate_existing=True)
    ).first()


def open_cycle_for_task(session: Session, *, task_id: int) -> LockIssuance | None:
    """The code cycle still open for ``task_id`` (its seal not reported), if any."""
    return session.exec(
        select(LockIssuance).where(
            col(LockIssuance.task_id) == task_id,
            col(LockIssuance.state) == IssuanceState.OUTSTANDING,
        )
    ).first()


def check_no_code_out(session: Session, *, task_id: int) -> None:
    """Refuse to end a task's visit while a code for it is out (its seal not reported)."""
    cycle = open_cycle_for_task(session, task_id=task_id)
    if cycle is not None:
        raise Conflict(
            "Report the safe lock's close seal first: a code for this task is out since "
            f"{_fmt(cycle.issued_at or cycle.requested_at)}. If the safe was not opened, ask "
            "a dispatcher to force-close the code."
        )


def issuance_public(cycle: LockIssuance) -> IssuancePublic:
    assert cycle.id is not None
    return IssuancePublic.model_validate(cycle.model_dump())


def history(session: Session, lock: Lock, *, limit: int = 20) -> list[LockIssuance]:
    return list(
        session.exec(
            select(LockIssuance)
            .where(col(LockIssuance.lock_pk) == lock.id)
            .order_by(col(LockIssuance.id).desc())
            .limit(limit)
        )
    )


def to_public(session: Session, lock: Lock) -> LockPublic:
    assert lock.id is not None
    chain = LockChain.from_dict(lock.chain)
    atm = session.get(Atm, lock.atm_id)
    assert atm is not None
    cycle = open_cycle(session, lock)
    return LockPublic(
        id=lock.id,
        atm_id=lock.atm_id,
        terminal_id=atm.terminal_id,
        lock_id=lock.lock_id,
        model=lock.model,
        dual_control=lock.dual_control,
        state=lock.state,
        key_version=chain.key_version,
        chain_status=chain.status.value,
        sequence=chain.sequence,
        chain_tag=chain.chain_tag,
        policy=lock.policy,
        open_cycle=issuance_public(cycle) if cycle is not None else None,
        version=lock.version,
    )


def list_locks(session: Session, *, limit: int = 100, offset: int = 0) -> tuple[list[Lock], int]:
    total = int(session.exec(select(func.count()).select_from(Lock)).one())
    rows = session.exec(select(Lock).order_by(col(Lock.lock_id)).offset(offset).limit(limit))
    return list(rows), total


# --- provisioning ----------------------------------------------------------------------


def provision(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    data: LockCreate,
    by: User,
    now: datetime,
) -> Lock:
    """Give an ATM its lock: a new key in the vault, the chain at its initial seal."""
    secrets.check()
    atm = session.get(Atm, atm_id)
    if atm is None:
        raise NotFound(f"No ATM with id {atm_id}.")
    if find_lock(session, atm_id=atm_id) is not None:
        raise Conflict(f"ATM {atm.terminal_id} already has a lock.", field="atm_id")
    if session.exec(select(Lock.id).where(col(Lock.lock_id) == data.lock_id)).first():
        raise Conflict(f"Lock {data.lock_id} is already fitted to another ATM.", field="lock_id")
    policy = LockPolicy(
        window_seconds=data.window_seconds,
        dual_control=frozenset(Operation) if data.dual_control else frozenset(),
    )
    vault = secrets.vault(session)
    try:
        key = vault.create(data.lock_id, now=now)
    except KeyExists:
        raise Conflict(
            f"The vault already holds a key for lock {data.lock_id}.", field="lock_id"
        ) from None
    except InvalidArgument as exc:
        raise InvalidInput(str(exc), field="lock_id") from None
    chain = secrets.control(policy.to_dict()).provision(key)
    lock = Lock(
        atm_id=atm_id,
        lock_id=data.lock_id,
        model=data.model,
        dual_control=data.dual_control,
        state=LockState.ACTIVE,
        policy=policy.to_dict(),
        chain=chain.to_dict(),
        created_at=now,
        updated_at=now,
    )
    session.add(lock)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"ATM {atm.terminal_id} already has a lock.", field="atm_id") from None
    secrets.audit_log(session).append(
        "lock-provisioned",
        {
            "lock": lock.lock_id,
            "atm": atm.terminal_id,
            "key_version": key.version,
            "chain": chain.chain_tag,
            "dual_control": data.dual_control,
            "by": by.username,
        },
        now=now,
    )
    session.commit()
    return lock


def provisioning_record(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    by: User,
    reason: str,
    now: datetime,
) -> tuple[Lock, str]:
    """The record that loads the lock (its key in clear, and its policy): for the lock's
    loading device or the simulator. Logged with who took it and why."""
    secrets.check()
    lock = lock_for_atm(session, atm_id=atm_id, for_update=True)
    chain = LockChain.from_dict(lock.chain)
    key = secrets.vault(session).get(lock.lock_id, chain.key_version)
    record = Provisioning(key, LockPolicy.from_dict(lock.policy)).to_json()
    secrets.audit_log(session).append(
        "provisioning-exported",
        {
            "lock": lock.lock_id,
            "key_version": key.version,
            "by": by.username,
            "reason": reason.strip()[:500],
        },
        now=now,
    )
    session.commit()
    return lock, record


# --- who may ask -----------------------------------------------------------------------


def _engineer(session: Session, user: User) -> Engineer:
    assert user.id is not None
    engineer = engineers.engineer_of(session, user_id=user.id)
    if engineer is None:
        raise PermissionDenied("Your account has no engineer profile, so no codes can be issued.")
    return engineer


def is_custodian(session: Session, *, task_id: int, engineer_id: int) -> bool:
    return (
        session.exec(
            select(TaskCustodian.id).where(
                col(TaskCustodian.task_id) == task_id,
                col(TaskCustodian.engineer_id) == engineer_id,
            )
        ).first()
        is not None
    )


def _check_person(session: Session, task: Task, user: User) -> None:
    engineer = _engineer(session, user)
    assert engineer.id is not None
    assert task.id is not None
    holder = task.engineer_id == engineer.id and task.state in HELD_STATES
    if not holder and not is_custodian(session, task_id=task.id, engineer_id=engineer.id):
        raise PermissionDenied(
            f"Task {task.id} is not assigned to you: codes go only to its engineer "
            "(and, for dual control, the second person a dispatcher added to it)."
        )


def _check_task(
    session: Session, task: Task, lock: Lock, *, user: User, now: datetime, timing: Timing
) -> None:
    """The issuance rules that concern the task: person, ATM, on site, window."""
    _check_person(session, task, user)
    if task.atm_id != lock.atm_id:
        here = session.get(Atm, lock.atm_id)
        there = session.get(Atm, task.atm_id)
        assert here is not None
        assert there is not None
        raise PermissionDenied(
            f"Task {task.id} is at ATM {there.terminal_id}; a code for the lock of ATM "
            f"{here.terminal_id} cannot be issued for it."
        )
    if task.state is not TaskState.ON_SITE:
        raise Conflict(
            f"Codes are issued on site: task {task.id} is {task.state.label}. "
            "Mark it 'Arrived on site' at the ATM first."
        )
    window = access_window(task, timing=timing)
    assert window is not None, "an on-site task has an arrival time"
    start, end = window
    if not start <= now <= end:
        raise Conflict(
            f"Outside the task's access window ({_fmt(start)} to {_fmt(end)}): no code can be "
            "issued now. A dispatcher can open a new task."
        )


def _operation(task: Task, lock: Lock, requested: str | None) -> Operation:
    expected = OPERATION_FOR_KIND[task.kind]
    if requested is not None and requested != expected.value:
        allowed = ", ".join(op.value for op in Operation)
        if requested not in {op.value for op in Operation}:
            raise InvalidInput(f"operation must be one of {allowed}.", field="operation")
        raise InvalidInput(
            f"A {task.kind.label.lower()} task opens the safe for operation {expected.value}, "
            f"not {requested}.",
            field="operation",
        )
    if expected.value not in lock.policy.get("operations", []):
        raise InvalidInput(
            f"Lock {lock.lock_id} is not set up for operation {expected.value}.",
            field="operation",
        )
    return expected


def _task(session: Session, task_id: int) -> Task:
    task = session.get(Task, task_id)
    if task is None:
        raise NotFound(f"No task with id {task_id}.")
    return task


# --- issuing ---------------------------------------------------------------------------


def _fields(code: IssuedCode, *, by: User, task: Task, terminal: str) -> dict[str, Any]:
    return {**code.audit_fields(), "by": by.username, "task": task.id, "atm": terminal}


def _code_out(lock: Lock, task: Task, code: IssuedCode, *, user_number: int, shown: str) -> CodeOut:
    assert task.id is not None
    return CodeOut(
        status="issued",
        lock_id=lock.lock_id,
        task_id=task.id,
        user_number=user_number,
        operation="" if code.operation is None else code.operation.value,
        purpose=code.kind.value,
        code=shown,
        valid_from=code.window.starts_at,
        valid_until=code.window.valid_until,
        dual_with=code.dual_with,
    )


def _touch(session: Session, lock: Lock, chain: LockChain, now: datetime) -> None:
    lock.chain = chain.to_dict()
    lock.version += 1
    lock.updated_at = now
    session.add(lock)


def _seal_due(policy: LockPolicy, valid_until: datetime, timing: Timing) -> datetime:
    return valid_until + timedelta(
        seconds=policy.clock_skew_seconds, minutes=timing.seal_grace_minutes
    )


def request_code(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    task_id: int,
    user: User,
    operation: str | None,
    now: datetime,
    timing: Timing,
) -> CodeOut:
    """An engineer on site asks for a code for the lock of the ATM in front of them.

    Returns the code (shown once) or, for the first person at a dual-control lock,
    ``status="waiting"`` until the second person asks.
    """
    secrets.check()
    lock = lock_for_atm(session, atm_id=atm_id, for_update=True)
    if lock.state is not LockState.ACTIVE:
        raise Conflict(f"Lock {lock.lock_id} is retired; no codes are issued for it.")
    task = _task(session, task_id)
    _check_task(session, task, lock, user=user, now=now, timing=timing)
    op = _operation(task, lock, operation)
    assert user.id is not None
    assert task.id is not None
    policy = LockPolicy.from_dict(lock.policy)
    control = secrets.control(lock.policy)
    chain = LockChain.from_dict(lock.chain)
    log = secrets.audit_log(session)
    atm = session.get(Atm, lock.atm_id)
    assert atm is not None
    if chain.blocked:
        raise Conflict(
            f"Lock {lock.lock_id} is blocked after wrong close seals; a dispatcher must "
            "authorise a resync first."
        )
    cycle = open_cycle(session, lock)
    if cycle is not None and cycle.state is IssuanceState.PENDING:
        waiting_until = cycle.requested_at + timedelta(seconds=policy.dual_window_seconds)
        if now > waiting_until:
            cycle.state = IssuanceState.EXPIRED
            cycle.closed_at = now
            cycle.open_key = None
            session.add(cycle)
            session.flush()
            cycle = None
        elif cycle.task_id != task.id:
            raise Conflict(
                f"Lock {lock.lock_id} has a dual-control request for task {cycle.task_id} "
                f"waiting until {_fmt(waiting_until)}."
            )
        elif user.id in cycle.users:
            raise Conflict(
                "Dual control: the second code must be requested by another person, on their "
                f"own phone. Waiting for them until {waiting_until:%H:%M:%S} UTC."
            )
    if cycle is not None and cycle.state is IssuanceState.OUTSTANDING:
        since = cycle.issued_at or cycle.requested_at
        raise Conflict(
            f"Lock {lock.lock_id} has a code out since {_fmt(since)} (task {cycle.task_id}): "
            "its close seal must be reported, or a dispatcher force-closes it, before the next "
            "code."
        )
    key = secrets.vault(session).active(lock.lock_id)
    try:
        if op in policy.dual_control:
            if cycle is None:
                cycle = LockIssuance(
                    lock_pk=lock.id or 0,
                    task_id=task.id,
                    kind=IssuanceKind.OPENING,
                    state=IssuanceState.PENDING,
                    operation=op.value,
                    users=[user.id],
                    shown_to=[],
                    requested_by=user.username,
                    requested_at=now,
                    open_key=_open_key(lock),
                )
                session.add(cycle)
                session.flush()
                log.append(
                    "code-requested",
                    {
                        "lock": lock.lock_id,
                        "user": user.id,
                        "operation": op.value,
                        "dual": True,
                        "by": user.username,
                        "task": task.id,
                        "atm": atm.terminal_id,
                    },
                    now=now,
                )
                session.commit()
                return CodeOut(
                    status="waiting",
                    lock_id=lock.lock_id,
                    task_id=task.id,
                    user_number=user.id,
                    operation=op.value,
                    purpose=CodeKind.OPENING.value,
                    waiting_until=now + timedelta(seconds=policy.dual_window_seconds),
                )
            first = cycle.users[0]
            issuance = control.issue_dual(chain, key, users=(first, user.id), operation=op, now=now)
            mine = next(c for c in issuance.codes if c.user == user.id)
            for code in issuance.codes:
                log.append(
                    "code-issued",
                    _fields(code, by=user, task=task, terminal=atm.terminal_id),
                    now=now,
                )
            cycle.users = [first, user.id]
            cycle.shown_to = [user.id]
        else:
            issuance = control.issue(chain, key, user=user.id, operation=op, now=now)
            mine = issuance.codes[0]
            log.append(
                "code-issued", _fields(mine, by=user, task=task, terminal=atm.terminal_id), now=now
            )
            cycle = LockIssuance(
                lock_pk=lock.id or 0,
                task_id=task.id,
                kind=IssuanceKind.OPENING,
                state=IssuanceState.OUTSTANDING,
                operation=op.value,
                users=[user.id],
                shown_to=[user.id],
                requested_by=user.username,
                requested_at=now,
                open_key=_open_key(lock),
            )
    except (SealOutstanding, ChainBlocked, WindowUnavailable) as exc:
        raise Conflict(str(exc)) from None
    cycle.state = IssuanceState.OUTSTANDING
    cycle.window = mine.window.index
    cycle.issued_at = now
    cycle.valid_until = mine.window.valid_until
    cycle.seal_due = _seal_due(policy, mine.window.valid_until, timing)
    session.add(cycle)
    _touch(session, lock, issuance.chain, now)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise Conflict(f"Lock {lock.lock_id} already has a code cycle open.") from None
    session.commit()
    return _code_out(lock, task, mine, user_number=user.id, shown=mine.code)


def reveal_code(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    task_id: int,
    user: User,
    now: datetime,
    timing: Timing,
) -> CodeOut:
    """Show a code issued to ``user`` that they have not seen yet: the first person's code
    of a dual-control pair, or a resync code a dispatcher authorised. Once only."""
    secrets.check()
    lock = lock_for_atm(session, atm_id=atm_id, for_update=True)
    task = _task(session, task_id)
    _check_task(session, task, lock, user=user, now=now, timing=timing)
    assert user.id is not None
    cycle = open_cycle(session, lock)
    if (
        cycle is None
        or cycle.state is not IssuanceState.OUTSTANDING
        or cycle.task_id != task.id
        or user.id not in cycle.users
    ):
        raise Conflict(f"No code of lock {lock.lock_id} is waiting for you.")
    if user.id in cycle.shown_to:
        raise Conflict(
            "Your code was already shown once and cannot be shown again. If it is lost, ask a "
            "dispatcher to force-close it."
        )
    chain = LockChain.from_dict(lock.chain)
    policy = LockPolicy.from_dict(lock.policy)
    key = secrets.vault(session).get(lock.lock_id, chain.key_version)
    assert cycle.window is not None
    window = policy.window(cycle.window)
    if cycle.kind is IssuanceKind.RESYNC:
        code = otc.resync_code(key.secret, otc.ResyncContext(lock.lock_id, user.id, cycle.window))
        operation = ""
        dual_with = None
    else:
        assert cycle.operation is not None
        context = otc.CodeContext(
            lock.lock_id, user.id, Operation(cycle.operation), cycle.window, chain.seal
        )
        code = otc.opening_code(key.secret, context)
        operation = cycle.operation
        others = [u for u in cycle.users if u != user.id]
        dual_with = others[0] if others else None
    cycle.shown_to = [*cycle.shown_to, user.id]
    session.add(cycle)
    session.commit()
    assert task.id is not None
    return CodeOut(
        status="issued",
        lock_id=lock.lock_id,
        task_id=task.id,
        user_number=user.id,
        operation=operation,
        purpose=cycle.kind.value,
        code=code,
        valid_from=window.starts_at,
        valid_until=window.valid_until,
        dual_with=dual_with,
    )


# --- seals -----------------------------------------------------------------------------


def report_seal(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    task_id: int,
    seal: str,
    user: User,
    now: datetime,
) -> SealOut:
    """The engineer types the close seal the lock showed: it closes the code cycle.

    A wrong seal is counted and logged (and raises a warning alarm); at the limit the
    lock is blocked until a resync (a critical alarm). A seal showing duress raises a
    silent alarm for dispatchers; the engineer's answer is the same as without it.
    """
    secrets.check()
    lock = lock_for_atm(session, atm_id=atm_id, for_update=True)
    task = _task(session, task_id)
    _check_person(session, task, user)
    assert user.id is not None
    assert task.id is not None
    cycle = open_cycle(session, lock)
    if cycle is None or cycle.state is not IssuanceState.OUTSTANDING or cycle.task_id != task.id:
        raise Conflict(f"No code of lock {lock.lock_id} is out for task {task.id}: no seal is due.")
    chain = LockChain.from_dict(lock.chain)
    control = secrets.control(lock.policy)
    key = secrets.vault(session).get(lock.lock_id, chain.key_version)
    log = secrets.audit_log(session)
    atm = session.get(Atm, lock.atm_id)
    assert atm is not None
    context = {"by": user.username, "task": task.id, "atm": atm.terminal_id}
    try:
        confirmed = control.verify_seal(chain, key, seal, now=now)
    except InvalidArgument:
        raise InvalidInput("Type the 8 digits the lock shows after SEAL.", field="seal") from None
    except NothingOutstanding as exc:
        raise Conflict(str(exc)) from None
    except ChainBlocked as exc:
        raise Conflict(f"{exc}; ask a dispatcher to authorise a resync.") from None
    except InvalidSeal as error:
        _touch(session, lock, error.chain, now)
        log.append("seal-reported", {**mismatch_fields(error, seal), **context}, now=now)
        blocked = isinstance(error, SealLockout)
        if blocked:
            log.append(
                "lockout",
                {
                    "lock": lock.lock_id,
                    "source": "service",
                    "reason": "wrong close seals",
                    **context,
                },
                now=now,
            )
        lock_alarms.raise_alarm(
            session,
            log=log,
            lock=lock,
            kind=AlarmKind.LOCKOUT if blocked else AlarmKind.SEAL_MISMATCH,
            message=(
                f"Lock {lock.lock_id} blocked after {error.chain.seal_failures} wrong close "
                "seals; only a resync restores it."
                if blocked
                else f"A wrong close seal was reported for lock {lock.lock_id} by "
                f"{user.username}; {error.remaining_attempts} attempt(s) left."
            ),
            now=now,
            dedupe_key=f"seal:{cycle.id}:{error.chain.seal_failures}",
            task_id=task.id,
            issuance_id=cycle.id,
        )
        session.commit()
        if blocked:
            raise Conflict(
                "That seal does not match either, and the lock's codes are now blocked. "
                "Call your dispatcher: a resync is needed."
            ) from None
        raise InvalidInput(
            f"That seal does not match what the lock must have shown; check the display and "
            f"type it again. {error.remaining_attempts} attempt(s) left.",
            field="seal",
            extensions={"remaining_attempts": error.remaining_attempts},
        ) from None
    kind = "resync-confirmed" if confirmed.kind is CodeKind.RESYNC else "seal-reported"
    log.append(kind, {**confirmed.audit_fields(), **context}, now=now)
    if confirmed.duress:
        log.append(
            "duress",
            {
                "lock": lock.lock_id,
                "source": "service",
                "users": list(confirmed.users),
                "window": confirmed.window,
                **context,
            },
            now=now,
        )
        lock_alarms.raise_alarm(
            session,
            log=log,
            lock=lock,
            kind=AlarmKind.DURESS,
            message=(
                f"Duress at ATM {atm.terminal_id}: lock {lock.lock_id} was opened with a duress "
                f"code (task {task.id}). The engineer's page shows nothing."
            ),
            now=now,
            dedupe_key=lock_alarms.duress_key(lock.lock_id, confirmed.window, confirmed.users),
            task_id=task.id,
            issuance_id=cycle.id,
            details={"users": list(confirmed.users), "reported_by": user.username},
        )
    cycle.state = IssuanceState.SEALED
    cycle.closed_at = now
    cycle.closed_by = user.username
    cycle.open_key = None
    session.add(cycle)
    _touch(session, lock, confirmed.chain, now)
    session.commit()
    return SealOut(
        matched=True,
        lock_id=lock.lock_id,
        sequence=confirmed.chain.sequence,
        purpose=confirmed.kind.value,
    )


# --- the dispatcher's decisions --------------------------------------------------------


def force_close(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    reason: str,
    by: User,
    now: datetime,
) -> ForceClosedOut:
    """Abandon the open code cycle without a seal, with a reason. The lock cannot be told:
    the answer says until when the abandoned code still opens it."""
    secrets.check()
    if len(reason.strip()) < 3:
        raise InvalidInput("Say why the code is force-closed.", field="reason")
    lock = lock_for_atm(session, atm_id=atm_id, for_update=True)
    cycle = open_cycle(session, lock)
    log = secrets.audit_log(session)
    if cycle is None:
        raise Conflict(f"Lock {lock.lock_id} has no code out to close.")
    if cycle.state is IssuanceState.PENDING:
        cycle.state = IssuanceState.CANCELLED
        cycle.closed_at, cycle.closed_by, cycle.open_key = now, by.username, None
        cycle.reason = reason.strip()[:500]
        session.add(cycle)
        log.append(
            "code-request-cancelled",
            {"lock": lock.lock_id, "users": cycle.users, "by": by.username, "reason": cycle.reason},
            now=now,
        )
        session.commit()
        return ForceClosedOut(
            lock_id=lock.lock_id,
            abandoned_users=list(cycle.users),
            operation=cycle.operation,
            usable_until=None,
        )
    chain = LockChain.from_dict(lock.chain)
    try:
        closed = secrets.control(lock.policy).force_close(chain, now=now)
    except NothingOutstanding as exc:
        raise Conflict(str(exc)) from None
    log.append(
        "force-close",
        {
            **closed.audit_fields(),
            "by": by.username,
            "reason": reason.strip()[:500],
            "task": cycle.task_id,
        },
        now=now,
    )
    cycle.state = IssuanceState.FORCE_CLOSED
    cycle.closed_at, cycle.closed_by, cycle.open_key = now, by.username, None
    cycle.reason = reason.strip()[:500]
    cycle.valid_until = closed.usable_until
    session.add(cycle)
    _touch(session, lock, closed.chain, now)
    session.commit()
    return ForceClosedOut(
        lock_id=lock.lock_id,
        abandoned_users=list(closed.abandoned.users),
        operation=None if closed.abandoned.operation is None else closed.abandoned.operation.value,
        usable_until=closed.usable_until,
    )


def authorise_resync(
    session: Session,
    *,
    secrets: LockSecrets,
    atm_id: int,
    task_id: int,
    reason: str,
    by: User,
    now: datetime,
    timing: Timing,
) -> IssuancePublic:
    """A dispatcher restarts the lock's seal chain (a seal lost, the chain blocked): a resync
    code for the engineer on site at the task, who reveals it on their phone and keys it;
    the lock shows a seal, which they report. Any open cycle is superseded."""
    secrets.check()
    if len(reason.strip()) < 3:
        raise InvalidInput("Say why the lock needs a resync.", field="reason")
    lock = lock_for_atm(session, atm_id=atm_id, for_update=True)
    task = _task(session, task_id)
    if task.atm_id != lock.atm_id:
        raise InvalidInput(f"Task {task.id} is not at this lock's ATM.", field="task_id")
    if task.state is not TaskState.ON_SITE or task.engineer_id is None:
        raise Conflict(
            f"A resync is keyed by the engineer at the lock: task {task.id} is "
            f"{task.state.label}, not on site."
        )
    window = access_window(task, timing=timing)
    if window is None or not window[0] <= now <= window[1]:
        raise Conflict(f"Task {task.id} is outside its access window.")
    engineer = session.get(Engineer, task.engineer_id)
    assert engineer is not None
    chain = LockChain.from_dict(lock.chain)
    key = secrets.vault(session).get(lock.lock_id, chain.key_version)
    policy = LockPolicy.from_dict(lock.policy)
    try:
        issuance = secrets.control(lock.policy).issue_resync(
            chain, key, user=engineer.user_id, now=now
        )
    except (WindowUnavailable, LockCtlError) as exc:
        raise Conflict(str(exc)) from None
    log = secrets.audit_log(session)
    cycle = open_cycle(session, lock)
    if cycle is not None:
        cycle.state = IssuanceState.SUPERSEDED
        cycle.closed_at, cycle.closed_by, cycle.open_key = now, by.username, None
        cycle.reason = f"resync: {reason.strip()}"[:500]
        session.add(cycle)
        session.flush()
    code = issuance.codes[0]
    log.append(
        "resync-issued",
        {**code.audit_fields(), "by": by.username, "reason": reason.strip()[:500], "task": task.id},
        now=now,
    )
    fresh = LockIssuance(
        lock_pk=lock.id or 0,
        task_id=task.id,
        kind=IssuanceKind.RESYNC,
        state=IssuanceState.OUTSTANDING,
        window=code.window.index,
        users=[engineer.user_id],
        shown_to=[],
        requested_by=by.username,
        requested_at=now,
        issued_at=now,
        valid_until=code.window.valid_until,
        seal_due=_seal_due(policy, code.window.valid_until, timing),
        reason=reason.strip()[:500],
        open_key=_open_key(lock),
    )
    session.add(fresh)
    _touch(session, lock, issuance.chain, now)
    session.commit()
    return issuance_public(fresh)


def add_custodian(
    session: Session, *, task_id: int, engineer_id: int, by: User, now: datetime
) -> TaskCustodian:
    """Add the second person of a dual-control task."""
    task = _task(session, task_id)
    engineer = engineers.get_engineer(session, engineer_id=engineer_id)
    if task.engineer_id == engineer.id:
        raise InvalidInput(
            "The task's own engineer cannot be its second person.", field="engineer_id"
        )
    if task.state not in HELD_STATES:
        raise Conflict(f"Task {task.id} is {task.state.label}: nobody can be added to it.")
    if is_custodian(session, task_id=task_id, engineer_id=engineer_id):
        raise Conflict("That engineer is already the task's second person.", field="engineer_id")
    custodian = TaskCustodian(
        task_id=task_id, engineer_id=engineer_id, added_by=by.username, added_at=now
    )
    session.add(custodian)
    session.commit()
    return custodian


def custodians(session: Session, *, task_id: int) -> list[CustodianPublic]:
    rows = session.exec(
        select(TaskCustodian, User.full_name)
        .join(Engineer, col(Engineer.id) == col(TaskCustodian.engineer_id))
        .join(User, col(User.id) == col(Engineer.user_id))
        .where(col(TaskCustodian.task_id) == task_id)
        .order_by(col(TaskCustodian.id))
    )
    return [
        CustodianPublic(
            task_id=c.task_id,
            engineer_id=c.engineer_id,
            name=name,
            added_by=c.added_by,
            added_at=c.added_at,
        )
        for c, name in rows
    ]


def custody_tasks(session: Session, *, engineer_id: int) -> list[Task]:
    """Open tasks on which ``engineer_id`` is the second person."""
    return list(
        session.exec(
            select(Task)
            .join(TaskCustodian, col(TaskCustodian.task_id) == col(Task.id))
            .where(
                col(TaskCustodian.engineer_id) == engineer_id,
                col(Task.state).in_(list(HELD_STATES)),
            )
            .order_by(col(Task.id))
        )
    )


# --- what the engineer's page shows -------------------------------------------------------


@dataclass(frozen=True)
class LockPanel:
    """The safe-lock part of a task's page, for one person."""

    lock: Lock
    cycle: LockIssuance | None
    operation: Operation
    window: tuple[datetime, datetime] | None
    can_request: bool
    waiting_for_second: bool  # I asked first; the second person must ask
    second_may_ask: bool  # the other person asked first; I may ask now
    can_reveal: bool
    seal_due: bool
    waiting_until: datetime | None
    blocked: bool


def panel(
    session: Session, *, task: Task, user: User, now: datetime, timing: Timing
) -> LockPanel | None:
    lock = find_lock(session, atm_id=task.atm_id)
    if lock is None:
        return None
    assert user.id is not None
    chain = LockChain.from_dict(lock.chain)
    policy = LockPolicy.from_dict(lock.policy)
    cycle = open_cycle(session, lock)
    window = access_window(task, timing=timing)
    inside = (
        task.state is TaskState.ON_SITE and window is not None and window[0] <= now <= window[1]
    )
    mine = cycle is not None and cycle.task_id == task.id
    pending = mine and cycle is not None and cycle.state is IssuanceState.PENDING
    waiting_until = None
    if pending and cycle is not None:
        waiting_until = cycle.requested_at + timedelta(seconds=policy.dual_window_seconds)
        if now > waiting_until:
            pending = False
            cycle = None
            mine = False
    outstanding = mine and cycle is not None and cycle.state is IssuanceState.OUTSTANDING
    return LockPanel(
        lock=lock,
        cycle=cycle,
        operation=OPERATION_FOR_KIND[task.kind],
        window=window,
        can_request=inside and not chain.blocked and (cycle is None or pending),
        waiting_for_second=pending and cycle is not None and user.id in cycle.users,
        second_may_ask=pending and cycle is not None and user.id not in cycle.users,
        can_reveal=outstanding
        and cycle is not None
        and user.id in cycle.users
        and user.id not in cycle.shown_to,
        seal_due=outstanding,
        waiting_until=waiting_until,
        blocked=chain.blocked,
    )
