"""``atm-lock``: offline lock-control commands.

- ``verify-export FILE`` checks a lock-access log export with the log's public key;
- ``new-master-key``, ``new-signing-key`` create the service's secrets (mode 0600);
- ``provision-lock`` creates or rotates a lock key in a key file (encrypted under the
  master key) and writes the lock's provisioning record, e.g. for the simulator;
- ``rewrap-keys`` re-encrypts a key file under a new master key;
- ``odds`` prints the guessing odds of a lock policy.

Exit status: 0 on success, 1 when an export does not verify, 2 for bad input.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from lockctl import __version__
from lockctl.codes import Operation
from lockctl.errors import ExportInvalid, LockCtlError
from lockctl.export import verify_export
from lockctl.odds import GuessingOdds
from lockctl.policy import LockPolicy
from lockctl.provisioning import Provisioning
from lockctl.signing import CheckpointSigner, PublicKeys, public_key_text
from lockctl.vault import MASTER_KEY_ENV, JsonFileKeyStore, KeyVault, MasterKey, MasterKeyRing

app = typer.Typer(
    help=(
        "Safe-lock control: one-time codes, close seals, the key vault, and offline "
        "verification of lock-access log exports."
    ),
    no_args_is_help=True,
    add_completion=False,
)

INVALID = 1
BAD_INPUT = 2


def _fail(message: str, code: int = BAD_INPUT) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code=code)


@contextmanager
def _input_errors() -> Iterator[None]:
    """Turn the library's errors into a one-line message and exit status 2."""
    try:
        yield
    except LockCtlError as exc:
        raise _fail(str(exc)) from None


def _write_new(path: Path, data: bytes, *, secret: bool) -> None:
    """Create ``path`` (never overwrite); secrets get mode 0600."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if secret else 0o644)
    except FileExistsError:
        raise _fail(f"{path} exists; not overwriting it") from None
    except OSError as exc:
        raise _fail(f"cannot create {path}: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as out:
        out.write(data)


def _master_key(path: Path | None) -> MasterKey:
    try:
        return MasterKey.from_file(path) if path is not None else MasterKey.from_env(os.environ)
    except LockCtlError as exc:
        raise _fail(str(exc)) from None


WindowSeconds = Annotated[int, typer.Option(help="Length of a code's time window, seconds.")]
Lookback = Annotated[int, typer.Option(help="Earlier windows whose codes are still accepted.")]
Skew = Annotated[int, typer.Option(help="Clock-skew tolerance at window edges, seconds.")]
MaxFailures = Annotated[int, typer.Option(help="Wrong codes in a row before a penalty.")]
Penalty = Annotated[int, typer.Option(help="First penalty, seconds.")]
Growth = Annotated[int, typer.Option(help="Each further penalty is this many times longer.")]
MaxPenalty = Annotated[int, typer.Option(help="Longest penalty, seconds.")]
Operations = Annotated[
    list[Operation] | None, typer.Option("--operation", help="Allowed operations (default all).")
]
Dual = Annotated[
    list[Operation] | None,
    typer.Option("--dual-control", help="Operations that need two users' codes."),
]


def _policy(
    window_seconds: int,
    lookback_windows: int,
    clock_skew_seconds: int,
    max_failures: int,
    penalty_seconds: int,
    penalty_growth: int,
    max_penalty_seconds: int,
    operations: list[Operation] | None,
    dual_control: list[Operation] | None,
) -> LockPolicy:
    try:
        return LockPolicy(
            window_seconds=window_seconds,
            lookback_windows=lookback_windows,
            clock_skew_seconds=clock_skew_seconds,
            max_failures=max_failures,
            penalty_seconds=penalty_seconds,
            penalty_growth=penalty_growth,
            max_penalty_seconds=max_penalty_seconds,
            operations=frozenset(operations) if operations else frozenset(Operation),
            dual_control=frozenset(dual_control or ()),
        )
    except LockCtlError as exc:
        raise _fail(str(exc)) from None


_DEFAULT = LockPolicy()


@app.callback()
def _group() -> None:
    """Commands of this tool; --help on each says more."""


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(f"atm-lock {__version__}")


@app.command("verify-export")
def verify_export_command(
    file: Annotated[Path, typer.Argument(help="The export file (JSON lines).")],
    public_key: Annotated[
        list[Path] | None,
        typer.Option(
            "--public-key",
            help="The log's checkpoint public key (PEM or 'ed25519:<base64>'); repeatable. "
            "Without it the key written in the export is used, which proves nothing "
            "about who signed.",
        ),
    ] = None,
) -> None:
    """Verify a lock-access log export offline and name the first bad entry."""
    keys = None
    if public_key:
        blobs = []
        for path in public_key:
            try:
                blobs.append(path.read_bytes())
            except OSError as exc:
                raise _fail(f"cannot read public key {path}: {exc.strerror}") from None
        with _input_errors():
            keys = PublicKeys(
                key
                for path, blob in zip(public_key, blobs, strict=True)
                for key in PublicKeys.parse(blob, source=str(path))
            )
    try:
        handle = file.open("rb")
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}") from None
    with handle:
        try:
            summary = verify_export(handle, keys)
        except ExportInvalid as exc:
            typer.echo(f"INVALID {file}: {exc}", err=True)
            raise typer.Exit(code=INVALID) from None
    typer.echo(f"OK {file}: {summary.describe()}")


@app.command("new-master-key")
def new_master_key(
    file: Annotated[Path, typer.Argument(help="Where to write the key (created, mode 0600).")],
) -> None:
    """Create a master key file for the key vault. Keep it out of the database and backups
    of it; the service reads it from the file or the ATM_LOCK_MASTER_KEY variable."""
    key = MasterKey.generate()
    _write_new(file, key.to_text().encode("ascii"), secret=True)
    typer.echo(f"Wrote master key {key.key_id} to {file}")


@app.command("new-signing-key")
def new_signing_key(
    file: Annotated[Path, typer.Argument(help="Private key file to create (PEM, mode 0600).")],
    public_out: Annotated[
        Path | None, typer.Option(help="Public key file (default: FILE with .pub appended).")
    ] = None,
) -> None:
    """Create the Ed25519 key that signs the lock-access log's checkpoints; give the public
    key to the auditors."""
    signer = CheckpointSigner.generate()
    public_path = public_out or file.with_name(file.name + ".pub")
    _write_new(file, signer.private_pem(), secret=True)
    _write_new(public_path, signer.public_pem(), secret=False)
    typer.echo(f"Wrote signing key {signer.key_id} to {file} and its public key to {public_path}")
    typer.echo(public_key_text(signer.public_key))


@app.command("provision-lock")
def provision_lock(
    lock_id: Annotated[str, typer.Argument(help="The lock's id, e.g. its serial number.")],
    keys: Annotated[Path, typer.Option(help="Key file holding encrypted lock keys.")],
    out: Annotated[
        Path, typer.Option(help="Provisioning record to create, for the lock (mode 0600).")
    ],
    master_key: Annotated[
        Path | None, typer.Option(help=f"Master key file (default: ${MASTER_KEY_ENV}).")
    ] = None,
    rotate: Annotated[bool, typer.Option(help="Give an existing lock a new key version.")] = False,
    window_seconds: WindowSeconds = _DEFAULT.window_seconds,
    lookback_windows: Lookback = _DEFAULT.lookback_windows,
    clock_skew_seconds: Skew = _DEFAULT.clock_skew_seconds,
    max_failures: MaxFailures = _DEFAULT.max_failures,
    penalty_seconds: Penalty = _DEFAULT.penalty_seconds,
    penalty_growth: Growth = _DEFAULT.penalty_growth,
    max_penalty_seconds: MaxPenalty = _DEFAULT.max_penalty_seconds,
    operation: Operations = None,
    dual_control: Dual = None,
) -> None:
    """Create (or rotate) a lock's key and write the record that loads it into the lock."""
    policy = _policy(
        window_seconds,
        lookback_windows,
        clock_skew_seconds,
        max_failures,
        penalty_seconds,
        penalty_growth,
        max_penalty_seconds,
        operation,
        dual_control,
    )
    if out.exists():
        raise _fail(f"{out} exists; not overwriting it")
    master = _master_key(master_key)
    now = datetime.now(UTC)
    with _input_errors():
        vault = KeyVault(JsonFileKeyStore(keys), master)
        key = vault.rotate(lock_id, now=now) if rotate else vault.create(lock_id, now=now)
    _write_new(out, Provisioning(key, policy).to_json().encode("ascii"), secret=True)
    typer.echo(
        f"Lock {lock_id}: key version {key.version} stored in {keys} under master key "
        f"{master.key_id}; provisioning record written to {out}"
    )


