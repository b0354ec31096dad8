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


# what a reconciliation worker process has no use for: the web application and
# its database layer, and the command-line libraries
_NOT_FOR_WORKERS = ("fastapi", "starlette", "sqlalchemy", "sqlmodel", "uvicorn", "typer", "rich")


@pytest.mark.parametrize("script", ["atm-service", "atm-recon"])
def test_a_reconciliation_worker_imports_nothing_of_the_command_that_started_it(
    script: str, tmp_path: Path
) -> None:
    """A run's worker processes are spawned, and spawning runs the parent's main
    script again in each before its first batch: the console scripts of the
    service (which runs reconciliations from its pages) and of ``atm-recon``
    import only a light entry module, not the application or the command line."""
    source = Path(_script(script)).read_text()
    assert "if __name__ == '__main__':" in source
    main = tmp_path / script  # the console script itself, asking its worker what it loaded
    main.write_text(
        source.replace(
            "if __name__ == '__main__':",
            "def _loaded(names):\n"
            "    return sorted(name for name in names if name in sys.modules)\n"
            "\n"
            "if __name__ == '__main__':\n"
            "    from reconciliation.engine import _executor\n"
            "    with _executor(1) as pool:\n"
            f"        print(pool.submit(_loaded, {_NOT_FOR_WORKERS!r}).result())\n"
            "    sys.exit(0)",
        )
    )
    result = _run(sys.executable, str(main))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]", f"a worker of {script} imported {result.stdout}"
