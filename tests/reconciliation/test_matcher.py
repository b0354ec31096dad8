"""The matcher's answer does not depend on the order of its inputs."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation import Sources, reconcile
from reconciliation.host_iso import parse_iso
from reconciliation.sources import Source


def _records(data: bytes) -> list[bytes]:
    records = []
    offset = 0
    while offset < len(data):
        size = int.from_bytes(data[offset : offset + 2], "big")
        records.append(data[offset : offset + 2 + size])
        offset += 2 + size
    return records


def _shuffled(source: Source, rng: random.Random) -> Source:
    data = source.read()
    if source.kind == "iso":
        records = _records(data)
        rng.shuffle(records)
        data = b"".join(records)
    elif source.kind == "csv":
        header, _, body = data.partition(b"\n")
        rows = body.splitlines(keepends=True)
        rng.shuffle(rows)
        data = header + b"\n" + b"".join(rows)
    else:
        return source
    return Source(source.kind, source.name, source.terminal_id, source.business_date, data=data)


def _answer(sources: Sources) -> list[tuple[object, ...]]:
    result = reconcile(sources)
    return sorted(
        (d.terminal_id, d.business_date, d.kind, d.stan, d.amount_minor, str(d.detail))
        for d in result.discrepancies
    )


@settings(max_examples=12, deadline=None)
@given(st.integers(min_value=0, max_value=2**32))
def test_permuting_files_and_host_records_changes_nothing(sample: Path, seed: int) -> None:
    rng = random.Random(seed)
    base = Sources.from_dirs(
        ej=sample / "ej", paper=sample / "paper", host=sample / "host", counters=sample / "counters"
    )
    reference = _answer(base)
    items = [_shuffled(source, rng) for source in base.items]
    rng.shuffle(items)
    assert _answer(Sources(items=items)) == reference


def test_in_memory_ej_bytes_equal_files(sample: Path) -> None:
    from_files = Sources.from_dirs(
        ej=sample / "ej", paper=sample / "paper", host=sample / "host", counters=sample / "counters"
    )
    in_memory = Sources.from_dirs(
        paper=sample / "paper", host=sample / "host", counters=sample / "counters"
    )
    for source in from_files.of("ej"):
        in_memory.add_ej_bytes(source.terminal_id, source.business_date, source.read())
    result = reconcile(in_memory)
    assert _answer(in_memory) == _answer(from_files)
    excerpts = [d.evidence.ej_excerpt for d in result.discrepancies if d.kind == "retract_reversed"]
    assert excerpts
    assert all("Cash Retracted" in text or "CASH RETRACTED" in text for text in excerpts)


def test_parallel_parsing_gives_the_same_answer(sample: Path) -> None:
    from reconciliation import Options

    sources = Sources.from_dirs(
        ej=sample / "ej", paper=sample / "paper", host=sample / "host", counters=sample / "counters"
    )
    parallel = reconcile(sources, options=Options(workers=2, batch_bytes=50_000))
    assert sorted(
        (d.terminal_id, d.kind, d.stan, d.amount_minor) for d in parallel.discrepancies
    ) == sorted((t[0], t[2], t[3], t[4]) for t in _answer(sources))


def test_progress_is_reported_for_every_phase(sample: Path) -> None:
    seen: list[tuple[str, int, int]] = []
    reconcile(
        Sources.from_dirs(ej=sample / "ej", host=sample / "host", paper=sample / "paper"),
        progress=lambda update: seen.append((update.phase, update.done, update.total)),
    )
    phases = [phase for phase, _, _ in seen]
    assert phases[0] == "host"
    assert phases.index("terminals") > phases.index("host")
    for phase in ("host", "terminals"):
        updates = [(done, total) for name, done, total in seen if name == phase]
        assert updates[0][0] == 0
        assert updates[-1][0] == updates[-1][1] > 0
        assert [done for done, _ in updates] == sorted(done for done, _ in updates)


@given(st.text(alphabet="0123456789:x", max_size=10))
def test_clock_seconds_in_polars_equal_the_python_reading(clock: str) -> None:
    # receipt times come from ``\d\d:\d\d:\d\d`` patterns: ASCII digits, no spaces or signs
    import polars as pl

    from reconciliation.classify import clock_seconds
    from reconciliation.textutil import seconds

    frame = pl.DataFrame({"t": [clock, "08:39:56"]}, schema={"t": pl.Utf8})
    assert frame.select(clock_seconds(pl.col("t"))).to_series().to_list() == [
        seconds(clock),
        31196,
    ]


def test_host_days_without_an_ej_are_noted_and_counted(sample: Path) -> None:
    """A terminal-day the switch knows but no journal covers is no finding: a note
    says how many of its messages went unreconciled, and the day counts as seen."""
    from reconciliation import Options

    whole = Sources.from_dirs(ej=sample / "ej", host=sample / "host")
    missing = Sources(
        items=[
            item
            for item in whole.items
            if (item.terminal_id, item.business_date) != ("T1000002", "2026-11-16")
        ]
    )
    host = parse_iso(
        (sample / "host" / "20261116.iso").read_bytes(), source="h", file_date=date(2026, 11, 16)
    )
    requests = sum(
        1
        for message in host.messages
        if (message.terminal_id, message.business_date) == ("T1000002", "2026-11-16")
        and message.mti != "0420"
    )
    assert requests > 0
    for workers in (1, 2):
        result = reconcile(missing, options=Options(workers=workers, batch_bytes=50_000))
        notes = [note for note in result.observations if "but no EJ" in note]
        assert len(notes) == 1
        assert notes[0].startswith("T1000002 2026-11-16: ")
        assert int(notes[0].split(": ")[1].split()[0]) == requests
        assert result.terminal_days == reconcile(whole).terminal_days
    assert not [note for note in reconcile(whole).observations if "but no EJ" in note]


def test_a_scanned_folder_knows_each_file_in_name_order_with_its_size(sample: Path) -> None:
    sources = Sources.from_dirs(ej=sample / "ej", host=sample / "host")
    for kind in ("ej", "iso"):
        names = [Path(source.name).name for source in sources.of(kind)]
        assert names
        assert names == sorted(names)
    for source in sources.items:
        assert source.path is not None
        assert source.scanned_size == source.path.stat().st_size == source.size()
