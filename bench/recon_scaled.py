"""Reconciliation throughput on the reference sample replicated to many terminals.

Copies ``shared/formats/sample/`` N times under new terminal IDs (the ID is
rewritten inside every file, byte for byte, so the ISO 8583 records keep their
lengths), runs ``reconcile`` on the copy and prints EJ MB/s, transactions/s,
the phase timings and the peak RSS of this process and its workers. Each copy
must give the sample's own findings, so the figure is only printed for a
correct run.

    .venv/bin/python bench/recon_scaled.py [--copies 400] [--workers 2] [--sample PATH]

Until the simulators' generator exists this is the local throughput check; it
is replaced by ``bench/recon.py`` then.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import sys
import tempfile
import time
from pathlib import Path

from reconciliation import Options, Sources, reconcile

HERE = Path(__file__).resolve().parent
TID = re.compile(rb"T100000([1-6])")


def _default_sample() -> Path:
    for base in (HERE.parent, *HERE.parents):
        candidate = base / "shared" / "formats" / "sample"
        if candidate.is_dir():
            return candidate
    sys.exit("shared/formats/sample not found; pass --sample")


def _cpu() -> float:
    """CPU seconds of this process and its finished workers (others' load excluded)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def replicate(sample: Path, target: Path, copies: int) -> int:
    """Write ``copies`` renamed copies of the sample; returns the expected findings."""
    for folder in ("ej", "paper", "counters", "host"):
        (target / folder).mkdir(parents=True)
    for folder in ("ej", "paper", "counters"):
        for path in sorted((sample / folder).iterdir()):
            data = path.read_bytes()
            for copy in range(copies):
                prefix = f"T{copy:04d}".encode()

                def rename(match: re.Match[bytes], prefix: bytes = prefix) -> bytes:
                    return prefix + b"00" + match.group(1)

                name = TID.sub(rename, path.name.encode()).decode()
                (target / folder / name).write_bytes(TID.sub(rename, data))
    for path in sorted((sample / "host").iterdir()):
        data = path.read_bytes()
        with (target / "host" / path.name).open("wb") as handle:
            if path.suffix == ".csv":
                header, _, body = data.partition(b"\n")
                handle.write(header + b"\n")
            else:
                body = data
            for copy in range(copies):
                prefix = f"T{copy:04d}".encode()
                handle.write(TID.sub(lambda match, p=prefix: p + b"00" + match.group(1), body))
    truth = (sample / "truth.jsonl").read_text().count("\n")
    return truth * copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--sample", type=Path, default=None)
    args = parser.parse_args()
    sample = args.sample or _default_sample()
    with tempfile.TemporaryDirectory(prefix="recon-bench-") as tmp:
        root = Path(tmp)
        expected = replicate(sample, root, args.copies)
        sources = Sources.from_dirs(
            ej=root / "ej", paper=root / "paper", host=root / "host", counters=root / "counters"
        )
        cpu_before = _cpu()
        started = time.perf_counter()
        result = reconcile(sources, options=Options(workers=args.workers))
        elapsed = time.perf_counter() - started
        cpu = _cpu() - cpu_before
    if len(result.discrepancies) != expected:
        sys.exit(f"wrong result: {len(result.discrepancies)} findings, expected {expected}")
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    figures = [
        ("recon_ej_bytes", result.ej_bytes, "bytes"),
        ("recon_transactions", result.transactions, "transactions"),
        ("recon_host_messages", result.host_messages, "messages"),
        ("recon_total_seconds", round(elapsed, 3), "s"),
        ("recon_ej_throughput_end_to_end", round(result.ej_bytes / elapsed / 1e6, 2), "MB/s"),
        ("recon_transactions_per_second", round(result.transactions / elapsed), "transactions/s"),
        ("recon_cpu_seconds", round(cpu, 3), "s"),
        ("recon_ej_throughput_per_cpu_second", round(result.ej_bytes / cpu / 1e6, 2), "MB/s"),
        *(
            (f"recon_{phase}_seconds", round(value, 3), "s")
            for phase, value in result.timings.items()
            if phase != "total"
        ),  # host, terminals: wall clock; cpu_<stage>: CPU in the terminal batches
        ("recon_peak_rss_main", round(own / 1024, 1), "MiB"),
        ("recon_peak_rss_worker", round(children / 1024, 1), "MiB"),
    ]
    for metric, value, unit in figures:
        print(json.dumps({"metric": metric, "value": value, "unit": unit}))


if __name__ == "__main__":
    main()
