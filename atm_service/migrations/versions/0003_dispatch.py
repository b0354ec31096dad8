"""dispatch: engineers, tasks and their history, replenishment counts, ATM condition
and outages, and the live-update outbox

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 16:47:41.914158
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "dispatch_notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "audience",
            sa.Enum("engineer", "board", name="audience", native_enum=False, length=16),
            nullable=False,
        ),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dispatch_notification")),
    )
    with op.batch_alter_table("dispatch_notification", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_dispatch_notification_created_at"), ["created_at"], unique=False
        )

    op.create_table(
        "engineer",
        sa.Column("skills", sa.String(length=16), nullable=False),
        sa.Column("shift_days", sa.String(length=7), nullable=False),
        sa.Column("shift_start", sa.String(length=5), nullable=False),
        sa.Column("shift_end", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("phone", sa.String(length=32), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("home_region", sa.String(length=64), nullable=False),
        sa.Column("location_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_engineer_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_engineer")),
    )
    with op.batch_alter_table("engineer", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_engineer_home_region"), ["home_region"], unique=False)
        batch_op.create_index(batch_op.f("ix_engineer_user_id"), ["user_id"], unique=True)

    op.create_table(
        "atm_condition",
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("in_service", sa.Boolean(), nullable=True),
        sa.Column("safe_door", sa.String(length=16), nullable=True),
        sa.Column("devices", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("cash_units", sa.JSON(), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cash_units_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_atm_condition_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("atm_id", name=op.f("pk_atm_condition")),
    )
    op.create_table(
        "atm_outage",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cause", sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_atm_outage_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm_outage")),
    )
    with op.batch_alter_table("atm_outage", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_atm_outage_atm_id"), ["atm_id"], unique=False)

    op.create_table(
        "task",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum("flm", "slm", "replenishment", name="taskkind", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "new",
                "assigned",
                "accepted",
                "en_route",
                "on_site",
                "resolved",
                "needs_parts",
                "closed",
                "cancelled",
                name="taskstate",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column(
            "source",
            sa.Enum(
                "device", "dispatcher", "follow_up", name="tasksource", native_enum=False, length=24
            ),
            nullable=False,
        ),
        sa.Column("priority", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=2000), nullable=False),
        sa.Column("facts", sa.JSON(), nullable=False),
        sa.Column("occurrences", sa.Integer(), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_signal_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("response_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("restore_due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("engineer_id", sa.Integer(), nullable=True),
        sa.Column("planned_start", sa.DateTime(timezone=True), nullable=True),
        sa.Column("planned_end", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("departed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recovered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "resolution_code",
            sa.Enum(
                "cleared_jam",
                "reseated_cassette",
                "emptied_bin",
                "replaced_part",
                "adjusted",
                "restarted",
                "replenished",
                "no_fault_found",
                "other",
                "device_recovered",
                name="resolutioncode",
                native_enum=False,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("resolution_notes", sa.String(length=2000), nullable=False),
        sa.Column("parts", sa.String(length=500), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("open_key", sa.String(length=40), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_task_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["engineer_id"], ["engineer.id"], name=op.f("fk_task_engineer_id_engineer")
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["task.id"], name=op.f("fk_task_parent_id_task")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task")),
        sa.UniqueConstraint("open_key", name=op.f("uq_task_open_key")),
    )
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_atm_id"), ["atm_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_engineer_id"), ["engineer_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_parent_id"), ["parent_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_task_state"), ["state"], unique=False)

    op.create_table(
        "replenishment_count",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column(
            "unit_kind",
            sa.Enum(
                "cassette",
                "reject_bin",
                "retract_bin",
                name="unitkind",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("unit_number", sa.Integer(), nullable=False),
        sa.Column("denomination", sa.Integer(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("removed", sa.Integer(), nullable=False),
        sa.Column("loaded", sa.Integer(), nullable=False),
        sa.Column("counted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("counted_by", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["counted_by"],
            ["app_user.id"],
            name=op.f("fk_replenishment_count_counted_by_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"],
            ["task.id"],
            name=op.f("fk_replenishment_count_task_id_task"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_replenishment_count")),
        sa.UniqueConstraint(
            "task_id",
            "unit_kind",
            "unit_number",
            name=op.f("uq_replenishment_count_task_id_unit_kind_unit_number"),
        ),
    )
    with op.batch_alter_table("replenishment_count", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_replenishment_count_task_id"), ["task_id"], unique=False
        )

    op.create_table(
        "task_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column(
            "from_state",
            sa.Enum(
                "new",
                "assigned",
                "accepted",
                "en_route",
                "on_site",
                "resolved",
                "needs_parts",
                "closed",
                "cancelled",
                name="taskstate",
                native_enum=False,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column(
            "to_state",
            sa.Enum(
                "new",
                "assigned",
                "accepted",
                "en_route",
                "on_site",
                "resolved",
                "needs_parts",
                "closed",
                "cancelled",
                name="taskstate",
                native_enum=False,
                length=24,
            ),
            nullable=True,
        ),
        sa.Column("engineer_id", sa.Integer(), nullable=True),
        sa.Column("reason", sa.String(length=2000), nullable=False),
        sa.Column("data", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=64), nullable=True),
        sa.ForeignKeyConstraint(
            ["actor_user_id"],
            ["app_user.id"],
            name=op.f("fk_task_event_actor_user_id_app_user"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["engineer_id"], ["engineer.id"], name=op.f("fk_task_event_engineer_id_engineer")
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name=op.f("fk_task_event_task_id_task"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_event")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_task_event_idempotency_key")),
    )
    with op.batch_alter_table("task_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_task_event_task_id"), ["task_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("task_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_event_task_id"))

    op.drop_table("task_event")
    with op.batch_alter_table("replenishment_count", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_replenishment_count_task_id"))

    op.drop_table("replenishment_count")
    with op.batch_alter_table("task", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_task_state"))
        batch_op.drop_index(batch_op.f("ix_task_parent_id"))
        batch_op.drop_index(batch_op.f("ix_task_engineer_id"))
        batch_op.drop_index(batch_op.f("ix_task_atm_id"))

    op.drop_table("task")
    with op.batch_alter_table("atm_outage", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_atm_outage_atm_id"))

    op.drop_table("atm_outage")
    op.drop_table("atm_condition")
    with op.batch_alter_table("engineer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_engineer_user_id"))
        batch_op.drop_index(batch_op.f("ix_engineer_home_region"))

    op.drop_table("engineer")
    with op.batch_alter_table("dispatch_notification", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dispatch_notification_created_at"))

    op.drop_table("dispatch_notification")
