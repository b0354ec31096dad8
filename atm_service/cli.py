"""``atm-service``: run and administer the central service."""

from __future__ import annotations

import getpass
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from atm_service.clock import system_clock
from atm_service.config import Settings, get_settings
from atm_service.db import Database
from atm_service.errors import DatabaseNotMigrated, ServiceError
from atm_service.migrate import current_revision, ensure_migrated, head_revision, upgrade
from atm_service.models.users import MIN_PASSWORD_LENGTH, Role, UserCreate
from atm_service.security.passwords import Passwords
from atm_service.services.users import create_user as create

app = typer.Typer(
    help="Central service of the ATM field system: migrate the database, manage users, serve "
    "the web pages and API, or run the demo.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()
errors = Console(stderr=True)

DatabaseUrl = Annotated[
    str | None,
    typer.Option(help="Database URL (default: ATM_DATABASE_URL or the embedded SQLite file)."),
]


def _settings(database_url: str | None) -> Settings:
    settings = get_settings()
    if database_url:
        settings = settings.model_copy(update={"database_url": database_url})
    return settings


def _fail(message: str) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code=1)


@app.command()
def migrate(database_url: DatabaseUrl = None) -> None:
    """Create or upgrade the database schema to this version."""
    database = Database.from_settings(_settings(database_url))
    try:
        before = current_revision(database)
        upgrade(database)
        after = head_revision(database)
    finally:
        database.dispose()
    if before == after:
        console.print(f"Database already at revision {after}.")
    else:
        console.print(f"Database migrated from {before or 'empty'} to {after}.")


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument(help="Login name, lower case")],
    role: Annotated[Role, typer.Option(help="The user's role")],
    full_name: Annotated[str, typer.Option(help="Name shown in the pages")],
    email: Annotated[str | None, typer.Option(help="E-mail address")] = None,
    password: Annotated[
        str | None,
        typer.Option(
            envvar="ATM_NEW_USER_PASSWORD",
            help=f"At least {MIN_PASSWORD_LENGTH} characters; asked for when not given",
        ),
    ] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Create a user account with a role."""
    settings = _settings(database_url)
    if password is None:
        password = getpass.getpass("Password: ")
        if getpass.getpass("Repeat: ") != password:
            raise _fail("the passwords differ")
    try:
        data = UserCreate(
            username=username, full_name=full_name, email=email, role=role, password=password
        )
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
        )
        raise _fail(problems) from None
    database = Database.from_settings(settings)
    try:
        ensure_migrated(database)
        with database.session() as session:
            user = create(
                session, data=data, passwords=Passwords.from_settings(settings), now=system_clock()
            )
    except (DatabaseNotMigrated, ServiceError) as exc:
        raise _fail(str(exc)) from None
    finally:
        database.dispose()
    console.print(f"Created {user.role} {user.username} (id {user.id}).")


@app.command("rewrap-lock-keys")
def rewrap_lock_keys(database_url: DatabaseUrl = None) -> None:
    """Re-seal every lock key under the current master key (the end of a master-key rotation).

    Needs the new key in ATM_LOCK_MASTER_KEY_FILE (or ATM_LOCK_MASTER_KEY) and the old
    ones in ATM_LOCK_PREVIOUS_MASTER_KEY_FILES; afterwards the old ones can be dropped.
    """
    from atm_service.services.lock_secrets import LockSecrets
    from atm_service.services.lock_secrets import rewrap_lock_keys as rewrap

    settings = _settings(database_url)
    database = Database.from_settings(settings)
    secrets = LockSecrets(settings)
    try:
        ensure_migrated(database)
        secrets.check()
        with database.session() as session:
            count = rewrap(session, secrets=secrets)
    except (DatabaseNotMigrated, ServiceError) as exc:
        raise _fail(str(exc)) from None
    finally:
        database.dispose()
    console.print(
        f"Re-sealed {count} lock key record(s); every record is now under master key "
        f"{secrets.master_key().key_id}."
    )


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from atm_service.app import create_app
    from atm_service.logs import configure_logging

    configure_logging(settings)
    try:
        application = create_app(settings)
    except DatabaseNotMigrated as exc:
        raise _fail(str(exc)) from None
    # The service writes its own request lines (atm_service.request_log); uvicorn's
    # records go through the same redacting handler.
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Serve the web pages and the REST API (the database must be migrated)."""
    settings = _settings(database_url)
    _serve(settings, host or settings.host, port if port is not None else settings.port)


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on")] = None,
    database_url: DatabaseUrl = None,
) -> None:
    """Migrate, load the demo fleet and users, print the logins, and serve."""
    from pathlib import Path

    from atm_service.demo import lock_settings, seed, seed_locks
    from atm_service.services.lock_secrets import LockSecrets

    data_dir = Path("var")
    settings = lock_settings(_settings(database_url), data_dir)
    database = Database.from_settings(settings)
    try:
        upgrade(database)
        with database.session() as session:
            logins = seed(session, passwords=Passwords.from_settings(settings), now=system_clock())
            seed_locks(
                session,
                secrets=LockSecrets(settings),
                now=system_clock(),
                records_dir=data_dir / "locks",
            )
    except ServiceError as exc:
        raise _fail(str(exc)) from None
    finally:
        database.dispose()
    host = host or settings.host
    port = port if port is not None else settings.port
    table = Table(title="Demo logins (passwords are new on every start)")
    table.add_column("role")
    table.add_column("user name")
    table.add_column("password")
    for login in logins:
        table.add_row(login.role.value, login.username, login.password)
    console.print(table)
    console.print(
        "Each ATM has a safe lock; start one with "
        f"[bold]atm-sim lock --provisioning {data_dir / 'locks' / 'CX-1000001.json'}[/] "
        "(T1000005's lock needs two people)."
    )
    console.print(f"Open [bold]http://{host}:{port}/login[/] — Ctrl-C stops the service.")
    _serve(settings, host, port)


def main() -> None:
    app()
