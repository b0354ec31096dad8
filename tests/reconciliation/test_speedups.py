"""The compiled module, when built, is the one the package uses throughout."""

from __future__ import annotations

from tests.reconciliation.speedups import needs_speedups, speedups


@needs_speedups
def test_every_compiled_function_is_in_use() -> None:
    """A module built from older sources would lack a function and leave its
    user on the Python version without a word; the module must be current."""
    from reconciliation import (
        classify,
        ej,
        ej_ndc,
        ej_procash,
        host_iso,
        paper,
        paper_match,
        settlement,
        xlsx,
    )

    in_use = {
        "paper_events": paper._compiled_events,
        "paper_readings": paper._compiled_readings,
        "paper_runs": paper._compiled_runs,
        "paper_exact_pairs": paper_match._compiled_exact_pairs,
        "paper_receipts": paper_match._compiled_receipts,
        "paper_chain": paper_match._compiled_chain,
        "iso_columns": host_iso._compiled_columns,
        "ej_columns": classify._compiled_ej_columns,
        "ej_note_sums": settlement._compiled_note_sums,
        "iso_walk": host_iso._compiled_walk,
        "iso_gather": host_iso._compiled_gather,
        "iso_locate": host_iso._compiled_locate,
        "iso_collect": host_iso._compiled_collect,
        "ej_tiles": ej._compiled_tiles,
        "ndc_scan": ej_ndc._compiled_scan,
        "procash_scan": ej_procash._compiled_scan,
        "xlsx_rows": xlsx._compiled_rows,
    }
    assert speedups is not None
    assert {name for name in dir(speedups) if not name.startswith("_")} == set(in_use)
    assert all(function is getattr(speedups, name) for name, function in in_use.items())
