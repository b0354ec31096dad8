"""Join EJ transactions with host messages and name the transaction kinds (Polars).

The host side is grouped per (terminal, business day, STAN): how many 0200,
0210 (approved or not) and 0420 messages, the approved amount, the reversal
reason and DE95 amount. The EJ side has one row per transaction block with a
receipt. A full outer join on the key, then one ``when`` chain, names the
transaction kinds for millions of rows at columnar speed; the few rows that
carry a kind go back to Python for amounts in notes, evidence and reports.

A match on the key is confirmed by the RRN or, when the RRN differs, by the
receipt time lying within ``window`` seconds of DE12; otherwise the two sides
are treated as different transactions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import polars as pl

from reconciliation.kinds import Kind
from reconciliation.model import EjTransaction, HostMessage

try:
    from reconciliation._speedups import ej_columns as _compiled_ej_columns
except ImportError:  # built without a C compiler: the Python transposition of ej_frame
    _compiled_ej_columns = None  # type: ignore[assignment]

KEY = ["terminal_id", "business_date", "stan"]

HOST_SCHEMA: dict[str, Any] = {
    "source": pl.Utf8,
    "seq": pl.Int64,
    "mti": pl.Utf8,
    "terminal_id": pl.Utf8,
    "business_date": pl.Utf8,
    "stan": pl.Utf8,
    "rrn": pl.Utf8,
    "time": pl.Utf8,
    "sent": pl.Utf8,
    "processing_code": pl.Utf8,
    "amount_minor": pl.Int64,
    "response_code": pl.Utf8,
    "auth_code": pl.Utf8,
    "pan_masked": pl.Utf8,
    "original_stan": pl.Utf8,
    "actual_minor": pl.Int64,
}

EJ_SCHEMA: dict[str, Any] = {
    "terminal_id": pl.Utf8,
    "business_date": pl.Utf8,
    "stan": pl.Utf8,
    "ej_rrn": pl.Utf8,
    "ej_seconds": pl.Int64,
    "txn_type": pl.Utf8,
    "resp": pl.Utf8,
    "ej_amount": pl.Int64,
    "outcome": pl.Utf8,
    "notes_out": pl.Int64,  # notes presented minus notes retracted
    "ej_ref": pl.Int64,  # index into the engine's list of EJ transactions
}


EjDay = tuple[str, str, list[EjTransaction], int]
"""One terminal-day's EJ for :func:`ej_frame`: terminal, business date, the
transaction records, and the day's number (the high half of ``ej_ref``)."""

# where ej_frame reads the records, in the compiled function's order
_EJ_FIELDS = tuple(
    EjTransaction._fields.index(name)
    for name in (
        "stan",
        "rrn",
        "time",
        "txn_type",
        "resp",
        "amount_minor",
        "outcome",
        "dispensed",
        "retracted",
        "truncated",
    )
)


def ej_frame(days: Sequence[EjDay]) -> pl.DataFrame:
    """One row (``EJ_SCHEMA``) per transaction block with a STAN that a power failure
    did not cut; ``ej_ref`` is the day's number times 2^32 plus the record's index.

    Compiled where the package was built with ``reconciliation/csrc/`` (the records
    go into columns that Polars takes without a Python object per value);
    otherwise the records' fields are transposed here.
    """
    if _compiled_ej_columns is not None:
        columns = _compiled_ej_columns(list(days), _EJ_FIELDS)
        return pl.DataFrame(
            [pl.Series(column).alias(name) for name, column in zip(EJ_SCHEMA, columns, strict=True)]
        )
    values: dict[str, list[Any]] = {name: [] for name in EJ_SCHEMA}
    for terminal_id, business_date, transactions, number in days:
        kept = [
            (index, txn) for index, txn in enumerate(transactions) if txn.stan and not txn.truncated
        ]
        if not kept:
            continue
        count = len(kept)
        # the records' fields as columns in one transposition (zip in C)
        fields = dict(
            zip(EjTransaction._fields, zip(*(txn for _, txn in kept), strict=True), strict=True)
        )
        values["terminal_id"].extend([terminal_id] * count)
        values["business_date"].extend([business_date] * count)
        values["stan"].extend(fields["stan"])
        values["ej_rrn"].extend(fields["rrn"])
        values["ej_seconds"].extend(fields["time"])  # seconds below
        values["txn_type"].extend(fields["txn_type"])
        values["resp"].extend(fields["resp"])
        values["ej_amount"].extend(fields["amount_minor"])
        values["outcome"].extend(fields["outcome"])
        values["notes_out"].extend(
            [
                sum(out) - sum(back)
                for out, back in zip(fields["dispensed"], fields["retracted"], strict=True)
            ]
        )
        values["ej_ref"].extend([number << 32 | index for index, _ in kept])
    return pl.DataFrame(values, schema=EJ_SCHEMA | {"ej_seconds": pl.Utf8}).with_columns(
        ej_seconds=clock_seconds(pl.col("ej_seconds"))
    )


