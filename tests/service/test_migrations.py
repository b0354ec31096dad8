"""Migrations: they build exactly the models' schema, and the app refuses an old database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import atm_service.models  # noqa: F401 (registers the tables)
from atm_service.app import create_app
from atm_service.db import Database, create_engine
from atm_service.errors import DatabaseNotMigrated
from atm_service.migrate import current_revision, ensure_migrated, head_revision, upgrade
from tests.support import make_settings


def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_migrated_database_is_at_head(engine: Engine) -> None:
    database = Database(engine)
    assert current_revision(database) == head_revision(database)
    ensure_migrated(database)


def test_app_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    database = Database(engine)
    with pytest.raises(DatabaseNotMigrated, match="atm-service migrate"):
        create_app(make_settings(), database=database)
    upgrade(database)
    create_app(make_settings(), database=database)
    engine.dispose()
