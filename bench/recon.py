"""Reconciliation of a large generated day, scored against the simulators' ground truth.

The simulators (``simulators.generate``, what ``atm-sim generate`` runs) write a
day of a fleet: EJs of both dialects, OCR paper journals, the switch's ISO 8583
log and CSV export, counters files and ``truth.jsonl``. Generation is not timed
and is kept in the system's temporary folder under a name made of the options
and a digest of the simulators' source, so a second run starts at once.

The timed part is what ``atm-recon run --ej --paper --host --counters --out``
does, end to end (scan the folders, parse every input, match, classify, write
``discrepancies.jsonl``, ``summary.json``, the CSV, XLSX and HTML reports). It
runs in a child process, so that its peak memory is its own: the child runs the
command in-process and measures its wall clock around it, from the command line
to the last report written.

Figures (one JSON line each):

- ``recon_precision``, ``recon_recall``: findings of ``discrepancies.jsonl``
  against ``truth.jsonl`` by (terminal, day, kind, STAN, amount), cassette
  findings by (terminal, day, kind, cassette, denomination, notes, amount):
  ``simulators.truth.match_key``, as the sample's tests score; target >= 0.99 each;
- ``recon_mb_per_s``: EJ bytes (10^6) per second of the whole run; target >= 50;
- ``recon_txn_per_s``: EJ transactions per second;
- ``recon_peak_rss_mb``: peak resident memory of the run's processes together,
  MiB: the sum of their proportional set sizes (``/proc/<pid>/smaps_rollup``),
  so that the pages the forked report writer shares with the run count once;
  sampled every half second, as reading them costs about 20 ms per GiB; where
  ``/proc`` is missing, the run's peak RSS plus its largest child's
  (``getrusage``);
- ``recon_seconds`` (wall clock) and ``recon_cpu_seconds`` (the run's processes, imports
  included: under others' load the wall clock grows, this does not),
  ``recon_ej_mb``, ``recon_transactions``, ``recon_terminals``, ``recon_findings``
  and ``load_average_1m`` (others' work on the machine lowers the figures).

The inputs are read once, untimed, before the timed run, so that every run
starts with them in the system's file cache, as they are right after they were
written or uploaded: what is measured is the reconciliation, not the disk. This
machine's file cache drops files on its own, so without that a run found part
of them on disk and took a third longer or more (20.6 MB/s with the cache
emptied, 28.4 MB/s with it full, the same code one after the other);
``--as-found`` measures with the cache as it is.

    .venv/bin/python bench/recon.py [--terminals 2000] [--mean-transactions 250]
        [--days 1] [--seed 1] [--workers N] [--cache DIR] [--keep OUT] [--as-found]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": value, "unit": unit}), flush=True)


def _simulators_digest() -> str:
    import simulators

    digest = hashlib.sha256()
    for path in sorted(Path(simulators.__file__).parent.glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:12]


def dataset(args: argparse.Namespace) -> Path:
    """The generated data set for these options, made now if not cached."""
    from simulators.generate import FleetOptions, generate

    key = (
        f"t{args.terminals}-d{args.days}-m{args.mean_transactions:g}-s{args.seed}"
        f"-r{args.discrepancy_rate:g}-{_simulators_digest()}"
    )
    cache = args.cache or Path(tempfile.gettempdir()) / "atm-recon-bench"
    folder = cache / key
    if (folder / "complete").is_file():
        return folder
    shutil.rmtree(folder, ignore_errors=True)
    options = FleetOptions(
        terminals=args.terminals,
        days=args.days,
        seed=args.seed,
        mean_transactions=args.mean_transactions,
        discrepancy_rate=args.discrepancy_rate,
        workers=min(2, os.cpu_count() or 1),
        iso_encoder="fast",
    )
    print(f"generating {key} in {folder} ...", file=sys.stderr, flush=True)
    report = generate(options, folder)
    (folder / "complete").write_text(
        json.dumps({"transactions": report.transactions, "discrepancies": report.discrepancies})
    )
    return folder


def _keys(path: Path) -> Counter[tuple[object, ...]]:
    from simulators.truth import match_key, read

    return Counter(match_key(entry) for entry in read(path))


def timed_run(data: Path, out: Path, workers: int | None, record: Path) -> None:
    """The child: ``atm-recon run`` in this process, its wall clock and peak RSS."""
    from reconciliation.cli import app

    argv = ["run", "--quiet", "--out", str(out)]
    for kind in ("ej", "paper", "host", "counters"):
        argv += [f"--{kind}", str(data / kind)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    started = time.perf_counter()
    try:
        app(argv, standalone_mode=False)
    finally:
        elapsed = time.perf_counter() - started
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
    record.write_text(
        json.dumps({"seconds": elapsed, "rss_kib": own.ru_maxrss + children.ru_maxrss, "cpu": cpu})
    )


def _descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (``/proc/<pid>/task/<tid>/children``)."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                queue.extend(int(child) for child in task.read_text().split())
            except OSError:
                continue  # gone meanwhile
    return found


def _pss_kib(pid: int) -> int:
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return 0  # gone meanwhile
    for line in text.splitlines():
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def _peak_memory_kib(child: subprocess.Popen[bytes]) -> int:
    """Until ``child`` ends, the largest sum of its process tree's proportional set
    sizes, sampled every half second; 0 where ``/proc`` cannot tell."""
    peak = 0
    if not Path(f"/proc/{child.pid}/smaps_rollup").exists():
        child.wait()
        return 0
    while child.poll() is None:
        peak = max(peak, sum(_pss_kib(pid) for pid in _descendants(child.pid)))
        time.sleep(0.5)
    return peak


def _read_once(data: Path) -> None:
    """Every input file of ``data`` read through once (into the file cache)."""
    buffer = bytearray(1 << 20)
    for kind in ("ej", "paper", "host", "counters"):
        for path in sorted((data / kind).iterdir()):
            with path.open("rb", buffering=0) as handle:
                while handle.readinto(buffer):
                    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--terminals", type=int, default=2000)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--mean-transactions", type=float, default=250.0)
    parser.add_argument("--discrepancy-rate", type=float, default=0.03)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--cache", type=Path, default=None, help="folder for generated days")
    parser.add_argument("--keep", type=Path, default=None, help="keep the reports here")
    parser.add_argument(
        "--as-found", action="store_true", help="do not read the inputs once before the run"
    )
    parser.add_argument("--timed-run", nargs=3, metavar=("DATA", "OUT", "RECORD"), type=Path)
    args = parser.parse_args()
    if args.timed_run:
        data, out, record = args.timed_run
        timed_run(data, out, args.workers, record)
        return

    data = dataset(args)
    ej_bytes = sum(path.stat().st_size for path in (data / "ej").iterdir())
    if not args.as_found:
        _read_once(data)
    with tempfile.TemporaryDirectory(prefix="atm-recon-bench-out-") as tmp:
        out = args.keep or Path(tmp) / "out"
        record = Path(tmp) / "record.json"
        command = [sys.executable, __file__, "--timed-run", str(data), str(out), str(record)]
        if args.workers is not None:
            command += ["--workers", str(args.workers)]
        with subprocess.Popen(command, stdout=subprocess.DEVNULL) as child:
            peak_kib = _peak_memory_kib(child)
        if child.returncode:
            raise subprocess.CalledProcessError(child.returncode, command)
        measured = json.loads(record.read_text())
        found = _keys(out / "discrepancies.jsonl")
    truth = _keys(data / "truth.jsonl")
    right = sum((found & truth).values())
    seconds = measured["seconds"]
    transactions = json.loads((data / "complete").read_text())["transactions"]
    emit("recon_precision", round(right / max(sum(found.values()), 1), 4), "ratio")
    emit("recon_recall", round(right / max(sum(truth.values()), 1), 4), "ratio")
    emit("recon_mb_per_s", round(ej_bytes / seconds / 1e6, 2), "MB/s")
    emit("recon_txn_per_s", round(transactions / seconds), "transactions/s")
    emit("recon_peak_rss_mb", round((peak_kib or measured["rss_kib"]) / 1024, 1), "MiB")
    emit("recon_seconds", round(seconds, 2), "s")
    emit("recon_cpu_seconds", round(measured["cpu"], 2), "s")
    emit("recon_ej_mb", round(ej_bytes / 1e6, 1), "MB")
    emit("recon_transactions", transactions, "transactions")
    emit("recon_terminals", args.terminals * args.days, "terminal-days")
    emit("recon_findings", sum(found.values()), "findings")
    emit("load_average_1m", round(os.getloadavg()[0], 2), "processes")


if __name__ == "__main__":
    main()
