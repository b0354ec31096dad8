"""``atm-sim``: command-line entry point."""

from __future__ import annotations

import json
import logging
import sys
import time as _time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from simulators import __version__
from simulators.errors import SimulatorError
from simulators.generate import FleetOptions, generate

if TYPE_CHECKING:
    from simulators.runner import SimulationOptions

app = typer.Typer(
    help=(
        "Simulated ATMs, host/switch and safe locks for development, demos, load and "
        "fault tests without hardware."
    ),
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _group() -> None:
    """Commands of this tool; --help on each says more."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"atm-sim {__version__}")


def _date(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date YYYY-MM-DD", param_hint=option) from None


@app.command("generate")
def generate_command(
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Directory to write ej/ paper/ host/ counters/ truth.jsonl into."
        ),
    ],
    terminals: Annotated[int, typer.Option("--terminals", help="Number of ATMs.")] = 6,
    days: Annotated[int, typer.Option("--days", help="Number of business days.")] = 2,
    start: Annotated[
        str, typer.Option("--start", help="First business day, YYYY-MM-DD.")
    ] = "2026-11-16",
    seed: Annotated[
        int, typer.Option("--seed", help="Seed: the same seed and options give the same files.")
    ] = 0,
    discrepancy_rate: Annotated[
        float,
        typer.Option(
            "--discrepancy-rate", help="Share of transactions with a discrepancy or data gap."
        ),
    ] = 0.03,
    dialect: Annotated[
        str, typer.Option("--dialect", help="EJ dialect: ndc, procash or mixed.")
    ] = "mixed",
    mean_transactions: Annotated[
        float,
        typer.Option(
            "--mean-transactions", help="Fleet mean of customer sessions per ATM and day."
        ),
    ] = 120.0,
    ocr_p: Annotated[
        float,
        typer.Option("--ocr-p", help="OCR hit probability per character of the paper journal."),
    ] = 0.02,
    count_error_rate: Annotated[
        float,
        typer.Option(
            "--count-error-rate", help="Share of replenishments where the physical count differs."
        ),
    ] = 0.15,
    first_terminal: Annotated[
        int,
        typer.Option("--first-terminal", help="Number of the first terminal ID (T + 7 digits)."),
    ] = 1_000_001,
    holidays: Annotated[
        str, typer.Option("--holidays", help="Comma-separated holiday dates (lower demand).")
    ] = "",
    workers: Annotated[
        int, typer.Option("--workers", help="Processes to generate with (terminals are split).")
    ] = 1,
    iso_encoder: Annotated[
        str,
        typer.Option(
            "--iso-encoder",
            help="ISO 8583 encoder: pyiso8583, or fast (byte-identical, for large benchmarks).",
        ),
    ] = "pyiso8583",
) -> None:
    """Generate a data set in the field's formats, with its ground truth."""
    holiday_dates = tuple(_date(h.strip(), "--holidays") for h in holidays.split(",") if h.strip())
    options = FleetOptions(
        terminals=terminals,
        days=days,
        start=_date(start, "--start"),
        seed=seed,
        discrepancy_rate=discrepancy_rate,
        dialect=dialect,
        mean_transactions=mean_transactions,
        ocr_p=ocr_p,
        count_error_rate=count_error_rate,
        first_terminal=first_terminal,
        workers=workers,
        holidays=holiday_dates,
        iso_encoder=iso_encoder,
    )
    try:
        report = generate(options, out)
    except SimulatorError as exc:
        typer.echo(f"atm-sim generate: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"atm-sim generate: cannot write {out}: {exc.strerror or exc}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"{report.transactions} transactions, {report.discrepancies} ground-truth records, "
        f"{report.terminals} terminals x {report.days} days in {report.seconds:.2f} s "
        f"({report.transactions_per_second:,.0f} transactions/s) -> {out}"
    )


@app.command("live")
def live_command(
    out: Annotated[
        Path, typer.Option("--out", help="Directory for the ATM's journals and day files.")
    ],
    terminal_id: Annotated[
        str, typer.Option("--terminal-id", help="Terminal ID (8 characters).")
    ] = "T1000001",
    start: Annotated[
        str, typer.Option("--start", help="Simulated start, YYYY-MM-DDTHH:MM:SS (default: now).")
    ] = "",
    speed: Annotated[
        float, typer.Option("--speed", help="Simulated seconds per real second.")
    ] = 60.0,
    seconds: Annotated[float, typer.Option("--seconds", help="Real seconds to run.")] = 10.0,
    dialect: Annotated[str, typer.Option("--dialect", help="EJ dialect: ndc or procash.")] = "ndc",
    seed: Annotated[int, typer.Option("--seed", help="Seed.")] = 0,
    discrepancy_rate: Annotated[
        float, typer.Option("--discrepancy-rate", help="Random fault rate.")
    ] = 0.03,
    mean_transactions: Annotated[
        float, typer.Option("--mean-transactions", help="Customers a day.")
    ] = 120.0,
) -> None:
    """Run one live ATM on an accelerated clock, printing its events as JSON lines."""
    from simulators.live import AcceleratedClock, LiveAtm

    try:
        begin = datetime.fromisoformat(start) if start else datetime.now().replace(microsecond=0)
    except ValueError:
        raise typer.BadParameter(
            f"{start!r} is not YYYY-MM-DDTHH:MM:SS", param_hint="--start"
        ) from None
    try:
        atm = LiveAtm(
            out,
            AcceleratedClock(begin, speed),
            terminal_id=terminal_id,
            seed=seed,
            dialect=dialect,
            discrepancy_rate=discrepancy_rate,
            mean_transactions=mean_transactions,
        )
    except SimulatorError as exc:
        typer.echo(f"atm-sim live: {exc}", err=True)
        raise typer.Exit(2) from None
    deadline = _time.monotonic() + seconds
    while _time.monotonic() < deadline:
        for event in atm.poll_events():
            typer.echo(json.dumps(event))
        _time.sleep(0.2)
    typer.echo(json.dumps({"journals": atm.journals(), "status": atm.device_status()}))


@app.command("lock")
def lock_command(
    provisioning: Annotated[
        Path,
        typer.Option(
            "--provisioning",
            help="The lock's provisioning record (atm-lock provision-lock, or the service's "
            "provisioning-record download).",
        ),
    ],
    trail: Annotated[
        Path | None,
        typer.Option("--trail", help="Write the lock's trail (JSON lines) here on quit."),
    ] = None,
) -> None:
    """A safe lock on this terminal: type keypad keys (e.g. 42*12345678#), or open, close,
    relock, status, trail, quit. Time is this computer's clock."""
    from datetime import UTC

    from lockctl import LockCtlError, NotOpen
    from simulators.lock import SimulatedLock

    try:
        lock = SimulatedLock.from_file(provisioning, clock=lambda: datetime.now(UTC))
    except (OSError, LockCtlError) as exc:
        typer.echo(f"atm-sim lock: cannot load {provisioning}: {exc}", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"Lock {lock.lock_id}. Keys: digits * # C; commands: open close relock status trail quit"
    )
    typer.echo(f"[{lock.display}]")
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            line = "quit"
        try:
            if line == "quit":
                break
            if line == "open":
                lock.open_door()
            elif line == "close":
                lock.close_door()
            elif line == "relock":
                lock.relock()
            elif line == "trail":
                typer.echo(lock.trail_jsonl(), nl=False)
            elif line == "status":
                typer.echo(f"{lock.status.value}, door {'open' if lock.door_open else 'closed'}")
            elif line:
                lock.press(line)
        except (NotOpen, ValueError) as exc:
            typer.echo(str(exc))
        typer.echo(f"[{lock.display}]")
    if trail is not None:
        trail.write_text(lock.trail_jsonl(), encoding="utf-8")
        typer.echo(f"Trail written to {trail}")


# --- live ATMs on the serial link ------------------------------------------------------

Out = Annotated[
    Path,
    typer.Option(
        "--out", help="Directory for ej/ paper/ host/ counters/ truth.jsonl, events/, fleet.json."
    ),
]
Baud = Annotated[
    int, typer.Option("--baud", help="Line speed, 8N1 (bytes/s = baud / 10).", min=300)
]
Speed = Annotated[
    float, typer.Option("--speed", help="Simulated seconds per real second (1 = real time).")
]
Noise = Annotated[
    float, typer.Option("--noise", help="Probability that a byte on the line is corrupted.")
]
Seed = Annotated[int, typer.Option("--seed", help="Seed of customers, faults and line noise.")]
Start = Annotated[
    str, typer.Option("--start", help="Simulated start, YYYY-MM-DDTHH:MM:SS (default: now).")
]
MeanTransactions = Annotated[
    float, typer.Option("--mean-transactions", help="Customers per ATM and day.")
]
DiscrepancyRate = Annotated[
    float,
    typer.Option("--discrepancy-rate", help="Share of transactions hit by a random fault."),
]
Control = Annotated[
    int | None,
    typer.Option(
        "--control",
        help="Also take console commands on this loopback TCP port (0: any free port).",
    ),
]
LogLevel = Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")]


def _start(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value) if value else datetime.now().replace(microsecond=0)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not YYYY-MM-DDTHH:MM:SS", param_hint="--start"
        ) from None


