"""``atm-agent``: keygen, public-key, status, and run's refusals of bad options."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from device_agent.cli import app
from device_agent.signing import load_key_file
from device_agent.spool import Spool

runner = CliRunner()


def test_keygen_writes_a_private_key_and_prints_what_to_enrol(tmp_path: Path) -> None:
    key = tmp_path / "device.key"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "atm-agent"), "keygen", "--key", str(key)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    loaded = load_key_file(key)
    assert f"public key: {loaded.public_key_b64}" in result.stdout
    assert f"key id:     {loaded.key_id}" in result.stdout
    assert "/device-keys" in result.stdout
    again = runner.invoke(app, ["keygen", "--key", str(key)])
    assert again.exit_code == 1
    assert "already exists" in again.output
    assert load_key_file(key).public_key == loaded.public_key
    replaced = runner.invoke(app, ["keygen", "--key", str(key), "--force"])
    assert replaced.exit_code == 0
    assert load_key_file(key).public_key != loaded.public_key


def test_public_key_prints_an_existing_key(tmp_path: Path) -> None:
    key = tmp_path / "device.key"
    runner.invoke(app, ["keygen", "--key", str(key)])
    shown = runner.invoke(app, ["public-key", "--key", str(key)])
    assert shown.exit_code == 0
    assert load_key_file(key).public_key_b64 in shown.output
    os.chmod(key, 0o640)
    refused = runner.invoke(app, ["public-key", "--key", str(key)])
    assert refused.exit_code == 1
    assert "readable by others" in refused.output


def test_status_shows_the_backlog(tmp_path: Path) -> None:
    path = tmp_path / "spool.db"
    with Spool(path) as spool:
        spool.store_journal("20261116", 0, b"line\n" * 10)
        spool.ack_journal("20261116", 20)
        spool.store_status({"in_service": True})
    result = runner.invoke(app, ["status", "--spool", str(path)])
    assert result.exit_code == 0, result.output
    assert "journal bytes pending: 30" in result.output
    assert "records pending:   1" in result.output
    assert "journal 20261116: 50 bytes stored, 20 acknowledged" in result.output
    missing = runner.invoke(app, ["status", "--spool", str(tmp_path / "none.db")])
    assert missing.exit_code == 1
    assert "no spool at" in missing.output


def test_run_refuses_bad_options_clearly(tmp_path: Path) -> None:
    key = tmp_path / "device.key"
    common = ["--port", "loop://", "--key", str(key), "--spool", str(tmp_path / "s.db")]
    missing_key = runner.invoke(app, ["run", "--service", "http://127.0.0.1:9", *common])
    assert missing_key.exit_code == 1
    assert "atm-agent keygen" in missing_key.output
    runner.invoke(app, ["keygen", "--key", str(key)])
    bad_url = runner.invoke(app, ["run", "--service", "ftp://service", *common])
    assert bad_url.exit_code == 1
    assert "http:// or https://" in bad_url.output
    small = runner.invoke(
        app, ["run", "--service", "http://127.0.0.1:9", "--batch-bytes", "10", *common]
    )
    assert small.exit_code == 2
    assert "Traceback" not in small.output
