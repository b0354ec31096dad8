"""The reconciliation library's errors.

One tree for the whole package. Malformed *lines* are never raised: parsers
report them as :class:`~reconciliation.model.SkippedLine` and go on. Errors are
for input the run cannot use at all, and for wrong arguments.

    ReconciliationError
    ├── UnusableInput          nothing usable was given (missing folder, no files, bad names)
    │   └── SourceUnreadable   a file exists but cannot be read at all (permissions, I/O),
    │                          or changed while the run read it
    ├── InvalidOption          an option has a value that makes no sense (names it)
    └── HostNotHandedOver      (inside a run) a worker's batch lost its parent before
                               the host messages came; the parent's own error is raised
"""

from __future__ import annotations


class ReconciliationError(Exception):
    """Base of every error this package raises."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnusableInput(ReconciliationError):
    """The input cannot be reconciled: no source, an unreadable folder, no usable file."""


class SourceUnreadable(UnusableInput):
    """A file named as a source exists but cannot be read."""


class InvalidOption(ReconciliationError):
    """An option is out of range or contradicts another; the message names it."""


class HostNotHandedOver(ReconciliationError):
    """A worker waited for host messages that the run's parent never handed over."""