def _logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )


@contextmanager
def _exit_on_failure(command: str) -> Iterator[None]:
    """A simulator's refusal ends the command with status 2, an operating-system error
    with status 1, each with its message and no traceback."""
    try:
        yield
    except SimulatorError as exc:
        typer.echo(f"atm-sim {command}: {exc}", err=True)
        raise typer.Exit(2) from None
    except OSError as exc:
        typer.echo(f"atm-sim {command}: {exc}", err=True)
        raise typer.Exit(1) from None


def _simulate(options: SimulationOptions, command: str) -> None:
    from simulators.runner import Simulation

    with _exit_on_failure(command):
        simulation = Simulation(options)
        simulation.run(sys.stdin)


@app.command("atm")
def atm_command(
    out: Out,
    terminal_id: Annotated[
        str, typer.Option("--terminal-id", help="Terminal ID (8 characters).")
    ] = "T1000001",
    pty: Annotated[
        bool, typer.Option("--pty", help="Serve on a new pseudo-terminal (the default).")
    ] = False,
    url: Annotated[
        str | None, typer.Option("--url", help="Serve on this pyserial URL or serial device.")
    ] = None,
    tcp: Annotated[
        int | None, typer.Option("--tcp", help="Serve on this loopback TCP port (0: any).")
    ] = None,
    baud: Baud = 115200,
    speed: Speed = 60.0,
    noise: Noise = 0.0,
    dialect: Annotated[str, typer.Option("--dialect", help="EJ dialect: ndc or procash.")] = "ndc",
    seed: Seed = 0,
    start: Start = "",
    mean_transactions: MeanTransactions = 120.0,
    discrepancy_rate: DiscrepancyRate = 0.0,
    control: Control = None,
    log_level: LogLevel = "WARNING",
) -> None:
    """Run one live ATM served on the serial link, with a console to inject faults.

    Prints the device path (or URL) to give the agent as --port. Console commands on
    standard input (and on --control): inject FAULT, clear DEVICE, door open|close,
    replenish, visit, reboot, status, pause, resume, speed N, help, quit.
    """
    from simulators.live_device import LinkOptions
    from simulators.runner import AtmSpec, SimulationOptions

    if sum(1 for chosen in (pty, url is not None, tcp is not None) if chosen) > 1:
        raise typer.BadParameter("choose one of --pty, --url and --tcp")
    if not 0.0 <= noise < 1.0:
        raise typer.BadParameter(f"{noise} is not a probability below 1", param_hint="--noise")
    if url is not None:
        link = LinkOptions(where="url", url=url, baudrate=baud, noise=noise)
    elif tcp is not None:
        link = LinkOptions(where="tcp", tcp_port=tcp, baudrate=baud, noise=noise)
    else:
        link = LinkOptions(where="pty", baudrate=baud, noise=noise)
    _logging(log_level)
    try:
        options = SimulationOptions(
            out=out,
            atms=(AtmSpec(terminal_id=terminal_id, dialect=dialect, link=link),),
            start=_start(start),
            speed=speed,
            seed=seed,
            mean_transactions=mean_transactions,
            discrepancy_rate=discrepancy_rate,
            control_port=control,
        )
    except SimulatorError as exc:
        typer.echo(f"atm-sim atm: {exc}", err=True)
        raise typer.Exit(2) from None
    _simulate(options, "atm")


