"""Properties of codes, seals and exports, over generated locks, users, times and logs.

- a code never opens another lock, user, operation or window;
- a used code never opens twice;
- the seal chain breaks if a seal is skipped;
- any change, removal, repetition or reordering of an exported entry fails verification,
  and single-entry changes are blamed on the right entry.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from lockctl import (
    AuditLog,
    CheckpointSigner,
    ExportInvalid,
    LockControl,
    LockFirmware,
    LockKey,
    LockPolicy,
    LockState,
    MemoryLogStore,
    Operation,
    Outcome,
    PublicKeys,
    verify_export,
)

POLICY = LockPolicy()
SIGNER = CheckpointSigner.from_seed(bytes(range(32)))
KEYS = PublicKeys([SIGNER.public_key])

lock_ids = st.from_regex(r"[A-Z][A-Z0-9-]{0,11}", fullmatch=True)
users = st.integers(min_value=1, max_value=999_999_999)
operations = st.sampled_from(list(Operation))
secrets_ = st.binary(min_size=32, max_size=32)
# any time from 2020 to 2040, to the second
moments = st.integers(min_value=1_577_836_800, max_value=2_208_988_800).map(
    lambda s: datetime.fromtimestamp(s, UTC)
)


def issue(key: LockKey, user: int, operation: Operation, now: datetime) -> str:
    control = LockControl(POLICY)
    return (
        control.issue(control.provision(key), key, user=user, operation=operation, now=now)
        .codes[0]
        .code
    )


@given(secret=secrets_, lock=lock_ids, other=lock_ids, user=users, op=operations, now=moments)
def test_a_code_never_opens_another_lock(
    secret: bytes, lock: str, other: str, user: int, op: Operation, now: datetime
) -> None:
    assume(lock != other)
    code = issue(LockKey(lock, 1, secret), user, op, now)
    # the other lock, even with the same key and the same chain position, refuses it
    same_key = LockFirmware(LockKey(other, 1, secret), POLICY)
    state = same_key.initial_state()
    own_seal = LockFirmware(LockKey(lock, 1, secret), POLICY).initial_state().seal
    state_same_seal = LockState(seal=own_seal)
    assert not same_key.accepts(state, user=user, code=code, now=now)
    assert not same_key.accepts(state_same_seal, user=user, code=code, now=now)
    own = LockFirmware(LockKey(lock, 1, secret), POLICY)
    assert own.accepts(own.initial_state(), user=user, code=code, now=now)


@given(secret=secrets_, user=users, other=users, op=operations, now=moments)
def test_a_code_never_opens_for_another_user(
    secret: bytes, user: int, other: int, op: Operation, now: datetime
) -> None:
    assume(user != other)
    key = LockKey("CX-1", 1, secret)
    code = issue(key, user, op, now)
    firmware = LockFirmware(key, POLICY)
    assert not firmware.accepts(firmware.initial_state(), user=other, code=code, now=now)


@given(secret=secrets_, user=users, op=operations, other=operations, now=moments)
def test_a_code_never_opens_for_another_operation(
    secret: bytes, user: int, op: Operation, other: Operation, now: datetime
) -> None:
    assume(op != other)
    key = LockKey("CX-1", 1, secret)
    code = issue(key, user, op, now)
    only_other = LockFirmware(key, LockPolicy(operations=frozenset({other})))
    assert not only_other.accepts(only_other.initial_state(), user=user, code=code, now=now)
    entry = LockFirmware(key, POLICY).enter(
        only_other.initial_state(), user=user, code=code, now=now
    )
    assert entry.outcome is Outcome.OPENED
    assert entry.state.opening is not None
    assert entry.state.opening.operation is op


@given(
    secret=secrets_,
    user=users,
    op=operations,
    now=moments,
    shift=st.one_of(
        st.integers(min_value=-10_000_000, max_value=-306),
        st.integers(min_value=2 * 3600 + 301, max_value=10_000_000),
    ),
)
def test_a_code_never_opens_outside_its_window(
    secret: bytes, user: int, op: Operation, now: datetime, shift: int
) -> None:
    key = LockKey("CX-1", 1, secret)
    window = POLICY.window(POLICY.window_index(now))
    code = issue(key, user, op, now)
    firmware = LockFirmware(key, POLICY)
    at = window.starts_at + timedelta(seconds=shift)
    assert not firmware.accepts(firmware.initial_state(), user=user, code=code, now=at)


@given(
    secret=secrets_,
    user=users,
    op=operations,
    now=moments,
    delays=st.lists(st.integers(min_value=0, max_value=3600), min_size=1, max_size=4),
)
def test_a_used_code_never_opens_twice(
    secret: bytes, user: int, op: Operation, now: datetime, delays: list[int]
) -> None:
    key = LockKey("CX-1", 1, secret)
    code = issue(key, user, op, now)
    firmware = LockFirmware(key, POLICY)
    state = firmware.enter(firmware.initial_state(), user=user, code=code, now=now).state
    assert state.opening is not None
    state = firmware.relock(state, now=now).state
    at = now
    for delay in delays:
        at += timedelta(seconds=delay)
        entry = firmware.enter(state, user=user, code=code, now=at)
        assert entry.outcome is not Outcome.OPENED
        state = entry.state


@given(secret=secrets_, user=users, second=users, op=operations, now=moments)
def test_the_seal_chain_breaks_when_a_seal_is_skipped(
    secret: bytes, user: int, second: int, op: Operation, now: datetime
) -> None:
    key = LockKey("CX-1", 1, secret)
    control = LockControl(POLICY)
    firmware = LockFirmware(key, POLICY)
    chain = control.provision(key)
    state = firmware.initial_state()
    issuance = control.issue(chain, key, user=user, operation=op, now=now)
    state = firmware.enter(state, user=user, code=issuance.codes[0].code, now=now).state
    state = firmware.relock(state, now=now).state  # seal shown, never reported
    chain = control.force_close(issuance.chain, now=now).chain
    later = now + timedelta(minutes=30)
    next_code = control.issue(chain, key, user=second, operation=op, now=later).codes[0].code
    assert not firmware.accepts(state, user=second, code=next_code, now=later)


# -- exports ---------------------------------------------------------------------


def build_export(entries: int, checkpoint_every: int) -> list[bytes]:
    log = AuditLog(MemoryLogStore(), SIGNER, log_id="prop", checkpoint_every=checkpoint_every)
    t = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)
    for n in range(entries):
        log.append("code-issued", {"lock": f"L{n % 3}", "user": n, "note": "x" * (n % 5)}, now=t)
        t += timedelta(minutes=n % 7)
    out = io.BytesIO()
    log.export(out, now=t, by="auditor")
    return out.getvalue().splitlines(keepends=True)


def entry_lines(lines: list[bytes]) -> list[int]:
    return [n for n, line in enumerate(lines) if line.startswith(b'{"prev"')]


def verify(lines: list[bytes]) -> ExportInvalid:
    with pytest.raises(ExportInvalid) as failure:
        verify_export(lines, KEYS)
    return failure.value


exports = st.tuples(st.integers(2, 30), st.integers(1, 8)).map(lambda a: build_export(*a))


@given(lines=exports, data=st.data())
def test_any_changed_entry_is_caught_and_named(lines: list[bytes], data: st.DataObject) -> None:
    assert verify_export(lines, KEYS).end == len(entry_lines(lines))
    index = data.draw(st.integers(0, len(entry_lines(lines)) - 1))
    position = entry_lines(lines)[index]
    line = lines[position]
    start = line.index(b'"time"')
    at = data.draw(st.integers(start, len(line) - 2))
    replacement = data.draw(
        st.sampled_from(b'0123456789abcxyz:,{}"\\ ').filter(lambda b: b != line[at])
    )
    lines[position] = line[:at] + bytes((replacement,)) + line[at + 1 :]
    failure = verify(lines)
    assert failure.index == index


@given(lines=exports, data=st.data())
def test_any_removed_entry_is_caught_and_named(lines: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(entry_lines(lines)) - 1))
    del lines[entry_lines(lines)[index]]
    assert verify(lines).index == index


@given(lines=exports, data=st.data())
def test_any_swap_or_repeat_is_caught(lines: list[bytes], data: st.DataObject) -> None:
    positions = entry_lines(lines)
    a = data.draw(st.integers(0, len(positions) - 2))
    b = data.draw(st.integers(a + 1, len(positions) - 1))
    if data.draw(st.booleans()):
        lines[positions[a]], lines[positions[b]] = lines[positions[b]], lines[positions[a]]
        assert verify(lines).index == a
    else:
        lines.insert(positions[b], lines[positions[a]])
        assert verify(lines).index == b


@given(lines=exports, data=st.data())
def test_any_cut_or_changed_prev_or_checkpoint_is_caught(
    lines: list[bytes], data: st.DataObject
) -> None:
    choice = data.draw(st.sampled_from(["truncate", "prev", "checkpoint", "drop-head"]))
    if choice == "truncate":
        del lines[data.draw(st.integers(1, len(lines) - 1)) :]
    elif choice == "prev":
        position = data.draw(st.sampled_from(entry_lines(lines)))
        line = lines[position]
        digit = b"1" if line[9:10] != b"1" else b"2"
        lines[position] = line[:9] + digit + line[10:]
    elif choice == "checkpoint":
        positions = [n for n, line in enumerate(lines) if line.startswith(b'{"checkpoint"')]
        position = data.draw(st.sampled_from(positions))
        lines[position] = lines[position].replace(b'"size":', b'"size":1', 1)
    else:
        del lines[1]
    verify(lines)
