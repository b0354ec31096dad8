"""The five console scripts: each explains itself; the service's commands work end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS = {
    "atm-service": "Central service",
    "atm-agent": "Agent that runs on an ATM",
    "atm-recon": "Reconcile",
    "atm-lock": "Safe-lock control",
    "atm-sim": "Simulated ATMs",
}


def _script(name: str) -> str:
    return str(Path(sys.executable).parent / name)


def _run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, capture_output=True, text=True, timeout=120, env={**os.environ, **(env or {})}
    )


@pytest.mark.parametrize(("script", "says"), SCRIPTS.items())
def test_help_says_what_the_tool_does(script: str, says: str) -> None:
    result = _run(_script(script), "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert says in result.stdout


def test_migrate_create_user_and_refusals(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    env = {
        "ATM_DATABASE_URL": url,
        "ATM_ARGON2_MEMORY_KIB": "1024",
        "ATM_ARGON2_TIME_COST": "1",
        "COLUMNS": "200",
    }
    service = _script("atm-service")

    refused = _run(service, "serve", "--port", "0", env=env)
    assert refused.returncode == 1
    assert "atm-service migrate" in refused.stderr
    assert "Traceback" not in refused.stderr

    early = _run(
        service,
        "create-user",
        "ada",
        "--role",
        "admin",
        "--full-name",
        "Ada",
        "--password",
        "long enough password",
        env=env,
    )
    assert early.returncode == 1
    assert "has no schema yet" in early.stderr

    migrated = _run(service, "migrate", env=env)
    assert migrated.returncode == 0, migrated.stderr
    assert "migrated from empty" in migrated.stdout
    assert "already at revision" in _run(service, "migrate", env=env).stdout

    created = _run(
        service,
        "create-user",
        "ada",
        "--role",
        "admin",
        "--full-name",
        "Ada Admin",
        "--password",
        "long enough password",
        env=env,
    )
    assert created.returncode == 0, created.stderr
    assert "Created admin ada" in created.stdout

    again = _run(
        service,
        "create-user",
        "ada",
        "--role",
        "admin",
        "--full-name",
        "Ada Admin",
        "--password",
        "long enough password",
        env=env,
    )
    assert again.returncode == 1
    assert "taken" in again.stderr

    short = _run(
        service,
        "create-user",
        "bob",
        "--role",
        "engineer",
        "--full-name",
        "Bob",
        "--password",
        "short",
        env=env,
    )
    assert short.returncode == 1
    assert "password" in short.stderr
    assert "Traceback" not in short.stderr

    bad_role = _run(
        service,
        "create-user",
        "bob",
        "--role",
        "janitor",
        "--full-name",
        "Bob",
        "--password",
        "long enough password",
        env=env,
    )
    assert bad_role.returncode == 2
    assert "janitor" in bad_role.stderr
