"""The lock's offline decisions: windows, lockout, dual control, duress, resync, relock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from lockctl import (
    EventKind,
    LockControl,
    LockFirmware,
    LockKey,
    LockPolicy,
    LockState,
    LockStatus,
    NotOpen,
    Operation,
    Outcome,
    codes,
)
from lockctl.codes import CodeContext, ResyncContext
from tests.lockctl.conftest import LOCK, T0


def code_for(
    key: LockKey,
    state: LockState,
    *,
    user: int = 42,
    operation: Operation = Operation.OPEN,
    window: int = 498560,
) -> str:
    return codes.opening_code(key.secret, CodeContext(LOCK, user, operation, window, state.seal))


def test_a_good_code_opens_and_relocking_shows_the_seal(
    firmware: LockFirmware, key: LockKey
) -> None:
    state = firmware.initial_state()
    entry = firmware.enter(state, user=42, code=code_for(key, state), now=T0)
    assert entry.outcome is Outcome.OPENED
    assert entry.state.status(T0) is LockStatus.OPEN
    assert [e.kind for e in entry.events] == [EventKind.OPENED]
    assert not entry.duress
    relocked = firmware.relock(entry.state, now=T0 + timedelta(minutes=20))
    assert len(relocked.seal) == 8
    assert relocked.state.sequence == 1
    assert relocked.state.seal != state.seal
    assert relocked.events[0].kind is EventKind.CLOSED
    assert relocked.events[0].seal == relocked.seal
    assert relocked.state.status(T0) is LockStatus.LOCKED


def test_codes_are_accepted_with_spaces_and_hyphens(firmware: LockFirmware, key: LockKey) -> None:
    state = firmware.initial_state()
    code = code_for(key, state)
    entry = firmware.enter(state, user=42, code=f"{code[:4]}-{code[4:]}", now=T0)
    assert entry.outcome is Outcome.OPENED


def test_relock_when_not_open_is_refused(firmware: LockFirmware) -> None:
    with pytest.raises(NotOpen):
        firmware.relock(firmware.initial_state(), now=T0)


def test_entries_while_open_are_ignored(firmware: LockFirmware, key: LockKey) -> None:
    state = firmware.enter(
        firmware.initial_state(),
        user=42,
        code=code_for(key, firmware.initial_state()),
        now=T0,
    ).state
    again = firmware.enter(state, user=42, code="00000000", now=T0)
    assert again.outcome is Outcome.ALREADY_OPEN
    assert again.state == state


def test_windows_lookback_and_skew(firmware: LockFirmware, key: LockKey) -> None:
    state = firmware.initial_state()
    code = code_for(key, state, window=498560)  # 08:00-09:00, valid until 10:00 (+5 min)
    start = firmware.policy.window(498560).starts_at
    assert firmware.accepts(state, user=42, code=code, now=start - timedelta(minutes=5))
    assert not firmware.accepts(state, user=42, code=code, now=start - timedelta(minutes=6))
    assert firmware.accepts(state, user=42, code=code, now=start + timedelta(minutes=119))
    assert firmware.accepts(state, user=42, code=code, now=start + timedelta(minutes=124))
    assert not firmware.accepts(state, user=42, code=code, now=start + timedelta(minutes=125))


def test_five_wrong_codes_start_a_growing_penalty(firmware: LockFirmware, key: LockKey) -> None:
    state = firmware.initial_state()
    now = T0
    for expected_penalty in (900, 1800, 3600, 7200, 14400, 28800, 28800):
        for n in range(5):
            entry = firmware.enter(state, user=42, code="00000000", now=now)
            state = entry.state
            assert entry.outcome is (Outcome.LOCKED_OUT if n == 4 else Outcome.WRONG_CODE)
        assert state.penalty_until == now + timedelta(seconds=expected_penalty)
        assert entry.events[-1].kind is EventKind.LOCKOUT
        assert entry.events[-1].until == state.penalty_until
        # during the penalty even the right code is ignored, and not counted
        blocked = firmware.enter(state, user=42, code=code_for(key, state), now=now)
        assert blocked.outcome is Outcome.IN_PENALTY
        assert blocked.state == state
        assert state.status(now) is LockStatus.PENALTY
        now = state.penalty_until
    assert state.lockouts == 7


def test_a_good_code_resets_the_counts(firmware: LockFirmware, key: LockKey) -> None:
    state = firmware.initial_state()
    for _ in range(5):
        state = firmware.enter(state, user=42, code="11111111", now=T0).state
    assert state.lockouts == 1
    now = state.penalty_until
    assert now is not None
    state = firmware.enter(state, user=42, code="11111111", now=now).state
    assert state.failures == 1
    state = firmware.enter(state, user=42, code=code_for(key, state), now=now).state
    assert (state.failures, state.lockouts, state.penalty_until) == (0, 0, None)


def test_malformed_codes_count_as_wrong(firmware: LockFirmware) -> None:
    state = firmware.initial_state()
    for typed in ("", "1234", "123456789", "abcdefgh", "１２３４５６７８"):
        entry = firmware.enter(state, user=42, code=typed, now=T0)
        assert entry.outcome in (Outcome.WRONG_CODE, Outcome.LOCKED_OUT)
        state = entry.state
    assert state.lockouts == 1


def test_duress_opens_flags_and_seals_as_duress(
    firmware: LockFirmware, key: LockKey, control: LockControl
) -> None:
    chain = control.provision(key)
    issuance = control.issue(chain, key, user=42, operation=Operation.FLM, now=T0)
    state = firmware.initial_state()
    duress = codes.duress_code(issuance.codes[0].code)
    entry = firmware.enter(state, user=42, code=duress, now=T0)
    assert entry.outcome is Outcome.OPENED
    assert entry.duress
    assert [e.kind for e in entry.events] == [EventKind.OPENED, EventKind.DURESS]
    relocked = firmware.relock(entry.state, now=T0 + timedelta(minutes=3))
    confirmed = control.verify_seal(issuance.chain, key, relocked.seal, now=T0)
    assert confirmed.duress
    assert confirmed.audit_fields()["duress"] is True


def test_a_normal_opening_seals_as_normal(
    firmware: LockFirmware, key: LockKey, control: LockControl
) -> None:
    issuance = control.issue(control.provision(key), key, user=42, operation=Operation.OPEN, now=T0)
    entry = firmware.enter(firmware.initial_state(), user=42, code=issuance.codes[0].code, now=T0)
    relocked = firmware.relock(entry.state, now=T0)
    assert not control.verify_seal(issuance.chain, key, relocked.seal, now=T0).duress


@pytest.fixture
def dual(key: LockKey) -> LockFirmware:
    return LockFirmware(key, LockPolicy(dual_control=frozenset({Operation.BANK})))


def test_dual_control_needs_two_different_users_in_time(dual: LockFirmware, key: LockKey) -> None:
    state = dual.initial_state()
    first = dual.enter(
        state, user=7, code=code_for(key, state, user=7, operation=Operation.BANK), now=T0
    )
    assert first.outcome is Outcome.FIRST_CODE
    assert first.state.status(T0) is LockStatus.DUAL_WAITING
    same = dual.enter(
        first.state,
        user=7,
        code=code_for(key, state, user=7, operation=Operation.BANK),
        now=T0,
    )
    assert same.outcome is Outcome.SAME_USER
    assert same.state.failures == 0
    second = dual.enter(
        same.state,
        user=42,
        code=code_for(key, state, user=42, operation=Operation.BANK),
        now=T0 + timedelta(seconds=119),
    )
    assert second.outcome is Outcome.OPENED
    assert second.state.opening is not None
    assert second.state.opening.users == (7, 42)


def test_dual_control_first_code_expires(dual: LockFirmware, key: LockKey) -> None:
    state = dual.initial_state()
    bank7 = code_for(key, state, user=7, operation=Operation.BANK)
    bank42 = code_for(key, state, user=42, operation=Operation.BANK)
    state = dual.enter(state, user=7, code=bank7, now=T0).state
    late = dual.enter(state, user=42, code=bank42, now=T0 + timedelta(seconds=121))
    # the first code expired; the second becomes a new first code
    assert late.outcome is Outcome.FIRST_CODE
    assert [e.kind for e in late.events] == [EventKind.DUAL_EXPIRED, EventKind.FIRST_CODE]
    assert late.state.first_code is not None
    assert late.state.first_code.user == 42


def test_dual_control_second_code_must_match_operation_and_window(
    key: LockKey,
) -> None:
    firmware = LockFirmware(
        key, LockPolicy(dual_control=frozenset({Operation.BANK, Operation.ROUTE}))
    )
    state = firmware.initial_state()
    state = firmware.enter(
        state, user=7, code=code_for(key, state, user=7, operation=Operation.BANK), now=T0
    ).state
    other_op = firmware.enter(
        state, user=42, code=code_for(key, state, user=42, operation=Operation.ROUTE), now=T0
    )
    assert other_op.outcome is Outcome.DUAL_MISMATCH
    other_window = firmware.enter(
        state,
        user=42,
        code=code_for(key, state, user=42, operation=Operation.BANK, window=498559),
        now=T0,
    )
    assert other_window.outcome is Outcome.DUAL_MISMATCH


def test_single_user_operations_still_open_alone_under_dual_policy(
    dual: LockFirmware, key: LockKey
) -> None:
    state = dual.initial_state()
    assert dual.enter(state, user=42, code=code_for(key, state), now=T0).outcome is Outcome.OPENED


def test_a_spent_first_code_cannot_start_dual_control_again(
    dual: LockFirmware, key: LockKey
) -> None:
    state = dual.initial_state()
    bank7 = code_for(key, state, user=7, operation=Operation.BANK)
    bank42 = code_for(key, state, user=42, operation=Operation.BANK)
    state = dual.enter(state, user=7, code=bank7, now=T0).state
    state = dual.enter(state, user=42, code=bank42, now=T0).state
    assert state.opening is not None
    # suppose the bolt is somehow still at this chain position: spent codes refuse
    reopened = replace(state, opening=None)
    again = dual.enter(reopened, user=7, code=bank7, now=T0)
    assert again.outcome is Outcome.USED_CODE
    assert again.state.failures == 1


def test_resync_restarts_the_chain_once_per_window(firmware: LockFirmware, key: LockKey) -> None:
    state = firmware.initial_state()
    for _ in range(5):
        state = firmware.enter(state, user=42, code="99999999", now=T0).state
    assert state.penalty_until is not None
    now = state.penalty_until
    resync = codes.resync_code(
        key.secret, ResyncContext(LOCK, 42, firmware.policy.window_index(now))
    )
    entry = firmware.enter(state, user=42, code=resync, now=now)
    assert entry.outcome is Outcome.RESYNCED
    assert entry.state.opening is None  # a resync does not open
    expected = codes.resync_seal_value(
        key.secret, ResyncContext(LOCK, 42, firmware.policy.window_index(now))
    )
    assert entry.state.seal == expected
    assert entry.seal == codes.seal_digits(expected)
    assert entry.state.lockouts == 0
    again = firmware.enter(entry.state, user=42, code=resync, now=now)
    assert again.outcome is Outcome.USED_CODE


def test_candidate_count_matches_the_policy(firmware: LockFirmware) -> None:
    inside = T0 + timedelta(minutes=20)
    boundary = firmware.policy.window(498561).starts_at - timedelta(minutes=1)
    assert firmware.candidate_count(inside) == 2 * 9
    assert firmware.candidate_count(boundary) == 3 * 9
