"""Reconciliation: parse electronic journals, paper journals, host records and
cash-unit counters; match them; classify and report every discrepancy."""

__version__ = "0.1.0"
