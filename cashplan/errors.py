"""Every error ``cashplan`` raises, in one tree.

CashPlanError
├── InvalidArgument (ValueError)   a parameter or series is malformed or out of range; names it
└── RoutingFailed                  the routing solver found no assignment at all
"""

from __future__ import annotations


class CashPlanError(Exception):
    """Base of every error raised by ``cashplan``."""


class InvalidArgument(CashPlanError, ValueError):
    """A parameter or series is malformed or out of range; the message names it."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RoutingFailed(CashPlanError):
    """The routing solver returned no solution, not even one that leaves stops out."""
