"""Alembic migration environment and scripts for the central service."""
