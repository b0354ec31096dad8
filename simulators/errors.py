"""The simulators' errors: one tree, so callers catch what they mean.

SimulatorError                 base of everything the simulators raise on purpose
├── ConfigurationError         an argument or option is out of range; names it
├── UnknownFault               inject() was given a fault name it does not know
└── JournalNotFound            read_journal() was asked for a journal the ATM lacks
"""

from __future__ import annotations


class SimulatorError(Exception):
    """Base of every error the simulators raise on purpose."""


class ConfigurationError(SimulatorError, ValueError):
    """An argument is out of range or malformed; the message names it."""


class UnknownFault(SimulatorError, ValueError):
    """A fault name that the simulated ATM cannot inject."""


class JournalNotFound(SimulatorError, KeyError):
    """No journal of that name on this ATM."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "journal not found"
