"""``atm-lock``: verify-export, key files, provisioning, rewrap and odds."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lockctl import (
    AuditLog,
    CheckpointSigner,
    JsonFileKeyStore,
    KeyVault,
    MasterKey,
    MemoryLogStore,
    Provisioning,
)
from lockctl.cli import app
from lockctl.signing import public_key_text
from tests.lockctl.conftest import T0

runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env=env)
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def signed_export(tmp_path: Path) -> tuple[Path, Path]:
    signer = CheckpointSigner.generate()
    log = AuditLog(MemoryLogStore(), signer, log_id="bank-1:locks", checkpoint_every=3)
    for n in range(7):
        log.append("code-issued", {"lock": "CX-1", "user": n}, now=T0)
    export = tmp_path / "export.jsonl"
    with export.open("wb") as out:
        log.export(out, now=T0, by="auditor")
    public = tmp_path / "log.pub"
    public.write_bytes(signer.public_pem())
    return export, public


def test_verify_export_ok(signed_export: tuple[Path, Path]) -> None:
    export, public = signed_export
    code, out, err = run("verify-export", str(export), "--public-key", str(public))
    assert code == 0, err
    assert out.startswith(f"OK {export}: log bank-1:locks: entries 0 to 7 (8 entries)")
    assert "pinned key" in out
    assert "code-issued 7, export 1" in out


def test_verify_export_unpinned_says_so(signed_export: tuple[Path, Path]) -> None:
    code, out, _ = run("verify-export", str(signed_export[0]))
    assert code == 0
    assert "not pinned" in out


def test_verify_export_names_the_first_bad_entry(signed_export: tuple[Path, Path]) -> None:
    export, public = signed_export
    lines = export.read_bytes().splitlines(keepends=True)
    lines[5] = lines[5].replace(b'"user":3', b'"user":4')
    export.write_bytes(b"".join(lines))
    code, out, err = run("verify-export", str(export), "--public-key", str(public))
    assert code == 1
    assert out == ""
    assert "INVALID" in err
    assert "entry 3 at line 6" in err
    assert "Traceback" not in err


def test_verify_export_bad_input(tmp_path: Path, signed_export: tuple[Path, Path]) -> None:
    export, _ = signed_export
    code, _, err = run("verify-export", str(tmp_path / "nope.jsonl"))
    assert code == 2
    assert "cannot read" in err
    garbage = tmp_path / "garbage.pub"
    garbage.write_text("not a key\n")
    code, _, err = run("verify-export", str(export), "--public-key", str(garbage))
    assert code == 2
    assert "ed25519" in err


def test_verify_export_wrong_pinned_key(signed_export: tuple[Path, Path], tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    other.write_bytes(CheckpointSigner.generate().public_pem())
    code, _, err = run("verify-export", str(signed_export[0]), "--public-key", str(other))
    assert code == 1
    assert "not trusted" in err


def test_new_master_key_and_signing_key(tmp_path: Path) -> None:
    key_file = tmp_path / "master.key"
    code, out, _ = run("new-master-key", str(key_file))
    assert code == 0
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    master = MasterKey.from_file(key_file)
    assert master.key_id in out
    assert key_file.read_text().strip() not in out
    code, _, err = run("new-master-key", str(key_file))
    assert code == 2
    assert "not overwriting" in err
    assert MasterKey.from_file(key_file).key_id == master.key_id

    signing = tmp_path / "log.key"
    code, out, _ = run("new-signing-key", str(signing))
    assert code == 0
    assert stat.S_IMODE(os.stat(signing).st_mode) == 0o600
    signer = CheckpointSigner.from_pem(signing.read_bytes())
    assert signer.key_id in out
    assert (tmp_path / "log.key.pub").read_bytes() == signer.public_pem()
    assert "PRIVATE" not in out


def test_provision_rotate_and_rewrap(tmp_path: Path) -> None:
    master_file = tmp_path / "master.key"
    run("new-master-key", str(master_file))
    keys = tmp_path / "keys.json"
    record = tmp_path / "cx1.json"
    code, out, err = run(
        "provision-lock",
        "CX-1",
        "--keys",
        str(keys),
        "--out",
        str(record),
        "--master-key",
        str(master_file),
        "--dual-control",
        "bank",
    )
    assert code == 0, err
    assert "key version 1" in out
    assert stat.S_IMODE(os.stat(record).st_mode) == 0o600
    provisioning = Provisioning.from_json(record.read_bytes())
    assert provisioning.policy.dual_control == {"bank"}
    master = MasterKey.from_file(master_file)
    vault = KeyVault(JsonFileKeyStore(keys), master)
    assert vault.active("CX-1").secret == provisioning.key.secret

    env = {"ATM_LOCK_MASTER_KEY": master_file.read_text().strip()}
    code, out, err = run(
        "provision-lock",
        "CX-1",
        "--keys",
        str(keys),
        "--out",
        str(tmp_path / "v2.json"),
        "--rotate",
        env=env,
    )
    assert code == 0, err
    assert "key version 2" in out

    new_master = tmp_path / "master2.key"
    run("new-master-key", str(new_master))
    code, out, err = run(
        "rewrap-keys",
        "--keys",
        str(keys),
        "--master-key",
        str(new_master),
        "--old-master-key",
        str(master_file),
    )
    assert code == 0, err
    assert "Re-encrypted 2 key record(s)" in out
    rewrapped = KeyVault(JsonFileKeyStore(keys), MasterKey.from_file(new_master))
    assert rewrapped.get("CX-1", 1).secret == provisioning.key.secret


def test_provision_refusals(tmp_path: Path) -> None:
    code, _, err = run(
        "provision-lock",
        "CX 1",
        "--keys",
        str(tmp_path / "k.json"),
        "--out",
        str(tmp_path / "p.json"),
        env={"ATM_LOCK_MASTER_KEY": ""},
    )
    assert code == 2
    assert "ATM_LOCK_MASTER_KEY is not set" in err
    master = tmp_path / "m.key"
    run("new-master-key", str(master))
    code, _, err = run(
        "provision-lock",
        "CX 1",
        "--keys",
        str(tmp_path / "k.json"),
        "--out",
        str(tmp_path / "p.json"),
        "--master-key",
        str(master),
    )
    assert code == 2
    assert "lock_id must be" in err
    code, _, err = run(
        "provision-lock",
        "CX-1",
        "--keys",
        str(tmp_path / "k.json"),
        "--out",
        str(tmp_path / "p.json"),
        "--master-key",
        str(master),
        "--max-failures",
        "0",
    )
    assert code == 2
    assert "max_failures" in err
    assert not (tmp_path / "p.json").exists()


def test_odds_prints_the_table() -> None:
    code, out, _ = run("odds")
    assert code == 0
    assert "= 24" in out
    assert "365 days: at most    5500 guesses" in out
    code, out, _ = run("odds", "--max-penalty-seconds", "86400")
    assert "365 days: at most    1855 guesses" in out


def test_version() -> None:
    code, out, _ = run("version")
    assert code == 0
    assert out.startswith("atm-lock ")


def test_export_file_round_trip_through_cli(tmp_path: Path) -> None:
    """An export written by the library to a real file verifies from the command line."""
    signer = CheckpointSigner.generate()
    log = AuditLog(MemoryLogStore(), signer, log_id="x")
    log.append("failure", {}, now=T0)
    buffer = io.BytesIO()
    log.export(buffer, now=T0, by="a")
    path = tmp_path / "x.jsonl"
    path.write_bytes(buffer.getvalue())
    public = tmp_path / "x.pub"
    public.write_text(f"# the log's key\n{public_key_text(signer.public_key)}\n")
    code, out, err = run("verify-export", str(path), "--public-key", str(public))
    assert code == 0, err
    assert "pinned key" in out