@app.command("rewrap-keys")
def rewrap_keys(
    keys: Annotated[Path, typer.Option(help="Key file to re-encrypt in place.")],
    old_master_key: Annotated[
        list[Path], typer.Option(help="Master key file(s) the records are under now.")
    ],
    master_key: Annotated[
        Path | None, typer.Option(help=f"The new master key file (default: ${MASTER_KEY_ENV}).")
    ] = None,
) -> None:
    """Re-encrypt every lock key under a new master key (master key rotation)."""
    if not keys.exists():
        raise _fail(f"{keys} does not exist")
    primary = _master_key(master_key)
    with _input_errors():
        older = [MasterKey.from_file(path) for path in old_master_key]
        ring = MasterKeyRing(primary, *[k for k in older if k.key_id != primary.key_id])
        count = KeyVault(JsonFileKeyStore(keys), ring).rewrap()
    typer.echo(f"Re-encrypted {count} key record(s) in {keys} under master key {primary.key_id}")


@app.command()
def odds(
    window_seconds: WindowSeconds = _DEFAULT.window_seconds,
    lookback_windows: Lookback = _DEFAULT.lookback_windows,
    clock_skew_seconds: Skew = _DEFAULT.clock_skew_seconds,
    max_failures: MaxFailures = _DEFAULT.max_failures,
    penalty_seconds: Penalty = _DEFAULT.penalty_seconds,
    penalty_growth: Growth = _DEFAULT.penalty_growth,
    max_penalty_seconds: MaxPenalty = _DEFAULT.max_penalty_seconds,
    operation: Operations = None,
) -> None:
    """Print the odds of opening a lock by guessing codes, for a policy."""
    policy = _policy(
        window_seconds,
        lookback_windows,
        clock_skew_seconds,
        max_failures,
        penalty_seconds,
        penalty_growth,
        max_penalty_seconds,
        operation,
        None,
    )
    for line in GuessingOdds.of(policy).lines():
        typer.echo(line)


def main() -> None:
    app()