def clock_seconds(clock: pl.Expr) -> pl.Expr:
    """``"08:39:56"`` -> seconds since midnight; -1 when not ``HH:MM:SS`` in digits
    (:func:`reconciliation.textutil.seconds` for a column)."""
    parts = [clock.str.slice(start, 2) for start in (0, 3, 6)]
    shaped = (
        (clock.str.len_bytes() == 8)
        & (clock.str.slice(2, 1) == ":")
        & (clock.str.slice(5, 1) == ":")
        & pl.concat_str(parts).str.contains(r"^[0-9]{6}$")
    )
    total = (
        parts[0].cast(pl.Int64, strict=False) * 3600
        + parts[1].cast(pl.Int64, strict=False) * 60
        + parts[2].cast(pl.Int64, strict=False)
    )
    return pl.when(shaped).then(total).otherwise(pl.lit(-1, pl.Int64))


def host_frame(messages: list[HostMessage]) -> pl.DataFrame:
    return pl.DataFrame(messages, schema=HOST_SCHEMA, orient="row")


def host_groups(host: pl.DataFrame) -> pl.DataFrame:
    """One row per (terminal, day, STAN) with what the switch saw.

    ``host_rrn``, ``host_time``, ``host_amount`` and ``host_pan`` are the first
    request or response's (what the paper's receipt shows), ``requests`` how
    many messages other than reversals there are."""
    mti = pl.col("mti")
    # two marks per message, so that the aggregations below share them
    marked = host.with_columns(
        _request=mti != "0420", _approved=(mti == "0210") & (pl.col("response_code") == "00")
    )
    request, approved = pl.col("_request"), pl.col("_approved")
    # the first value where ``mark`` holds; with a null among them, a null there must
    # count too, which the (faster) first non-null after ``when`` would pass over
    nullable = {name for name, count in host.null_count().row(0, named=True).items() if count}

    def first(name: str, mark: pl.Expr) -> pl.Expr:
        if name in nullable:
            return pl.col(name).filter(mark).first()
        return pl.when(mark).then(pl.col(name)).first(ignore_nulls=True)

    return (
        marked.group_by(KEY)
        .agg(
            n200=(mti == "0200").sum(),
            n210=(mti == "0210").sum(),
            n210_ok=approved.sum(),
            n420=(~request).sum(),
            host_amount=first("amount_minor", request),
            approved_amount=first("amount_minor", approved),
            host_rrn=first("rrn", request),
            host_time=first("time", request),
            host_card=pl.col("pan_masked").first(),
            host_pan=first("pan_masked", request),
            requests=request.sum(),
            processing_code=pl.col("processing_code").first(),
            reversal_reason=first("response_code", ~request),
            reversal_actual=first("actual_minor", ~request),
            any_rrn=pl.col("rrn").first(),
            any_time=pl.col("time").first(),
            any_amount=pl.col("amount_minor").first(),
        )
        .with_columns(
            host_seconds=_seconds(pl.col("host_time")),
            any_seconds=_seconds(pl.col("any_time")),
        )
    )


def _seconds(clock: pl.Expr) -> pl.Expr:
    """``"08:39:56"`` -> seconds since midnight, null where a part is not a number."""
    return (
        clock.str.slice(0, 2).cast(pl.Int64, strict=False) * 3600
        + clock.str.slice(3, 2).cast(pl.Int64, strict=False) * 60
        + clock.str.slice(6, 2).cast(pl.Int64, strict=False)
    )


def join_sides(ej: pl.DataFrame, groups: pl.DataFrame) -> pl.DataFrame:
    """The EJ rows (:func:`ej_frame`) and the host groups (:func:`host_groups`) by
    key, full outer: a key that only one side knows has the other's columns null."""
    return ej.join(groups, on=KEY, how="full", coalesce=True)


def receipt_hosts(joined: pl.DataFrame) -> pl.DataFrame:
    """What the paper's receipts need from the host beyond the EJ (:func:`join_sides`):
    the first request of each key (``KEY``, ``host_rrn``, ``host_time``,
    ``host_amount``, ``host_pan``) that no EJ block shows, or that an EJ block shows
    with another amount. A receipt the EJ shows otherwise reads as the EJ has it."""
    needed = (pl.col("requests") > 0) & (
        pl.col("ej_ref").is_null() | (pl.col("ej_amount") != pl.col("host_amount")).fill_null(True)
    )
    # (a key with two EJ blocks may come twice, with the same values)
    return joined.filter(needed).select(*KEY, "host_rrn", "host_time", "host_amount", "host_pan")


