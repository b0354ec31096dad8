"""``atm-agent``: command-line entry point."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Annotated

import typer

from device_agent import __version__
from device_agent.agent import DEFAULT_BAUDRATE, AgentConfig, run_agent
from device_agent.errors import AgentError
from device_agent.link import DeviceLink
from device_agent.protocol import COMMANDS, ProtocolError
from device_agent.signing import DeviceKey, load_key_file, write_key_file
from device_agent.spool import Spool
from device_agent.uploader import UploadPolicy

app = typer.Typer(
    help=(
        "Agent that runs on an ATM: reads the electronic journal, cash-unit counters and "
        "device status over the serial link, spools them durably and uploads them to the "
        "central service."
    ),
    no_args_is_help=True,
    add_completion=False,
)

KeyOption = Annotated[Path, typer.Option("--key", help="The device's Ed25519 private key file")]
SpoolOption = Annotated[Path, typer.Option("--spool", help="The agent's SQLite spool file")]
PortOption = Annotated[
    str, typer.Option(help="pyserial URL of the device: /dev/ttyS0, socket://host:port, ...")
]
BaudOption = Annotated[
    int, typer.Option("--baud", help="Line speed of the serial port (8N1)", min=300)
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=1)


@app.callback()
def _group() -> None:
    """Commands of this tool; --help on each says more."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"atm-agent {__version__}")


def _describe(key: DeviceKey) -> None:
    typer.echo(f"public key: {key.public_key_b64}")
    typer.echo(f"key id:     {key.key_id}")


@app.command()
def keygen(
    key: KeyOption,
    force: Annotated[bool, typer.Option(help="Replace an existing key file")] = False,
) -> None:
    """Create the device's Ed25519 key (mode 0600) and print the public key to enrol."""
    device_key = DeviceKey.generate()
    try:
        write_key_file(key, device_key, overwrite=force)
    except AgentError as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"wrote {key}")
    _describe(device_key)
    typer.echo(
        "enrol it: POST /api/v1/atms/{atm_id}/device-keys "
        f'{{"public_key": "{device_key.public_key_b64}"}} (as an administrator)'
    )


@app.command("public-key")
def public_key(key: KeyOption) -> None:
    """Print the public key and key id of an existing key file."""
    try:
        _describe(load_key_file(key))
    except AgentError as exc:
        raise _fail(str(exc)) from None


@app.command()
def status(spool: SpoolOption) -> None:
    """Show what the spool holds and what the service has not acknowledged yet."""
    if not spool.exists():
        raise _fail(f"no spool at {spool}")
    try:
        with Spool(spool) as opened:
            backlog = opened.backlog()
            typer.echo(f"terminal:          {opened.terminal_id() or '(not yet known)'}")
            typer.echo(f"record stream:     {opened.stream_id}")
            typer.echo(
                f"records pending:   {backlog.records} (acknowledged up to "
                f"{opened.records_acked} of {opened.last_seq()})"
            )
            typer.echo(f"journal bytes pending: {backlog.journal_bytes}")
            oldest = backlog.oldest_pending_at
            typer.echo(f"oldest pending:    {oldest.isoformat() if oldest else '-'}")
            for journal in opened.journals():
                typer.echo(
                    f"  journal {journal.name}: {journal.size} bytes stored, "
                    f"{journal.acked} acknowledged"
                )
    except AgentError as exc:
        raise _fail(str(exc)) from None


@app.command()
def run(
    port: PortOption,
    service: Annotated[str, typer.Option(help="Base URL of the central service")],
    key: KeyOption,
    spool: SpoolOption,
    terminal_id: Annotated[
        str | None,
        typer.Option(help="The ATM's terminal id; asked of the service when not given"),
    ] = None,
    heartbeat_interval: Annotated[
        float, typer.Option(help="Seconds between heartbeats", min=1.0)
    ] = 30.0,
    batch_bytes: Annotated[
        int, typer.Option(help="Journal bytes per upload request", min=4096)
    ] = 64 * 1024,
    baud: BaudOption = DEFAULT_BAUDRATE,
    retry_max: Annotated[
        float,
        typer.Option(
            help="Longest wait in seconds between attempts while the service is away", min=1.0
        ),
    ] = 300.0,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR")] = "INFO",
) -> None:
    """Read the device, spool what it says, upload it to the service; until stopped.

    Remote commands the service queues for the ATM arrive with the heartbeat answers and
    run on the device over the link.
    """
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    if not service.startswith(("http://", "https://")):
        raise _fail(f"--service must be an http:// or https:// URL, not {service!r}")
    try:
        load_key_file(key)
    except AgentError as exc:
        raise _fail(str(exc)) from None
    config = AgentConfig(
        port=port,
        service_url=service.rstrip("/"),
        key_path=key,
        spool_path=spool,
        terminal_id=terminal_id,
        policy=UploadPolicy(
            heartbeat_interval_s=heartbeat_interval,
            max_batch_bytes=batch_bytes,
            backoff_cap_s=retry_max,
        ),
        baudrate=baud,
    )
    try:
        run_agent(config)
    except AgentError as exc:
        raise _fail(str(exc)) from None


@app.command()
def command(
    name: Annotated[
        str,
        typer.Argument(metavar="COMMAND", help="send_counters, go_out_of_service or go_in_service"),
    ],
    port: PortOption,
    spool: SpoolOption,
    baud: BaudOption = DEFAULT_BAUDRATE,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the device", min=1.0)] = 15.0,
) -> None:
    """Run a remote command on the device here, with the agent stopped (it holds the port).

    Prints the device's answer as JSON; exits 1 when the device refused or could not be
    asked. Whatever the device sends meanwhile (counters, status, events, journal) goes to
    the spool, as under `atm-agent run`, which uploads it later. A running agent gets
    commands from the service instead (POST /api/v1/atms/{id}/commands).
    """
    if name not in COMMANDS:
        raise _fail(f"COMMAND must be one of {', '.join(sorted(COMMANDS))}, not {name!r}")
    logging.basicConfig(level="WARNING", format="%(asctime)s %(levelname)s %(name)s %(message)s")
    try:
        with Spool(spool) as opened:
            link = DeviceLink(port, opened, baudrate=baud, terminal_id=opened.terminal_id())
            with link:
                deadline = time.monotonic() + timeout
                while not link.wait_up(0.1) and link.refused is None:
                    if time.monotonic() > deadline:
                        raise _fail(f"no answer from a device on {port} within {timeout:g} s")
                if link.refused is not None:
                    raise _fail(f"{link.refused}, whose spool this is")
                answer = link.send_command(name, timeout=timeout)
    except (AgentError, ProtocolError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(json.dumps(answer, sort_keys=True))
    if answer.get("ok") is not True:
        raise typer.Exit(code=1)


def main() -> None:
    app()
