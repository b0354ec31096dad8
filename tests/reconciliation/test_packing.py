"""Packing terminals into batches of work (reconciliation.engine._pack), and the workers."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from reconciliation.engine import _pack
from reconciliation.sources import Source


def _groups(sizes: dict[str, int]) -> dict[str, list[Source]]:
    return {
        terminal: [Source("ej", f"{terminal}.txt", terminal, "2026-11-16", data=b"x" * size)]
        for terminal, size in sizes.items()
    }


def test_batches_hold_about_the_limit_largest_terminals_first() -> None:
    groups = _groups({f"T{n:07d}": 100 + n for n in range(10)})
    batches = _pack(groups, 300)
    assert batches[0] == ["T0000009", "T0000008", "T0000007"]
    assert sorted(t for batch in batches for t in batch) == sorted(groups)
    assert all(sum(100 + int(t[1:]) for t in batch) >= 300 for batch in batches[:-1])


def test_the_first_batches_can_be_larger() -> None:
    groups = _groups({f"T{n:07d}": 100 for n in range(20)})
    batches = _pack(groups, 200, (2, 600))
    assert [len(batch) for batch in batches] == [6, 6, 2, 2, 2, 2]
    assert sorted(t for batch in batches for t in batch) == sorted(groups)


def test_a_smaller_first_size_changes_nothing() -> None:
    groups = _groups({f"T{n:07d}": 100 for n in range(8)})
    assert _pack(groups, 200, (2, 50)) == _pack(groups, 200)


@pytest.mark.skipif(not hasattr(os, "nice"), reason="no process priorities here")
def test_workers_run_below_the_parents_priority() -> None:
    """The parent reads the host files every batch waits for; its workers yield to it."""
    from reconciliation.engine import _WORKER_NICENESS, _executor

    with _executor(1) as pool:
        worker = pool.submit(os.nice, 0).result()
    assert worker == min(os.nice(0) + _WORKER_NICENESS, 19)


def test_workers_collect_no_garbage_cycles() -> None:
    """Batches build only acyclic data; a collection after each batch only cost time."""
    import gc

    from reconciliation.engine import _executor

    with _executor(1) as pool:
        assert pool.submit(gc.isenabled).result() is False
    assert gc.isenabled()  # the run's own process is left as it was


def _ended(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"  # a zombie has ended
    except FileNotFoundError:
        return True


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="no /proc to watch processes in")
def test_a_worker_ends_when_its_run_is_killed() -> None:
    """A killed run leaves no worker behind (one busy or blocked would otherwise stay)."""
    script = (
        "import os, sys, time\n"
        "from reconciliation.engine import _executor\n"
        "pool = _executor(1)\n"
        "print(pool.submit(os.getpid).result(), flush=True)\n"
        "pool.submit(time.sleep, 60)\n"
        "time.sleep(60)\n"
    )
    with subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True) as run:
        try:
            assert run.stdout is not None
            worker = int(run.stdout.readline())
            assert not _ended(worker)
        finally:
            run.kill()
    deadline = time.monotonic() + 10
    while not _ended(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ended(worker), "the worker outlived its killed run"


@pytest.mark.skipif(not hasattr(os, "posix_fadvise"), reason="no file read-ahead advice here")
def test_a_batch_asks_for_its_files_to_be_read_ahead_before_it_reads_them(
    sample: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each file of a batch is advised to the system (WILLNEED) before the first
    is read, so that the disk reads them while the first ones are parsed; bytes in
    memory and files that cannot be opened are passed over, and the batch's
    findings are those of a batch without the advice."""
    from reconciliation import Sources
    from reconciliation.batch import run_batch
    from reconciliation.handoff import HostHandoff
    from reconciliation.options import Options
    from reconciliation.sources import prefetch

    sources = Sources.from_dirs(
        ej=sample / "ej", paper=sample / "paper", counters=sample / "counters"
    )
    files = [item for item in sources.items if item.terminal_id == "T1000001"]
    assert len(files) >= 2
    held = Source("ej", "held", "T1000001", "2026-11-16", data=b"")
    gone = Source("paper", "gone", "T1000001", "2026-11-16", path=tmp_path / "gone.txt")
    advised: list[tuple[str, int]] = []
    reads: list[str] = []

    def advise(handle: int, offset: int, length: int, advice: int) -> None:
        assert (offset, length) == (0, 0)
        advised.append((os.readlink(f"/proc/self/fd/{handle}"), advice))

    original = Source.read

    def read(source: Source) -> bytes:
        reads.append(source.name)
        assert len(advised) == len(files)  # every file advised before any is read
        return original(source)

    expected = run_batch(files, HostHandoff.empty(), Options())
    monkeypatch.setattr(os, "posix_fadvise", advise)
    monkeypatch.setattr(Source, "read", read)
    prefetch([held, gone])
    assert not advised
    found = run_batch(files, HostHandoff.empty(), Options())
    assert advised == [(str(item.path.resolve()), os.POSIX_FADV_WILLNEED) for item in files]
    assert reads
    assert found.discrepancies == expected.discrepancies
