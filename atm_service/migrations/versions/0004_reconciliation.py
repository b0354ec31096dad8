"""reconciliation: runs, their uploaded sources and report files, discrepancies and the
append-only trail of their resolution

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22 18:07:06.895627
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

# The resolution trail is append-only: the database refuses to change or delete an
# entry (a user's deletion may still clear actor_user_id, which the foreign key does).
_GUARDED_COLUMNS = (
    "discrepancy_id, at, action, from_status, to_status, note, actor, idempotency_key"
)
_MESSAGE = "recon_resolution is append-only"


def _append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION recon_resolution_append_only() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION '{_MESSAGE}'; END $$"
        )
        op.execute(
            f"CREATE TRIGGER recon_resolution_no_change BEFORE UPDATE OF {_GUARDED_COLUMNS} "
            "OR DELETE ON recon_resolution "
            "FOR EACH ROW EXECUTE FUNCTION recon_resolution_append_only()"
        )
        return
    op.execute(
        f"CREATE TRIGGER recon_resolution_no_update BEFORE UPDATE OF {_GUARDED_COLUMNS} "
        f"ON recon_resolution BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
    )
    op.execute(
        "CREATE TRIGGER recon_resolution_no_delete BEFORE DELETE ON recon_resolution "
        f"BEGIN SELECT RAISE(ABORT, '{_MESSAGE}'); END"
    )


def _drop_append_only() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS recon_resolution_no_change ON recon_resolution")
        op.execute("DROP FUNCTION IF EXISTS recon_resolution_append_only()")
        return
    op.execute("DROP TRIGGER IF EXISTS recon_resolution_no_update")
    op.execute("DROP TRIGGER IF EXISTS recon_resolution_no_delete")


def upgrade() -> None:
    op.create_table(
        "recon_run",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "origin",
            sa.Enum("upload", "ingested", name="runorigin", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "queued", "running", "done", "failed", name="runstate", native_enum=False, length=16
            ),
            nullable=False,
        ),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("selection", sa.JSON(), nullable=True),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_by_name", sa.String(length=64), nullable=False),
        sa.Column("worker", sa.String(length=128), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("progress_done", sa.BigInteger(), nullable=False),
        sa.Column("progress_total", sa.BigInteger(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=False),
        sa.Column("discrepancy_count", sa.Integer(), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name=op.f("fk_recon_run_created_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_run")),
    )
    with op.batch_alter_table("recon_run", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recon_run_created_at"), ["created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_recon_run_state"), ["state"], unique=False)

    op.create_table(
        "recon_discrepancy",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("stan", sa.String(length=6), nullable=True),
        sa.Column("rrn", sa.String(length=12), nullable=True),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("owed_to", sa.String(length=16), nullable=False),
        sa.Column("suggested_action", sa.String(length=64), nullable=False),
        sa.Column("dispute_deadline", sa.Date(), nullable=True),
        sa.Column("scheme", sa.String(length=32), nullable=True),
        sa.Column("local_time", sa.String(length=8), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("evidence", sa.JSON(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("open", "resolved", name="discrepancystatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status_by", sa.String(length=64), nullable=False),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["recon_run.id"],
            name=op.f("fk_recon_discrepancy_run_id_recon_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_discrepancy")),
        sa.UniqueConstraint("run_id", "seq", name=op.f("uq_recon_discrepancy_run_id_seq")),
    )
    with op.batch_alter_table("recon_discrepancy", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recon_discrepancy_owed_to"), ["owed_to"], unique=False)
        batch_op.create_index("ix_recon_discrepancy_run_id_kind", ["run_id", "kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_recon_discrepancy_status"), ["status"], unique=False)
        batch_op.create_index(
            "ix_recon_discrepancy_terminal_id_business_date",
            ["terminal_id", "business_date"],
            unique=False,
        )

    op.create_table(
        "recon_run_file",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["recon_run.id"],
            name=op.f("fk_recon_run_file_run_id_recon_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "name", name=op.f("pk_recon_run_file")),
    )
    op.create_table(
        "recon_source_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "ej",
                "paper",
                "iso",
                "csv",
                "counters",
                name="sourcekind",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["recon_run.id"],
            name=op.f("fk_recon_source_file_run_id_recon_run"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_source_file")),
        sa.UniqueConstraint(
            "run_id", "kind", "name", name=op.f("uq_recon_source_file_run_id_kind_name")
        ),
    )
    op.create_table(
        "recon_resolution",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("discrepancy_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "action",
            sa.Enum("resolve", "reopen", name="resolutionaction", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "from_status",
            sa.Enum("open", "resolved", name="discrepancystatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "to_status",
            sa.Enum("open", "resolved", name="discrepancystatus", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("note", sa.String(length=2000), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["app_user.id"],
            name=op.f("fk_recon_resolution_actor_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["discrepancy_id"],
            ["recon_discrepancy.id"],
            name=op.f("fk_recon_resolution_discrepancy_id_recon_discrepancy"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recon_resolution")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_recon_resolution_idempotency_key")),
    )
    with op.batch_alter_table("recon_resolution", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_recon_resolution_discrepancy_id"), ["discrepancy_id"], unique=False
        )
    _append_only()


def downgrade() -> None:
    _drop_append_only()
    with op.batch_alter_table("recon_resolution", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recon_resolution_discrepancy_id"))

    op.drop_table("recon_resolution")
    op.drop_table("recon_source_file")
    op.drop_table("recon_run_file")
    with op.batch_alter_table("recon_discrepancy", schema=None) as batch_op:
        batch_op.drop_index("ix_recon_discrepancy_terminal_id_business_date")
        batch_op.drop_index(batch_op.f("ix_recon_discrepancy_status"))
        batch_op.drop_index("ix_recon_discrepancy_run_id_kind")
        batch_op.drop_index(batch_op.f("ix_recon_discrepancy_owed_to"))

    op.drop_table("recon_discrepancy")
    with op.batch_alter_table("recon_run", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recon_run_state"))
        batch_op.drop_index(batch_op.f("ix_recon_run_created_at"))

    op.drop_table("recon_run")
