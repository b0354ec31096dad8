"""Schema migrations with Alembic, run from code (``atm-service migrate``).

The migration scripts ship inside the package (``atm_service/migrations``), so
an installed service can migrate its database without a checkout.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from atm_service.db import Database
from atm_service.errors import DatabaseNotMigrated


def alembic_config(database: Database) -> Config:
    config = Config()
    config.set_main_option("script_location", "atm_service:migrations")
    config.set_main_option(
        "sqlalchemy.url",
        database.engine.url.render_as_string(hide_password=False).replace("%", "%%"),
    )
    return config


def head_revision(database: Database) -> str:
    head = ScriptDirectory.from_config(alembic_config(database)).get_current_head()
    assert head is not None, "the package ships no migrations"
    return head


def current_revision(database: Database) -> str | None:
    with database.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(database: Database, revision: str = "head") -> None:
    """Bring the schema up to ``revision`` (the newest by default)."""
    config = alembic_config(database)
    with database.connect() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
        if connection.in_transaction() and database.connection is None:
            connection.commit()


def ensure_migrated(database: Database) -> None:
    """Refuse to run on a database whose schema is not the one this code needs."""
    current = current_revision(database)
    head = head_revision(database)
    if current != head:
        url = database.engine.url.render_as_string(hide_password=True)
        state = "has no schema yet" if current is None else f"is at revision {current}"
        raise DatabaseNotMigrated(
            f"The database {url} {state}; this version of the service needs revision {head}. "
            "Run `atm-service migrate` first."
        )
