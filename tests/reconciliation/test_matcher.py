"""The matcher's answer does not depend on the order of its inputs."""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from reconciliation import Sources, reconcile
from reconciliation.batch import _Day, _hole_position
from reconciliation.classify import HOST_SCHEMA, KEY, host_groups
from reconciliation.host_iso import parse_iso
from reconciliation.model import EjParse, EjTransaction
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


def _txn(stan: str, *, truncated: bool = False) -> EjTransaction:
    return EjTransaction(
        stan, "", "", "10:00:00", "", "withdrawal", "00", 1000, "taken",
        (1, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), "", truncated, 0, 0, 1, 1,
    )  # fmt: skip


def test_a_stan_positions_at_its_first_whole_block() -> None:
    transactions = [
        _txn("000007", truncated=True),
        _txn(""),
        _txn("000007"),
        _txn("000008"),
        _txn("000007"),
    ]
    day = _Day("T1", "2026-11-16")
    day.ej = EjParse("ej", "T1", "2026-11-16", "ndc", transactions, [], [], 5, 0, True)
    assert day.position("000007") == 2  # the truncated block before it does not count
    assert day.position("000008") == 3
    assert day.position("") is None
    assert day.position("000009") is None
    assert _Day("T1", "2026-11-16").position("000007") is None  # no EJ
    assert day.stans() == ["", "", "000007", "000008", "000007"]
    assert day.cut() == [(0, transactions[0])]
    # where a lost STAN would have been: before the first whole block with a greater one
    assert _hole_position(day.stans(), "000006") == 2
    assert _hole_position(day.stans(), "000007") == 3
    assert _hole_position(day.stans(), "000009") == 4  # after them all: the last block
    assert _hole_position([], "000001") is None


def test_host_groups_take_the_first_request_for_the_receipt() -> None:
    rows = [
        # seq, mti, stan, rrn, time, amount, pan
        (1, "0420", "000001", "R-REV", "10:00:09", 500, "4111********0009"),
        (2, "0200", "000001", "R-REQ", "10:00:01", 2000, "4111********0001"),
        (3, "0210", "000001", "R-RSP", "10:00:02", 2000, "4111********0002"),
        (4, "0420", "000002", "R-ONLY", "11:00:00", 700, "4111********0003"),
    ]
    records = [
        ("iso", seq, mti, "T1", "2026-11-16", stan, rrn, at, "", "010000", amount,
         "00", "", pan, "", -1)
        for seq, mti, stan, rrn, at, amount, pan in rows
    ]  # fmt: skip
    host = pl.DataFrame(
        records,
        schema=HOST_SCHEMA,
        orient="row",
    )
    groups = {row["stan"]: row for row in host_groups(host).iter_rows(named=True)}
    first = groups["000001"]
    assert (first["host_rrn"], first["host_time"], first["host_amount"]) == (
        "R-REQ",
        "10:00:01",
        2000,
    )
    assert first["host_pan"] == "4111********0001"
    assert first["host_card"] == "4111********0009"  # the first message's, reversal or not
    assert first["requests"] == 2
    assert groups["000002"]["requests"] == 0
    assert groups["000002"]["host_pan"] is None


def _reference_groups(host: pl.DataFrame) -> pl.DataFrame:
    """host_groups written plainly: each value the first one where its rows' mark holds."""
    mti, rc = pl.col("mti"), pl.col("response_code")
    request, approved, reversal = mti != "0420", (mti == "0210") & (rc == "00"), mti == "0420"
    seconds = (
        pl.col("time").str.slice(0, 2).cast(pl.Int64, strict=False) * 3600
        + pl.col("time").str.slice(3, 2).cast(pl.Int64, strict=False) * 60
        + pl.col("time").str.slice(6, 2).cast(pl.Int64, strict=False)
    )
    return (
        host.with_columns(seconds=seconds)
        .group_by(KEY)
        .agg(
            n200=(mti == "0200").sum(),
            n210=(mti == "0210").sum(),
            n210_ok=approved.sum(),
            n420=reversal.sum(),
            requests=request.sum(),
            host_amount=pl.col("amount_minor").filter(request).first(),
            approved_amount=pl.col("amount_minor").filter(approved).first(),
            host_rrn=pl.col("rrn").filter(request).first(),
            host_time=pl.col("time").filter(request).first(),
            host_seconds=pl.col("seconds").filter(request).first(),
            host_card=pl.col("pan_masked").first(),
            host_pan=pl.col("pan_masked").filter(request).first(),
            processing_code=pl.col("processing_code").first(),
            reversal_reason=rc.filter(reversal).first(),
            reversal_actual=pl.col("actual_minor").filter(reversal).first(),
            any_rrn=pl.col("rrn").first(),
            any_time=pl.col("time").first(),
            any_seconds=pl.col("seconds").first(),
            any_amount=pl.col("amount_minor").first(),
        )
    )


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["0200", "0210", "0420", "0100", None]),
            st.sampled_from(["000001", "000002", "000003"]),
            st.sampled_from(["00", "05", "17", None]),
            st.sampled_from(["10:00:01", "10:0x:02", "", None]),
            st.one_of(st.none(), st.integers(0, 9)),
            st.sampled_from(["R1", "R2", None]),
        ),
        max_size=14,
    )
)
def test_host_groups_equal_the_plain_first_where_reading(
    rows: list[tuple[str | None, str, str | None, str | None, int | None, str | None]],
) -> None:
    """With nulls or without, as the switch's files never give them."""
    records = [
        ("iso", seq, mti, "T1", "2026-11-16", stan, rrn, at, "", "010000", amount,
         rc, "", f"PAN{seq}" if rrn else None, "", amount)
        for seq, (mti, stan, rc, at, amount, rrn) in enumerate(rows)
    ]  # fmt: skip
    host = pl.DataFrame(records, schema=HOST_SCHEMA, orient="row")
    for frame in (host, host.drop_nulls()):
        groups = host_groups(frame)
        expected = _reference_groups(frame).select(groups.columns)
        assert groups.sort(KEY).equals(expected.sort(KEY))
