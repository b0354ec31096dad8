"""The test vectors of docs/otc.md and docs/lock-log.md, read from the documents.

Each OTC vector is checked twice: against ``lockctl.codes`` and against a
from-the-text implementation written here from the spec's formulas, so the
document, not just the code, is what the vectors pin down.
"""

from __future__ import annotations

import hashlib
import hmac
import io
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from lockctl import (
    AuditLog,
    CheckpointSigner,
    EntryKind,
    EventKind,
    ExportInvalid,
    InvalidSeal,
    LockControl,
    LockEvent,
    LockFirmware,
    LockKey,
    LockPolicy,
    MemoryLogStore,
    Operation,
    PublicKeys,
    codes,
    entry_for_event,
    mismatch_fields,
    verify_export,
)
from lockctl.codes import CodeContext, ResyncContext, SealContext
from tests.lockctl.docs import example_export, otc_vectors

VECTORS = otc_vectors()
KEY = bytes.fromhex(VECTORS["key"])
LOCK = VECTORS["lock_id"]
RFC8032_SEED = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")


# -- the spec's formulas, written out independently --------------------------------


def F(data: bytes) -> bytes:
    return bytes((len(data),)) + data


def U(number: int) -> bytes:
    return number.to_bytes(8, "big")


def D(mac: bytes) -> str:
    return f"{int.from_bytes(mac[:8], 'big') % 10**8:08d}"


def H(message: bytes) -> bytes:
    return hmac.new(KEY, message, hashlib.sha256).digest()


def spec_initial(version: int) -> bytes:
    return H(F(b"atm-lock/init/v1") + F(LOCK.encode()) + U(version))


def spec_code_message(user: int, operation: str, window: int, seal: bytes) -> bytes:
    return (
        F(b"atm-lock/otc/v1")
        + F(LOCK.encode())
        + U(user)
        + F(operation.encode())
        + U(window)
        + F(seal)
    )


def spec_seal_message(
    users: list[int], operation: str, window: int, seal: bytes, duress: bool
) -> bytes:
    ordered = sorted(users)
    return (
        F(b"atm-lock/seal/v1")
        + F(LOCK.encode())
        + U(len(ordered))
        + b"".join(U(u) for u in ordered)
        + F(operation.encode())
        + U(window)
        + F(seal)
        + U(1 if duress else 0)
    )


def spec_duress(code: str) -> str:
    return code[:-1] + str((int(code[-1]) + 1) % 10)


INITIAL = spec_initial(VECTORS["key_version"])


def test_initial_seal() -> None:
    vector = VECTORS["initial_seal"]
    assert INITIAL.hex() == vector["value"]
    assert codes.initial_seal_value(KEY, LOCK, 1).hex() == vector["value"]
    assert codes.seal_digits(INITIAL) == D(INITIAL) == vector["digits"]
    assert codes.chain_tag(INITIAL) == vector["chain_tag"]
    chain_tag = hashlib.sha256(F(b"atm-lock/chain-tag/v1") + F(INITIAL)).digest()[:16].hex()
    assert chain_tag == vector["chain_tag"]


@pytest.mark.parametrize("vector", VECTORS["codes"], ids=lambda v: f"{v['user']}-{v['operation']}")
def test_opening_codes(vector: dict[str, Any]) -> None:
    assert vector["previous_seal"] == "initial"
    message = spec_code_message(vector["user"], vector["operation"], vector["window"], INITIAL)
    assert message.hex() == vector["message"]
    assert D(H(message)) == vector["code"]
    assert spec_duress(vector["code"]) == vector["duress_code"]
    tag = H(F(b"atm-lock/code-tag/v1") + message)[:16].hex()
    assert tag == vector["code_tag"]

    context = CodeContext(
        LOCK, vector["user"], Operation(vector["operation"]), vector["window"], INITIAL
    )
    assert context.message().hex() == vector["message"]
    assert codes.opening_code(KEY, context) == vector["code"]
    assert codes.duress_code(vector["code"]) == vector["duress_code"]
    assert codes.code_tag(KEY, context) == vector["code_tag"]
    codes.verify_opening_code(KEY, context, vector["code"])


def test_the_vectors_include_a_duress_wrap_around() -> None:
    assert any(v["code"].endswith("9") and v["duress_code"].endswith("0") for v in VECTORS["codes"])


@pytest.mark.parametrize(
    "vector", VECTORS["seals"], ids=lambda v: f"{v['operation']}-duress{v['duress']}"
)
def test_close_seals(vector: dict[str, Any]) -> None:
    message = spec_seal_message(
        vector["users"], vector["operation"], vector["window"], INITIAL, vector["duress"]
    )
    assert message.hex() == vector["message"]
    assert H(message).hex() == vector["value"]
    assert D(H(message)) == vector["digits"]
    context = SealContext(
        LOCK,
        tuple(vector["users"]),
        Operation(vector["operation"]),
        vector["window"],
        INITIAL,
        vector["duress"],
    )
    value = codes.seal_value(KEY, context)
    assert value.hex() == vector["value"]
    assert codes.seal_digits(value) == vector["digits"]
    assert codes.chain_tag(value) == vector["chain_tag"]


@pytest.mark.parametrize("vector", VECTORS["resync"], ids=lambda v: str(v["window"]))
def test_resync(vector: dict[str, Any]) -> None:
    fields = F(LOCK.encode()) + U(vector["user"]) + U(vector["window"])
    assert (F(b"atm-lock/resync/v1") + fields).hex() == vector["message"]
    assert D(H(F(b"atm-lock/resync/v1") + fields)) == vector["code"]
    assert H(F(b"atm-lock/resync-seal/v1") + fields).hex() == vector["seal_value"]
    context = ResyncContext(LOCK, vector["user"], vector["window"])
    assert codes.resync_code(KEY, context) == vector["code"]
    value = codes.resync_seal_value(KEY, context)
    assert value.hex() == vector["seal_value"]
    assert codes.seal_digits(value) == vector["seal_digits"]


