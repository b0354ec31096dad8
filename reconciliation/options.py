"""How a run behaves (:class:`Options`) and how it reports progress (:class:`Progress`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from reconciliation.errors import InvalidOption
from reconciliation.schemes import DEFAULT_SCHEME_RULES, SchemeRule


class Progress(NamedTuple):
    """One progress report: ``done`` of ``total`` units of ``phase``.

    Phases in order: ``host`` (bytes of host files), ``terminals`` (bytes of
    EJ, paper and counters files, reconciled batch by batch), ``report``.
    """

    phase: str
    done: int
    total: int
    unit: str


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class Options:
    """How a run behaves. Every field has a working default."""

    time_window_seconds: int = 120
    workers: int | None = None  # None: up to 2 processes when the input is large
    parallel_threshold_bytes: int = 16 * 1024 * 1024
    batch_bytes: int = 8 * 1024 * 1024  # files per unit of work (all days of a terminal)
    host_chunk_bytes: int = 32 * 1024 * 1024  # a host file is cut into pieces this size
    excerpt_neighbours: int = 1
    currency: str = "USD"
    scheme_rules: tuple[SchemeRule, ...] = DEFAULT_SCHEME_RULES

    def check(self) -> None:
        if self.time_window_seconds < 0:
            raise InvalidOption("time_window_seconds must be zero or more")
        if self.workers is not None and self.workers < 1:
            raise InvalidOption("workers must be 1 or more")
        if self.excerpt_neighbours < 0:
            raise InvalidOption("excerpt_neighbours must be zero or more")
        if self.batch_bytes < 1 or self.host_chunk_bytes < 1024:
            raise InvalidOption("batch_bytes must be positive, host_chunk_bytes at least 1024")