def classify(joined: pl.DataFrame, window: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Rows that carry a transaction kind, and rows that are inconsistent otherwise,
    of the two sides joined by key (:func:`join_sides`).

    The first frame has ``kind`` plus the columns behind it. ``ej_gap``
    candidates (host without an EJ block) come back with kind
    ``"ej_missing"``; the engine keeps those whose terminal-day has an EJ and
    decides truncated or lost. The second frame (key and ``note``) holds
    disagreements that are no kind of ``shared/formats/README.md`` but must
    not pass unseen: the host approved what the terminal declined, a reversal
    of cash that was taken, an approved amount that differs.
    """
    rrn_known = pl.col("host_rrn").is_not_null() | pl.col("any_rrn").is_not_null()
    host_rrn = pl.coalesce(pl.col("host_rrn"), pl.col("any_rrn"))
    host_seconds = pl.coalesce(pl.col("host_seconds"), pl.col("any_seconds"))
    confirmed = (
        pl.col("ej_ref").is_null()
        | ~rrn_known
        | (host_rrn == pl.col("ej_rrn"))
        | ((host_seconds - pl.col("ej_seconds")).abs() <= window)
    )
    joined = joined.with_columns(
        confirmed=confirmed,
        n200=pl.col("n200").fill_null(0),
        n210=pl.col("n210").fill_null(0),
        n210_ok=pl.col("n210_ok").fill_null(0),
        n420=pl.col("n420").fill_null(0),
    )
    # A key match the RRN and time both contradict: two different transactions.
    unconfirmed = joined.filter(~pl.col("confirmed"))
    joined = pl.concat(
        [
            joined.filter(pl.col("confirmed")),
            unconfirmed.with_columns(
                n200=pl.lit(0, pl.UInt32),
                n210=pl.lit(0, pl.UInt32),
                n210_ok=pl.lit(0, pl.UInt32),
                n420=pl.lit(0, pl.UInt32),
            ),
            unconfirmed.with_columns(pl.lit(None, pl.Int64).alias("ej_ref")),
        ],
        how="vertical_relaxed",
    )
    in_host = (pl.col("n200") + pl.col("n210")) > 0
    approved = pl.col("n210_ok") > 0
    reversed_ = pl.col("n420") > 0
    ok_withdrawal = (pl.col("txn_type") == "withdrawal") & (pl.col("resp") == "00")
    outcome = pl.col("outcome")

    def pick(both: Kind, without: Kind) -> pl.Expr:
        return pl.when(reversed_).then(pl.lit(both.value)).otherwise(pl.lit(without.value))

    kind = (
        pl.when(pl.col("ej_ref").is_null() & in_host)
        .then(pl.lit("ej_missing"))
        .when(ok_withdrawal & ~in_host & (pl.col("notes_out") > 0))
        .then(pl.lit(Kind.DISPENSED_NOT_IN_HOST.value))
        .when(ok_withdrawal & approved & outcome.is_in(["none", "power"]))
        .then(pick(Kind.NO_DISPENSE_REVERSED, Kind.NO_DISPENSE_NO_REVERSAL))
        .when(ok_withdrawal & approved & (outcome == "short"))
        .then(pick(Kind.PARTIAL_DISPENSE_REVERSED, Kind.PARTIAL_DISPENSE_NO_REVERSAL))
        .when(ok_withdrawal & approved & (outcome == "retracted"))
        .then(pick(Kind.RETRACT_REVERSED, Kind.RETRACT_NO_REVERSAL))
        .when((pl.col("resp") == "TO") & approved)
        .then(pick(Kind.HOST_TIMEOUT_REVERSED, Kind.HOST_TIMEOUT_NO_REVERSAL))
        .otherwise(pl.lit(None, pl.Utf8))
    )
    duplicate = pl.col("n210") > 1
    joined = joined.with_columns(kind=kind, duplicate=duplicate)
    single = joined.filter(pl.col("kind").is_not_null())
    doubles = joined.filter(pl.col("duplicate")).with_columns(
        kind=pl.lit(Kind.HOST_DUPLICATE.value)
    )
    in_ej = pl.col("ej_ref").is_not_null()
    note = (
        pl.when(in_ej & ~pl.col("resp").is_in(["00", "TO"]) & approved & ~reversed_)
        .then(pl.lit("the host approved what the terminal shows as declined"))
        .when(ok_withdrawal & approved & (outcome == "taken") & reversed_)
        .then(pl.lit("reversed at the host although the EJ shows the cash taken"))
        .when(
            ok_withdrawal
            & approved
            & pl.col("approved_amount").is_not_null()
            & (pl.col("approved_amount") != pl.col("ej_amount"))
        )
        .then(pl.lit("the approved amount differs between EJ and host"))
        .otherwise(pl.lit(None, pl.Utf8))
    )
    odd = joined.with_columns(note=note).filter(pl.col("note").is_not_null())
    return pl.concat([single, doubles], how="vertical_relaxed"), odd.select(
        [*KEY, "note", "ej_amount", "approved_amount"]
    )