def test_chain_of_openings_through_firmware_and_service() -> None:
    """The vectors' chain, played through the lock firmware and the service."""
    policy = LockPolicy()
    key = LockKey(LOCK, 1, KEY)
    firmware = LockFirmware(key, policy)
    control = LockControl(policy)
    state = firmware.initial_state()
    chain = control.provision(key)
    seal = INITIAL
    for step in VECTORS["chain"]:
        message = spec_code_message(step["user"], step["operation"], step["window"], seal)
        assert D(H(message)) == step["code"]
        seal = H(spec_seal_message([step["user"]], step["operation"], step["window"], seal, False))
        assert seal.hex() == step["seal_value"]
        assert D(seal) == step["seal"]

        now = policy.window(step["window"]).starts_at + timedelta(minutes=5)
        issuance = control.issue(
            chain, key, user=step["user"], operation=Operation(step["operation"]), now=now
        )
        assert issuance.codes[0].code == step["code"]
        entry = firmware.enter(state, user=step["user"], code=step["code"], now=now)
        relocked = firmware.relock(entry.state, now=now + timedelta(minutes=10))
        assert relocked.seal == step["seal"]
        state = relocked.state
        chain = control.verify_seal(issuance.chain, key, step["seal"], now=now).chain
        assert chain.seal.hex() == step["seal_value"]


@pytest.mark.parametrize("example", VECTORS["windows"]["examples"], ids=lambda e: str(e["time"]))
def test_windows(example: dict[str, Any]) -> None:
    settings = VECTORS["windows"]["policy"]
    policy = LockPolicy(**settings)
    moment = datetime.fromisoformat(example["time"])
    assert policy.window_index(moment) == example["window"]
    assert list(policy.accepted_windows(moment)) == example["accepted"]
    # the same, from the spec's formula
    t = int(moment.timestamp())
    w, skew, back = settings["window_seconds"], settings["clock_skew_seconds"], 1
    assert list(range((t - skew) // w - back, (t + skew) // w + 1)) == example["accepted"]


# -- the lock-log example export -------------------------------------------------


def build_example_export() -> bytes:
    """The scenario that produced the example in docs/lock-log.md."""
    signer = CheckpointSigner.from_seed(RFC8032_SEED)
    key = LockKey(LOCK, 1, KEY)
    t = datetime(2026, 11, 16, 8, 10, tzinfo=UTC)
    control = LockControl(LockPolicy())
    firmware = LockFirmware(key, LockPolicy())
    chain = control.provision(key)
    state = firmware.initial_state()
    log = AuditLog(MemoryLogStore(), signer, log_id="bank-1:locks", checkpoint_every=4)
    issuance = control.issue(chain, key, user=42, operation=Operation.OPEN, now=t)
    fields = {**issuance.codes[0].audit_fields(), "issued_by": "dispatch", "task": 1017}
    log.append(EntryKind.CODE_ISSUED, fields, now=t)
    state = firmware.enter(state, user=42, code=issuance.codes[0].code, now=t).state
    relocked = firmware.relock(state, now=t + timedelta(minutes=40))
    with pytest.raises(InvalidSeal) as wrong:
        control.verify_seal(issuance.chain, key, "12345678", now=t + timedelta(minutes=41))
    mismatch = {**mismatch_fields(wrong.value, "12345678"), "reported_by": "engineer-42"}
    log.append(EntryKind.SEAL_REPORTED, mismatch, now=t + timedelta(minutes=41))
    confirmed = control.verify_seal(
        wrong.value.chain, key, relocked.seal, now=t + timedelta(minutes=42)
    )
    fields = {**confirmed.audit_fields(), "reported_by": "engineer-42"}
    log.append(EntryKind.SEAL_REPORTED, fields, now=t + timedelta(minutes=42))
    event = LockEvent(seq=0, kind=EventKind.WRONG_CODE, at=t + timedelta(minutes=14), users=(42,))
    kind, fields = entry_for_event(LOCK, event)
    log.append(kind, fields, now=t + timedelta(hours=3))
    out = io.BytesIO()
    log.export(out, now=t + timedelta(hours=4), by="auditor-anna")
    return out.getvalue()


def test_example_export_is_reproduced_byte_for_byte() -> None:
    assert build_example_export() == example_export()


def test_example_export_verifies_with_the_rfc8032_key() -> None:
    signer = CheckpointSigner.from_seed(RFC8032_SEED)
    keys = PublicKeys([signer.public_key])
    summary = verify_export(io.BytesIO(example_export()), keys)
    assert (summary.start, summary.end, summary.checkpoints) == (0, 5, 2)
    assert summary.pinned
    assert summary.kinds == {"code-issued": 1, "seal-reported": 2, "failure": 1, "export": 1}
    assert signer.key_id in example_export().decode()


def test_example_export_with_one_digit_changed_fails() -> None:
    lines = example_export().splitlines(keepends=True)
    assert b'"user":42' in lines[1]
    lines[1] = lines[1].replace(b'"user":42', b'"user":43')
    keys = PublicKeys([CheckpointSigner.from_seed(RFC8032_SEED).public_key])
    with pytest.raises(ExportInvalid) as failure:
        verify_export(lines, keys)
    assert failure.value.index == 0
    assert failure.value.line == 2
