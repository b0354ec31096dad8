"""``atm-service``: run and administer the central service."""

from __future__ import annotations

import getpass
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

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


def _serve(settings: Settings, host: str, port: int) -> None:
    import uvicorn

    from atm_service.app import create_app

    try:
        application = create_app(settings)
    except DatabaseNotMigrated as exc:
        raise _fail(str(exc)) from None
    uvicorn.run(
        application,
        host=host,
        port=port,
        log_level="info",
        proxy_headers=True,
        # live pages hold streams open: cut them after a few seconds, not at their end
        timeout_graceful_shutdown=3,
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
    atms: Annotated[int, typer.Option(help="How many simulated ATMs (1-60)")] = 6,
    port: Annotated[
        int | None, typer.Option(help="The service's port (default 8000, or the next free one)")
    ] = None,
    panel_port: Annotated[
        int | None,
        typer.Option(help="The simulators' panel port (default: the service's port + 1)"),
    ] = None,
    speed: Annotated[
        float, typer.Option(help="Simulated seconds per real second (1: the ATMs keep real time)")
    ] = 1.0,
    mean_transactions: Annotated[float, typer.Option(help="Customers per ATM and day")] = 240.0,
    baud: Annotated[int, typer.Option(help="Serial line speed between each ATM and its agent")] = (
        115200
    ),
    history_days: Annotated[
        int, typer.Option(help="Business days the ATMs have run before today (0-7)")
    ] = 1,
    host: Annotated[
        str,
        typer.Option(help="Address the service listens on (the panel stays on this computer)"),
    ] = "127.0.0.1",
    data_dir: Annotated[
        Path, typer.Option(help="Folder of the demo's database, files and logs (made anew)")
    ] = Path("var/demo"),
    seed: Annotated[int, typer.Option(help="Seed of the simulated customers and faults")] = 0,
) -> None:
    """Run the whole system on this computer: the service on a fresh SQLite database with
    demo users, simulated ATMs each with its agent over a serial link, their safe locks and
    a panel to work them. Prints the URLs and logins; Ctrl-C stops everything."""
    from atm_service.demo_runner import DemoOptions, DemoRunner
    from atm_service.errors import DemoFailed

    try:
        options = DemoOptions(
            data_dir=data_dir,
            host=host,
            port=port,
            panel_port=panel_port,
            atms=atms,
            speed=speed,
            mean_transactions=mean_transactions,
            baud=baud,
            seed=seed,
            history_days=history_days,
        )
    except DemoFailed as exc:
        raise _fail(str(exc)) from None
    code = DemoRunner(options, get_settings(), echo=typer.echo).run()
    raise typer.Exit(code)


def main() -> None:
    app()
