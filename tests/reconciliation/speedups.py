"""The compiled module, when the package was built with it.

Without a C compiler the package installs without ``reconciliation._speedups``
and uses the pure-Python versions; tests of the compiled functions then skip,
unless ``ATM_REQUIRE_SPEEDUPS`` is set (as CI does), when they fail.
"""

from __future__ import annotations

import os
from types import ModuleType

import pytest

speedups: ModuleType | None
try:
    from reconciliation import _speedups as speedups
except ImportError:  # pragma: no cover - depends on the build
    if os.environ.get("ATM_REQUIRE_SPEEDUPS"):
        raise
    speedups = None

needs_speedups = pytest.mark.skipif(
    speedups is None, reason="reconciliation._speedups not built (no C compiler at install)"
)
