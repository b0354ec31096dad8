"""Reconciliation: parse electronic journals, paper journals, host records and
cash-unit counters; match them; classify and report every discrepancy.

The library API the service and the CLI share::

    from reconciliation import Sources, Options, reconcile, write_reports

    sources = Sources.from_dirs(ej=..., paper=..., host=..., counters=...)
    sources.add_ej_bytes("T1000001", "2026-11-16", stored_bytes)  # from a database
    result = reconcile(sources, options=Options(), progress=callback)
    write_reports(result, out_folder)
"""

from typing import TYPE_CHECKING, Any

from reconciliation.engine import reconcile
from reconciliation.errors import (
    InvalidOption,
    ReconciliationError,
    SourceUnreadable,
    UnusableInput,
)
from reconciliation.kinds import Action, Kind, Owed
from reconciliation.options import Options, Progress, ProgressCallback
from reconciliation.result import Discrepancy, Evidence, RunResult, SettlementRow
from reconciliation.schemes import DEFAULT_SCHEME_RULES, SchemeRule
from reconciliation.sources import Source, Sources

if TYPE_CHECKING:
    from reconciliation.reports import write_reports

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_SCHEME_RULES",
    "Action",
    "Discrepancy",
    "Evidence",
    "InvalidOption",
    "Kind",
    "Options",
    "Owed",
    "Progress",
    "ProgressCallback",
    "ReconciliationError",
    "RunResult",
    "SchemeRule",
    "SettlementRow",
    "Source",
    "SourceUnreadable",
    "Sources",
    "UnusableInput",
    "__version__",
    "reconcile",
    "write_reports",
]


def __getattr__(name: str) -> Any:
    # the reports are imported when first asked for: a worker process of a run,
    # which imports this package, writes none
    if name == "write_reports":
        from reconciliation.reports import write_reports

        return write_reports
    raise AttributeError(f"module 'reconciliation' has no attribute {name!r}")
