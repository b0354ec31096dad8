"""The service side: issuing, seals, blocking, force-close, resync, state round trips."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from lockctl import (
    ChainBlocked,
    ChainStatus,
    CodeKind,
    DualControlRequired,
    InvalidArgument,
    InvalidSeal,
    LockChain,
    LockControl,
    LockFirmware,
    LockKey,
    LockPolicy,
    NothingOutstanding,
    Operation,
    Outcome,
    SealLockout,
    SealOutstanding,
    WindowUnavailable,
    codes,
    mismatch_fields,
)
from tests.lockctl.conftest import LOCK, T0


def test_issue_records_proof_not_the_code(control: LockControl, key: LockKey) -> None:
    chain = control.provision(key)
    issuance = control.issue(chain, key, user=42, operation=Operation.OPEN, now=T0)
    issued = issuance.codes[0]
    assert issued.kind is CodeKind.OPENING
    assert issued.window.index == 498560
    assert issued.previous_chain == chain.chain_tag
    assert issued.code not in repr(issued)
    fields = issued.audit_fields()
    assert issued.code not in json.dumps(fields)
    assert fields["code_tag"] == issued.code_tag
    assert fields["valid_until"] == "2026-11-16T10:00:00Z"
    assert issuance.chain.status is ChainStatus.AWAITING_SEAL


def test_one_code_out_at_a_time(control: LockControl, key: LockKey) -> None:
    chain = control.issue(
        control.provision(key), key, user=42, operation=Operation.OPEN, now=T0
    ).chain
    with pytest.raises(SealOutstanding, match="close seal must be reported"):
        control.issue(chain, key, user=43, operation=Operation.OPEN, now=T0)


def test_dual_control_rules(key: LockKey) -> None:
    control = LockControl(LockPolicy(dual_control=frozenset({Operation.BANK})))
    chain = control.provision(key)
    with pytest.raises(DualControlRequired, match="needs two users"):
        control.issue(chain, key, user=42, operation=Operation.BANK, now=T0)
    with pytest.raises(DualControlRequired, match="single-user"):
        control.issue_dual(chain, key, users=(42, 7), operation=Operation.OPEN, now=T0)
    with pytest.raises(InvalidArgument, match="two different users"):
        control.issue_dual(chain, key, users=(42, 42), operation=Operation.BANK, now=T0)
    issuance = control.issue_dual(chain, key, users=(42, 7), operation=Operation.BANK, now=T0)
    first, second = issuance.codes
    assert (first.user, first.dual_with, second.user, second.dual_with) == (42, 7, 7, 42)
    assert first.code != second.code
    assert issuance.chain.outstanding is not None
    assert issuance.chain.outstanding.users == (7, 42)


def test_wrong_seals_count_then_block(control: LockControl, key: LockKey) -> None:
    issuance = control.issue(control.provision(key), key, user=42, operation=Operation.OPEN, now=T0)
    chain = issuance.chain
    remaining = []
    for _ in range(2):
        with pytest.raises(InvalidSeal) as failure:
            control.verify_seal(chain, key, "00000000", now=T0)
        assert not isinstance(failure.value, SealLockout)
        chain = failure.value.chain
        remaining.append(failure.value.remaining_attempts)
    assert remaining == [2, 1]
    with pytest.raises(SealLockout) as lockout:
        control.verify_seal(chain, key, "00000000", now=T0)
    chain = lockout.value.chain
    assert chain.status is ChainStatus.BLOCKED
    fields = mismatch_fields(lockout.value, "00000000")
    assert fields["blocked"] is True
    assert fields["remaining_attempts"] == 0
    with pytest.raises(ChainBlocked):
        control.issue(chain, key, user=42, operation=Operation.OPEN, now=T0)
    with pytest.raises(ChainBlocked):
        control.verify_seal(chain, key, "00000000", now=T0)


def test_seal_typos_are_refused_without_counting(control: LockControl, key: LockKey) -> None:
    chain = control.issue(
        control.provision(key), key, user=42, operation=Operation.OPEN, now=T0
    ).chain
    with pytest.raises(InvalidArgument, match="8 digits"):
        control.verify_seal(chain, key, "1234567", now=T0)


def test_no_seal_without_an_outstanding_code(control: LockControl, key: LockKey) -> None:
    with pytest.raises(NothingOutstanding):
        control.verify_seal(control.provision(key), key, "12345678", now=T0)
    with pytest.raises(NothingOutstanding):
        control.force_close(control.provision(key), now=T0)


def test_resync_unblocks_and_restarts_the_chain(
    control: LockControl, key: LockKey, firmware: LockFirmware
) -> None:
    """A lost seal: the lock advanced, the service did not; a resync brings them together."""
    state = firmware.initial_state()
    chain = control.provision(key)
    issuance = control.issue(chain, key, user=42, operation=Operation.OPEN, now=T0)
    state = firmware.enter(state, user=42, code=issuance.codes[0].code, now=T0).state
    state = firmware.relock(state, now=T0).state  # the seal is lost
    closed = control.force_close(issuance.chain, now=T0)
    assert closed.audit_fields()["purpose"] == "opening"
    chain = closed.chain
    later = T0 + timedelta(hours=1)
    stale = control.issue(chain, key, user=42, operation=Operation.OPEN, now=later)
    assert firmware.enter(state, user=42, code=stale.codes[0].code, now=later).outcome is (
        Outcome.WRONG_CODE
    )

    resync = control.issue_resync(stale.chain, key, user=42, now=later)
    assert resync.codes[0].kind is CodeKind.RESYNC
    assert resync.codes[0].operation is None
    entry = firmware.enter(state, user=42, code=resync.codes[0].code, now=later)
    assert entry.outcome is Outcome.RESYNCED
    assert entry.seal is not None
    confirmed = control.verify_seal(resync.chain, key, entry.seal, now=later)
    assert confirmed.kind is CodeKind.RESYNC
    chain = confirmed.chain
    assert chain.seal == entry.state.seal
    assert chain.status is ChainStatus.READY

    fresh = control.issue(chain, key, user=42, operation=Operation.OPEN, now=later)
    assert firmware.enter(entry.state, user=42, code=fresh.codes[0].code, now=later).outcome is (
        Outcome.OPENED
    )


def test_resync_once_per_window_but_repeatable(control: LockControl, key: LockKey) -> None:
    chain = control.provision(key)
    first = control.issue_resync(chain, key, user=42, now=T0)
    again = control.issue_resync(first.chain, key, user=42, now=T0 + timedelta(minutes=5))
    assert again.codes[0].code == first.codes[0].code
    with pytest.raises(WindowUnavailable, match="next resync can be issued from 2026-11-16T09:00"):
        control.issue_resync(first.chain, key, user=43, now=T0)
    nxt = control.issue_resync(first.chain, key, user=43, now=T0 + timedelta(hours=1))
    assert nxt.codes[0].window.index == 498561


def test_resync_seal_lockout_keeps_the_chain_blocked(control: LockControl, key: LockKey) -> None:
    chain = control.issue_resync(control.provision(key), key, user=42, now=T0).chain
    for _ in range(3):
        with pytest.raises(InvalidSeal) as failure:
            control.verify_seal(chain, key, "00000000", now=T0)
        chain = failure.value.chain
    assert chain.blocked
    assert chain.outstanding is None


def test_windows_that_cannot_be_issued(control: LockControl, key: LockKey) -> None:
    chain = control.provision(key)
    with pytest.raises(WindowUnavailable, match="ended"):
        control.issue(chain, key, user=42, operation=Operation.OPEN, now=T0, window=498550)
    with pytest.raises(WindowUnavailable, match="ahead"):
        control.issue(chain, key, user=42, operation=Operation.OPEN, now=T0, window=498560 + 200)
    ahead = control.issue(chain, key, user=42, operation=Operation.OPEN, now=T0, window=498570)
    assert ahead.codes[0].window.starts_at == T0 - timedelta(minutes=10) + timedelta(hours=10)


def test_bad_arguments_name_the_problem(control: LockControl, key: LockKey) -> None:
    chain = control.provision(key)
    other = LockKey("CX-999", 1, bytes(32))
    with pytest.raises(InvalidArgument, match="key is for lock CX-999"):
        control.issue(chain, other, user=42, operation=Operation.OPEN, now=T0)
    with pytest.raises(InvalidArgument, match="user must be"):
        control.issue(chain, key, user=0, operation=Operation.OPEN, now=T0)
    with pytest.raises(InvalidArgument, match="unknown operation"):
        control.issue(chain, key, user=1, operation="teleport", now=T0)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="timezone-aware"):
        control.issue(chain, key, user=1, operation=Operation.OPEN, now=T0.replace(tzinfo=None))
    restricted = LockControl(LockPolicy(operations=frozenset({Operation.ROUTE})))
    with pytest.raises(InvalidArgument, match="does not allow operation open"):
        restricted.issue(chain, key, user=1, operation=Operation.OPEN, now=T0)


def test_chain_round_trips_through_json(control: LockControl, key: LockKey) -> None:
    chain = control.issue(
        control.provision(key), key, user=42, operation=Operation.ROUTE, now=T0
    ).chain
    restored = LockChain.from_dict(json.loads(json.dumps(chain.to_dict())))
    assert restored == chain
    with pytest.raises(InvalidArgument, match="lacks 'seal'"):
        LockChain.from_dict({"lock": LOCK, "key_version": 1})
    with pytest.raises(InvalidArgument):
        LockChain.from_dict({**chain.to_dict(), "seal": "not base64!"})


def test_policy_validation_names_the_field() -> None:
    with pytest.raises(InvalidArgument, match="window_seconds"):
        LockPolicy(window_seconds=10)
    with pytest.raises(InvalidArgument, match="clock_skew_seconds"):
        LockPolicy(window_seconds=600, clock_skew_seconds=301)
    with pytest.raises(InvalidArgument, match="dual_control names operations"):
        LockPolicy(operations=frozenset({Operation.OPEN}), dual_control=frozenset({Operation.BANK}))
    with pytest.raises(InvalidArgument, match="unknown fields: colour"):
        LockPolicy.from_dict({"colour": "red"})
    policy = LockPolicy(dual_control=frozenset({Operation.BANK}))
    assert LockPolicy.from_dict(policy.to_dict()) == policy


def test_key_and_code_validation() -> None:
    with pytest.raises(InvalidArgument, match="lock_id"):
        LockKey("bad lock", 1, bytes(32))
    with pytest.raises(InvalidArgument, match="secret must be 32 bytes"):
        LockKey(LOCK, 1, bytes(16))
    assert "secret" not in repr(LockKey(LOCK, 1, bytes(32)))
    assert codes.duress_code("12345679") == "12345670"
    assert codes.normalize(" 1234-5678 ") == "12345678"
