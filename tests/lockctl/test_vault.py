"""The key vault: round trip, tampering, rotation of lock keys and of the master key,
and the master key kept out of records, reprs and logs."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from lockctl import (
    EncryptedKeyRecord,
    JsonFileKeyStore,
    KeyDecryptionError,
    KeyExists,
    KeyNotFound,
    KeyState,
    KeyVault,
    MasterKey,
    MasterKeyError,
    MasterKeyRing,
    MemoryKeyStore,
)
from tests.lockctl.conftest import T0

MASTER_SECRET = bytes(range(100, 132))


def counter_random() -> Callable[[int], bytes]:
    """A deterministic random source, so tests can look for exact bytes."""
    state = {"n": 0}

    def random(size: int) -> bytes:
        state["n"] += 1
        return bytes((state["n"] + i) % 256 for i in range(size))

    return random


@pytest.fixture
def master() -> MasterKey:
    return MasterKey(MASTER_SECRET)


@pytest.fixture
def vault(master: MasterKey) -> KeyVault:
    return KeyVault(MemoryKeyStore(), master)


def forms_of(secret: bytes) -> list[bytes]:
    """The ways a key could leak into text."""
    return [
        secret,
        secret.hex().encode(),
        base64.b64encode(secret),
        base64.urlsafe_b64encode(secret).rstrip(b"="),
    ]


def test_round_trip(vault: KeyVault) -> None:
    created = vault.create("CX-1", now=T0)
    assert created.version == 1
    read = vault.active("CX-1")
    assert read.secret == created.secret
    assert vault.get("CX-1", 1).secret == created.secret
    with pytest.raises(KeyExists):
        vault.create("CX-1", now=T0)
    with pytest.raises(KeyNotFound):
        vault.active("CX-2")
    with pytest.raises(KeyNotFound):
        vault.get("CX-1", 2)


def test_records_hold_no_key_material(vault: KeyVault, master: MasterKey) -> None:
    created = vault.create("CX-1", now=T0)
    record = vault.store.get("CX-1", 1)
    assert record is not None
    text = json.dumps(record.to_dict()).encode() + repr(record).encode()
    for secret in (MASTER_SECRET, created.secret):
        for form in forms_of(secret):
            assert form not in text
            assert form not in record.ciphertext
    assert record.master_key_id == master.key_id


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: replace(r, ciphertext=bytes([r.ciphertext[0] ^ 1]) + r.ciphertext[1:]),
        lambda r: replace(r, ciphertext=r.ciphertext[:-1] + bytes([r.ciphertext[-1] ^ 0x80])),
        lambda r: replace(r, nonce=bytes(12)),
        lambda r: replace(r, lock_id="CX-2"),  # moved to another lock (AAD)
        lambda r: replace(r, version=2),  # presented as another version (AAD)
    ],
    ids=["ciphertext", "tag", "nonce", "other-lock", "other-version"],
)
def test_tampered_records_fail(vault: KeyVault, tamper: object) -> None:
    vault.create("CX-1", now=T0)
    record = vault.store.get("CX-1", 1)
    assert record is not None
    forged = tamper(record)  # type: ignore[operator]
    store = MemoryKeyStore()
    store.insert(forged)
    with pytest.raises(KeyDecryptionError, match="fails authentication"):
        KeyVault(store, vault.masters).get(forged.lock_id, forged.version)


def test_a_record_under_an_unknown_master_key_is_refused(vault: KeyVault) -> None:
    vault.create("CX-1", now=T0)
    other = KeyVault(vault.store, MasterKey(bytes(32)))
    with pytest.raises(MasterKeyError, match="no master key"):
        other.active("CX-1")
    record = vault.store.get("CX-1", 1)
    assert record is not None
    relabelled = replace(record, master_key_id=other.masters.primary.key_id)
    store = MemoryKeyStore()
    store.insert(relabelled)
    with pytest.raises(KeyDecryptionError):
        KeyVault(store, other.masters).active("CX-1")


def test_lock_key_rotation_keeps_every_version_readable(vault: KeyVault) -> None:
    versions = [vault.create("CX-1", now=T0)]
    for _ in range(3):
        versions.append(vault.rotate("CX-1", now=T0))
    assert [k.version for k in versions] == [1, 2, 3, 4]
    assert len({k.secret for k in versions}) == 4
    assert vault.active("CX-1").secret == versions[-1].secret
    states = [r.state for r in vault.store.versions("CX-1")]
    assert states == [KeyState.RETIRED] * 3 + [KeyState.ACTIVE]
    for key in versions:
        assert vault.get("CX-1", key.version).secret == key.secret
    with pytest.raises(KeyNotFound):
        vault.rotate("CX-9", now=T0)


def test_master_key_rotation_rewraps_everything(vault: KeyVault, master: MasterKey) -> None:
    keys = {lock: vault.create(lock, now=T0) for lock in ("CX-1", "CX-2", "CX-3")}
    keys["CX-1b"] = vault.rotate("CX-1", now=T0)
    new = MasterKey(bytes(range(200, 232)))
    rotated = KeyVault(vault.store, MasterKeyRing(new, master))
    assert rotated.rewrap() == 4
    assert rotated.rewrap() == 0
    assert {r.master_key_id for r in vault.store.records()} == {new.key_id}
    only_new = KeyVault(vault.store, new)
    for name, key in keys.items():
        assert only_new.get(key.lock_id, key.version).secret == key.secret, name
    with pytest.raises(MasterKeyError):
        KeyVault(vault.store, master).active("CX-2")


def test_master_key_never_reaches_logs(
    caplog: pytest.LogCaptureFixture, master: MasterKey, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    vault = KeyVault(JsonFileKeyStore(tmp_path / "keys.json"), master)
    created = vault.create("CX-1", now=T0)
    vault.rotate("CX-1", now=T0)
    new = MasterKey.generate()
    KeyVault(vault.store, MasterKeyRing(new, master)).rewrap()
    assert caplog.records, "the vault logs what it does"
    logged = (
        "\n".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records).encode()
        + caplog.text.encode()
    )
    stored = (tmp_path / "keys.json").read_bytes()
    for secret in (MASTER_SECRET, new._secret, created.secret):
        for form in forms_of(secret):
            assert form not in logged
            assert form not in stored
    assert master.key_id in logged.decode()


def test_master_key_repr_and_pickling_hide_it(master: MasterKey) -> None:
    text = repr(master) + repr(MasterKeyRing(master)) + str(master)
    for form in forms_of(MASTER_SECRET):
        assert form.decode("latin-1") not in text
    import pickle

    with pytest.raises(TypeError):
        pickle.dumps(master)


def test_master_key_from_file_and_environment(tmp_path: Path, master: MasterKey) -> None:
    path = tmp_path / "master.key"
    path.write_text(master.to_text())
    assert MasterKey.from_file(path).key_id == master.key_id
    environ = {"ATM_LOCK_MASTER_KEY": master.to_text().strip()}
    assert MasterKey.from_env(environ).key_id == master.key_id
    with pytest.raises(MasterKeyError, match="is not set"):
        MasterKey.from_env({})
    with pytest.raises(MasterKeyError, match="does not exist"):
        MasterKey.from_file(tmp_path / "missing")
    path.write_text("atm-lock-master-key:v1:AAAA\n")
    with pytest.raises(MasterKeyError, match="must hold 32 bytes"):
        MasterKey.from_file(path)
    path.write_text("hunter2")
    with pytest.raises(MasterKeyError, match="does not start with") as failure:
        MasterKey.from_file(path)
    assert "hunter2" not in str(failure.value)
    path.write_text("atm-lock-master-key:v1:!!!")
    with pytest.raises(MasterKeyError, match="base64"):
        MasterKey.from_file(path)


def test_json_file_store_persists_with_private_mode(tmp_path: Path, master: MasterKey) -> None:
    path = tmp_path / "keys.json"
    vault = KeyVault(JsonFileKeyStore(path), master, random=counter_random())
    created = vault.create("CX-1", now=T0)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    reopened = KeyVault(JsonFileKeyStore(path), master)
    assert reopened.active("CX-1").secret == created.secret
    path.write_text("[]")
    with pytest.raises(Exception, match="not a lock key file"):
        JsonFileKeyStore(path)


def test_nonces_are_fresh_per_record(master: MasterKey) -> None:
    vault = KeyVault(MemoryKeyStore(), master)
    for n in range(20):
        vault.create(f"CX-{n}", now=T0)
    nonces = [r.nonce for r in vault.store.records()]
    assert len(set(nonces)) == len(nonces)


def test_record_parsing_rejects_garbage() -> None:
    from lockctl import VaultError

    with pytest.raises(VaultError, match="malformed"):
        EncryptedKeyRecord.from_dict({"lock": "CX-1"})
