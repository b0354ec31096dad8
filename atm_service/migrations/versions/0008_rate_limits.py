"""rate limits: attempts at logging in and asking for lock codes, per sliding window

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-24 10:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "rate_limit_hit",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            nullable=False,
        ),
        sa.Column("limit_name", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_limit_hit")),
    )
    op.create_index(
        "ix_rate_limit_hit_limit_subject_at",
        "rate_limit_hit",
        ["limit_name", "subject", "at"],
        unique=False,
    )
    op.create_index("ix_rate_limit_hit_at", "rate_limit_hit", ["at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_rate_limit_hit_at", table_name="rate_limit_hit")
    op.drop_index("ix_rate_limit_hit_limit_subject_at", table_name="rate_limit_hit")
    op.drop_table("rate_limit_hit")
