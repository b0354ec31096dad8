"""Lock-control benchmarks: one function per figure, each printing one JSON line.

- ``audit_verify_entries_per_s``: offline verification (``lockctl.verify_export``, what
  ``atm-lock verify-export`` runs) of an export of 1,000,000 entries read from a file;
  target >= 200,000 entries/s.
- ``otc_issue_library_p99_ms``: issuing a code in the library as the service will:
  decrypt the lock key from the vault, derive the code, append the ``code-issued``
  entry to the log and serialise the lock's chain state. The service-API figure
  (``otc_issue_p99_ms``, through HTTP and the database, target < 50 ms) is measured
  by the service's own benchmark function once issuing is exposed there.
- ``seal_verify_library_p99_ms``: verifying a close seal and logging it.

Run: ``.venv/bin/python bench/lock.py [--entries N]``. Figures are wall-clock on this
machine and drop when other work shares its cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from lockctl import (
    AuditLog,
    CheckpointSigner,
    EntryKind,
    FileLogStore,
    KeyVault,
    LockChain,
    LockControl,
    LockFirmware,
    LockPolicy,
    MasterKey,
    MemoryKeyStore,
    MemoryLogStore,
    Operation,
    PublicKeys,
    verify_export,
)

T0 = datetime(2026, 11, 16, 8, 0, tzinfo=UTC)


def emit(metric: str, value: float, unit: str) -> None:
    print(json.dumps({"metric": metric, "value": round(value, 3), "unit": unit}), flush=True)


def _entry(n: int) -> tuple[EntryKind, dict[str, object]]:
    """Entries shaped like the service's: issuances, seal reports, imported failures."""
    lock = f"CX-{n % 5000:06d}"
    window = 498_560 + n // 2000
    if n % 3 == 0:
        return EntryKind.CODE_ISSUED, {
            "lock": lock,
            "purpose": "opening",
            "user": 1000 + n % 777,
            "operation": "route",
            "window": window,
            "valid_from": "2026-11-16T08:00:00Z",
            "valid_until": "2026-11-16T10:00:00Z",
            "key_version": 1,
            "code_tag": f"{n:032x}",
            "chain": f"{n * 7:032x}",
            "issued_by": "dispatch-7",
            "task": 100_000 + n,
        }
    if n % 3 == 1:
        return EntryKind.SEAL_REPORTED, {
            "lock": lock,
            "purpose": "opening",
            "users": [1000 + n % 777],
            "window": window,
            "matched": True,
            "duress": False,
            "seal": f"{n % 10**8:08d}",
            "previous_chain": f"{n * 7:032x}",
            "chain": f"{n * 11:032x}",
            "sequence": n // 3,
            "reported_by": "engineer-42",
        }
    return EntryKind.FAILURE, {
        "lock": lock,
        "source": "lock",
        "event": "wrong-code",
        "lock_seq": n,
        "lock_at": "2026-11-16T08:24:00Z",
        "users": [42],
    }


def audit_verify_entries_per_s(entries: int) -> None:
    signer = CheckpointSigner.generate()
    with tempfile.TemporaryDirectory(prefix="lock-bench-") as directory:
        store = FileLogStore(Path(directory) / "log")
        log = AuditLog(store, signer, log_id="bench:locks", checkpoint_every=1000)
        now = T0
        for n in range(entries - 1):  # the export adds its own entry
            kind, fields = _entry(n)
            log.append(kind, fields, now=now)
            if n % 100 == 0:
                now += timedelta(seconds=7)
        export = Path(directory) / "export.jsonl"
        with export.open("wb") as out:
            log.export(out, now=now, by="bench")
        store.close()
        keys = PublicKeys([signer.public_key])
        runs = []
        for _ in range(3):
            with export.open("rb") as handle:
                started = time.perf_counter()
                summary = verify_export(handle, keys)
                runs.append(time.perf_counter() - started)
        assert summary.entries == entries, summary
    emit("audit_verify_entries_per_s", entries / statistics.median(runs), "entries/s")


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def otc_issue_and_seal_latency(rounds: int) -> None:
    policy = LockPolicy()
    control = LockControl(policy)
    vault = KeyVault(MemoryKeyStore(), MasterKey.generate())
    log = AuditLog(MemoryLogStore(), CheckpointSigner.generate(), log_id="bench:locks")
    locks = [f"CX-{n:04d}" for n in range(100)]
    chains = {}
    firmware = {}
    states = {}
    for lock in locks:
        key = vault.create(lock, now=T0)
        chains[lock] = control.provision(key).to_dict()
        firmware[lock] = LockFirmware(key, policy)
        states[lock] = firmware[lock].initial_state()
    issue_ms: list[float] = []
    seal_ms: list[float] = []
    now = T0
    for n in range(rounds):
        lock = locks[n % len(locks)]
        now += timedelta(seconds=3)
        started = time.perf_counter()
        key = vault.active(lock)
        issuance = control.issue(
            LockChain.from_dict(chains[lock]), key, user=42, operation=Operation.OPEN, now=now
        )
        log.append(EntryKind.CODE_ISSUED, issuance.codes[0].audit_fields(), now=now)
        chains[lock] = issuance.chain.to_dict()
        issue_ms.append((time.perf_counter() - started) * 1000)

        # the engineer at the lock (not timed)
        entry = firmware[lock].enter(states[lock], user=42, code=issuance.codes[0].code, now=now)
        relocked = firmware[lock].relock(entry.state, now=now)
        states[lock] = relocked.state

        started = time.perf_counter()
        key = vault.active(lock)
        confirmed = control.verify_seal(
            LockChain.from_dict(chains[lock]), key, relocked.seal, now=now
        )
        log.append(EntryKind.SEAL_REPORTED, confirmed.audit_fields(), now=now)
        chains[lock] = confirmed.chain.to_dict()
        seal_ms.append((time.perf_counter() - started) * 1000)
    emit("otc_issue_library_p99_ms", _percentile(issue_ms, 0.99), "ms")
    emit("seal_verify_library_p99_ms", _percentile(seal_ms, 0.99), "ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000, help="export size")
    parser.add_argument("--rounds", type=int, default=5_000, help="issue/seal cycles")
    args = parser.parse_args(argv)
    if args.entries < 2 or args.rounds < 1:
        parser.error("--entries must be at least 2 and --rounds at least 1")
    audit_verify_entries_per_s(args.entries)
    otc_issue_and_seal_latency(args.rounds)
    return 0


if __name__ == "__main__":
    sys.exit(main())
