"""Use cases: each function takes a session (and the clock) by keyword, checks the
domain rules, raises :mod:`atm_service.errors` and commits its own work."""