@app.command("fleet")
def fleet_command(
    out: Out,
    count: Annotated[int, typer.Option("--count", help="Number of ATMs.", min=1)],
    first_terminal: Annotated[
        int,
        typer.Option("--first-terminal", help="Number of the first terminal ID (T + 7 digits)."),
    ] = 1_000_001,
    tcp: Annotated[
        int | None,
        typer.Option("--tcp", help="Serve on loopback TCP ports from this one up, not on ptys."),
    ] = None,
    baud: Baud = 115200,
    speed: Speed = 60.0,
    noise: Noise = 0.0,
    dialect: Annotated[
        str, typer.Option("--dialect", help="EJ dialect: ndc, procash or mixed.")
    ] = "mixed",
    seed: Seed = 0,
    start: Start = "",
    mean_transactions: MeanTransactions = 120.0,
    discrepancy_rate: DiscrepancyRate = 0.0,
    control: Control = None,
    agents: Annotated[
        bool,
        typer.Option("--agents", help="Also run one atm-agent per ATM (needs --service, --keys)."),
    ] = False,
    service: Annotated[
        str | None, typer.Option("--service", help="The service URL the agents upload to.")
    ] = None,
    keys: Annotated[
        Path | None,
        typer.Option("--keys", help="Directory of agent keys <TID>.key (missing ones are made)."),
    ] = None,
    heartbeat_interval: Annotated[
        float, typer.Option("--heartbeat-interval", help="Agents' seconds between heartbeats.")
    ] = 30.0,
    log_level: LogLevel = "WARNING",
) -> None:
    """Run COUNT live ATMs, each on its own serial link; optionally one agent per ATM.

    Prints a table of terminal ids and device paths (also in OUT/fleet.json, with each
    agent's key, public key and spool). Console commands name the ATM first
    (T1000002 inject dispenser_jam) or say all. Agents' keys must be enrolled at the
    service for their ATMs (POST /api/v1/atms/{id}/device-keys).
    """
    from simulators.agents import AgentOptions
    from simulators.live_device import LinkOptions
    from simulators.runner import SimulationOptions, fleet_specs

    if not 0.0 <= noise < 1.0:
        raise typer.BadParameter(f"{noise} is not a probability below 1", param_hint="--noise")
    link = (
        LinkOptions(where="tcp", tcp_port=tcp, baudrate=baud, noise=noise)
        if tcp is not None
        else LinkOptions(where="pty", baudrate=baud, noise=noise)
    )
    _logging(log_level)
    try:
        agent_options = None
        if agents:
            if service is None or keys is None:
                raise typer.BadParameter("--agents needs --service URL and --keys DIR")
            agent_options = AgentOptions(
                service_url=service.rstrip("/"),
                keys=keys,
                spools=out / "agents",
                logs=out / "agents",
                baudrate=baud,
                heartbeat_interval_s=heartbeat_interval,
            )
        elif service is not None or keys is not None:
            raise typer.BadParameter("--service and --keys go with --agents")
        options = SimulationOptions(
            out=out,
            atms=fleet_specs(
                count, first_terminal=first_terminal, dialect=dialect, link=link, seed=seed
            ),
            start=_start(start),
            speed=speed,
            seed=seed,
            mean_transactions=mean_transactions,
            discrepancy_rate=discrepancy_rate,
            control_port=control,
            agents=agent_options,
        )
    except SimulatorError as exc:
        typer.echo(f"atm-sim fleet: {exc}", err=True)
        raise typer.Exit(2) from None
    _simulate(options, "fleet")


@app.command("world")
def world_command(
    spec: Annotated[
        Path,
        typer.Option(
            "--spec",
            help="The world's spec (JSON: the ATMs, the service, keys, lock records, panel port).",
        ),
    ],
    log_level: LogLevel = "INFO",
) -> None:
    """Run a world from a spec: live ATMs with their agents and safe locks, and the panel.

    The ATMs start a business day or more in the past (their switch files exist at once)
    and serve customers from then on; the panel (a web page on the spec's port) injects
    faults, works the safe locks and doors, and replenishes. Ctrl-C or SIGTERM stops it.
    The service's demo (atm-service demo) writes the spec and runs this.
    """
    from simulators.world import World, WorldSpec

    _logging(log_level)
    with _exit_on_failure("world"):
        world = World(WorldSpec.from_file(spec))
        world.run()


@app.command(
    "serial-device",
    add_help_option=False,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def serial_device_command(context: typer.Context) -> None:
    """Serve a directory of journal files as a device (--journals DIR --terminal-id TID ...;
    --help for the options)."""
    from simulators.serial_device import main as serve

    serve(list(context.args), prog="atm-sim serial-device")


def main() -> None:
    app()
