"""locks: each ATM's safe lock and its code chain, the encrypted lock keys, the
lock-access log and its checkpoints, code cycles, lock alarms, and the second
person of dual-control tasks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22 18:07:11.394028

Comes after 0003 (dispatch); other migrations of the same generation are chained
by the release that merges them.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:

    op.create_table(
        "lock_key_record",
        sa.Column("lock_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("master_key_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("lock_id", "version", name=op.f("pk_lock_key_record")),
    )
    op.create_table(
        "lock_log_checkpoint",
        sa.Column("size", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("size", name=op.f("pk_lock_log_checkpoint")),
    )
    op.create_table(
        "lock_log_entry",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("line", sa.Text(), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lock_id", sa.String(length=32), nullable=True),
        sa.Column("actor", sa.String(length=64), nullable=True),
        sa.Column("users", sa.String(length=200), nullable=False),
        sa.PrimaryKeyConstraint("position", name=op.f("pk_lock_log_entry")),
    )
    with op.batch_alter_table("lock_log_entry", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lock_log_entry_actor"), ["actor"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_log_entry_kind"), ["kind"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_log_entry_lock_id"), ["lock_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_log_entry_time"), ["time"], unique=False)

    op.create_table(
        "lock",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("lock_id", sa.String(length=32), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("dual_control", sa.Boolean(), nullable=False),
        sa.Column(
            "state",
            sa.Enum("active", "retired", name="lockstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("policy", sa.JSON(), nullable=False),
        sa.Column("chain", sa.JSON(), nullable=False),
        sa.Column("trail_next_seq", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_lock_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lock")),
        sa.UniqueConstraint("atm_id", name=op.f("uq_lock_atm_id")),
        sa.UniqueConstraint("lock_id", name=op.f("uq_lock_lock_id")),
    )
    op.create_table(
        "lock_issuance",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("lock_pk", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum("opening", "resync", name="issuancekind", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "outstanding",
                "sealed",
                "force_closed",
                "superseded",
                "expired",
                "cancelled",
                name="issuancestate",
                native_enum=False,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("operation", sa.String(length=8), nullable=True),
        sa.Column("window", sa.Integer(), nullable=True),
        sa.Column("users", sa.JSON(), nullable=False),
        sa.Column("shown_to", sa.JSON(), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seal_due", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=64), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("overdue_alarmed", sa.Boolean(), nullable=False),
        sa.Column("open_key", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["lock_pk"], ["lock.id"], name=op.f("fk_lock_issuance_lock_pk_lock"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.id"],
            name=op.f("fk_lock_issuance_task_id_task"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lock_issuance")),
        sa.UniqueConstraint("open_key", name=op.f("uq_lock_issuance_open_key")),
    )
    with op.batch_alter_table("lock_issuance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lock_issuance_lock_pk"), ["lock_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_issuance_seal_due"), ["seal_due"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_issuance_state"), ["state"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_issuance_task_id"), ["task_id"], unique=False)

    op.create_table(
        "task_custodian",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("engineer_id", sa.Integer(), nullable=False),
        sa.Column("added_by", sa.String(length=64), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["engineer_id"],
            ["engineer.id"],
            name=op.f("fk_task_custodian_engineer_id_engineer"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.id"],
            name=op.f("fk_task_custodian_task_id_task"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_custodian")),
        sa.UniqueConstraint(
            "task_id", "engineer_id", name=op.f("uq_task_custodian_task_id_engineer_id")
        ),
    )
    with op.batch_alter_table("task_custodian", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_task_custodian_engineer_id"), ["engineer_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_task_custodian_task_id"), ["task_id"], unique=False)

    op.create_table(
        "lock_alarm",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "seal_overdue",
                "opened_without_code",
                "opened_after_force_close",
                "seal_not_shown",
                "duress",
                "lockout",
                "seal_mismatch",
                name="alarmkind",
                native_enum=False,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "severity",
            sa.Enum("critical", "warning", name="alarmseverity", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum("open", "acknowledged", name="alarmstate", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("lock_pk", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("issuance_id", sa.Integer(), nullable=True),
        sa.Column("message", sa.String(length=500), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=120), nullable=False),
        sa.Column("raised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.String(length=64), nullable=True),
        sa.Column("note", sa.String(length=1000), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_lock_alarm_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["issuance_id"],
            ["lock_issuance.id"],
            name=op.f("fk_lock_alarm_issuance_id_lock_issuance"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["lock_pk"], ["lock.id"], name=op.f("fk_lock_alarm_lock_pk_lock"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_lock_alarm_task_id_task"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lock_alarm")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_lock_alarm_dedupe_key")),
    )
    with op.batch_alter_table("lock_alarm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lock_alarm_lock_pk"), ["lock_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_alarm_raised_at"), ["raised_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_lock_alarm_state"), ["state"], unique=False)


def downgrade() -> None:

    with op.batch_alter_table("lock_alarm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lock_alarm_state"))
        batch_op.drop_index(batch_op.f("ix_lock_alarm_raised_at"))
        batch_op.drop_index(batch_op.f("ix_lock_alarm_lock_pk"))

    op.drop_table("lock_alarm")
    with op.batch_alter_table("task_custodian", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_custodian_task_id"))
        batch_op.drop_index(batch_op.f("ix_task_custodian_engineer_id"))

    op.drop_table("task_custodian")
    with op.batch_alter_table("lock_issuance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lock_issuance_task_id"))
        batch_op.drop_index(batch_op.f("ix_lock_issuance_state"))
        batch_op.drop_index(batch_op.f("ix_lock_issuance_seal_due"))
        batch_op.drop_index(batch_op.f("ix_lock_issuance_lock_pk"))

    op.drop_table("lock_issuance")
    op.drop_table("lock")
    with op.batch_alter_table("lock_log_entry", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_lock_log_entry_time"))
        batch_op.drop_index(batch_op.f("ix_lock_log_entry_lock_id"))
        batch_op.drop_index(batch_op.f("ix_lock_log_entry_kind"))
        batch_op.drop_index(batch_op.f("ix_lock_log_entry_actor"))

    op.drop_table("lock_log_entry")
    op.drop_table("lock_log_checkpoint")
    op.drop_table("lock_key_record")
