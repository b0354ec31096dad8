"""cash planning: daily demand, plans, their ATMs, visits and forecasts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 19:50:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "cash_demand_day",
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("denomination", sa.Integer(), nullable=False),
        sa.Column("notes", sa.Integer(), nullable=False),
        sa.Column("observed", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name="fk_cash_demand_day_atm_id_atm", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("atm_id", "day", "denomination", name="pk_cash_demand_day"),
    )
    op.create_table(
        "cash_plan",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("horizon_days", sa.Integer(), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=True),
        sa.Column("parameters", sa.JSON(), nullable=False),
        sa.Column("totals", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["app_user.id"],
            name="fk_cash_plan_created_by_app_user",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_cash_plan"),
    )
    op.create_index("ix_cash_plan_created_at", "cash_plan", ["created_at"])
    op.create_table(
        "cash_plan_atm",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("planned", sa.Boolean(), nullable=False),
        sa.Column("note", sa.String(length=300), nullable=False),
        sa.Column("at_risk", sa.Boolean(), nullable=False),
        sa.Column("latest_safe_day", sa.Date(), nullable=True),
        sa.Column("visit_cost", sa.Float(), nullable=False),
        sa.Column("idle_cost", sa.Float(), nullable=False),
        sa.Column("cash_now", sa.Integer(), nullable=False),
        sa.Column("depletion", sa.JSON(), nullable=False),
        sa.Column("cassettes", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["cash_plan.id"],
            name="fk_cash_plan_atm_plan_id_cash_plan",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name="fk_cash_plan_atm_atm_id_atm", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("plan_id", "atm_id", name="pk_cash_plan_atm"),
    )
    op.create_index("ix_cash_plan_atm_atm_id", "cash_plan_atm", ["atm_id"])
    op.create_table(
        "cash_plan_visit",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("loads", sa.JSON(), nullable=False),
        sa.Column("notes", sa.JSON(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("covers_until", sa.Date(), nullable=False),
        sa.Column("cashout_probability", sa.Float(), nullable=False),
        sa.Column("engineer_id", sa.Integer(), nullable=True),
        sa.Column("route_order", sa.Integer(), nullable=True),
        sa.Column("arrival", sa.DateTime(timezone=True), nullable=True),
        sa.Column("departure", sa.DateTime(timezone=True), nullable=True),
        sa.Column("task_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["cash_plan.id"],
            name="fk_cash_plan_visit_plan_id_cash_plan",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name="fk_cash_plan_visit_atm_id_atm", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["engineer_id"],
            ["engineer.id"],
            name="fk_cash_plan_visit_engineer_id_engineer",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["task_id"], ["task.id"], name="fk_cash_plan_visit_task_id_task", ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_cash_plan_visit"),
        sa.UniqueConstraint(
            "plan_id", "atm_id", "day", name="uq_cash_plan_visit_plan_id_atm_id_day"
        ),
    )
    op.create_index("ix_cash_plan_visit_plan_id", "cash_plan_visit", ["plan_id"])
    op.create_index("ix_cash_plan_visit_atm_id", "cash_plan_visit", ["atm_id"])
    op.create_index("ix_cash_plan_visit_day", "cash_plan_visit", ["day"])
    op.create_index("ix_cash_plan_visit_task_id", "cash_plan_visit", ["task_id"])
    op.create_table(
        "cash_forecast_day",
        sa.Column("plan_id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("denomination", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("mean", sa.Float(), nullable=False),
        sa.Column("lower", sa.Float(), nullable=False),
        sa.Column("upper", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["plan_id"],
            ["cash_plan.id"],
            name="fk_cash_forecast_day_plan_id_cash_plan",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name="fk_cash_forecast_day_atm_id_atm", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint(
            "plan_id", "atm_id", "denomination", "day", name="pk_cash_forecast_day"
        ),
    )
    op.create_index("ix_cash_forecast_day_atm_id", "cash_forecast_day", ["atm_id"])


def downgrade() -> None:
    op.drop_table("cash_forecast_day")
    op.drop_table("cash_plan_visit")
    op.drop_table("cash_plan_atm")
    op.drop_table("cash_plan")
    op.drop_table("cash_demand_day")
