"""device link: dispatch rules applied per record stream, remote device commands

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 18:40:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    with op.batch_alter_table("device_record_stream", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("rules_seq", sa.BigInteger(), nullable=False, server_default="0")
        )
    # Records stored before this revision are history: the rules do not replay them.
    op.execute("UPDATE device_record_stream SET rules_seq = last_seq")
    with op.batch_alter_table("device_record_stream", schema=None) as batch_op:
        batch_op.alter_column("rules_seq", server_default=None)

    op.create_table(
        "device_command",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column(
            "command",
            sa.Enum(
                "send_counters",
                "go_out_of_service",
                "go_in_service",
                name="devicecommandname",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "delivered",
                "succeeded",
                "failed",
                "expired",
                name="commandstate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=True),
        sa.Column("requested_by_name", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deliveries", sa.Integer(), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.JSON(), nullable=True),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_device_command_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"],
            ["app_user.id"],
            name=op.f("fk_device_command_requested_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_command")),
    )
    with op.batch_alter_table("device_command", schema=None) as batch_op:
        batch_op.create_index("ix_device_command_atm_id_state", ["atm_id", "state"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("device_command", schema=None) as batch_op:
        batch_op.drop_index("ix_device_command_atm_id_state")
    op.drop_table("device_command")
    with op.batch_alter_table("device_record_stream", schema=None) as batch_op:
        batch_op.drop_column("rules_seq")
