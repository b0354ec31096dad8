"""initial schema: users, sessions, fleet

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-22 16:22:35.051891
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "app_user",
        sa.Column("full_name", sa.String(length=120), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column(
            "role",
            sa.Enum(
                "admin",
                "dispatcher",
                "engineer",
                "reconciler",
                "auditor",
                name="role",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_user_username"), ["username"], unique=True)

    op.create_table(
        "service_contract",
        sa.Column("customer", sa.String(length=120), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("response_minutes", sa.Integer(), nullable=False),
        sa.Column("restore_minutes", sa.Integer(), nullable=False),
        sa.Column("service_days", sa.String(length=7), nullable=False),
        sa.Column("service_start", sa.String(length=5), nullable=False),
        sa.Column("service_end", sa.String(length=5), nullable=False),
        sa.Column("availability_target_pct", sa.Float(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_service_contract")),
    )
    with op.batch_alter_table("service_contract", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_service_contract_code"), ["code"], unique=True)

    op.create_table(
        "site",
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("address_line", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=80), nullable=False),
        sa.Column("postal_code", sa.String(length=16), nullable=False),
        sa.Column("country", sa.String(length=2), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("region", sa.String(length=64), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=False),
        sa.Column("longitude", sa.Float(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("access_notes", sa.String(length=500), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_site")),
    )
    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_site_code"), ["code"], unique=True)
        batch_op.create_index(batch_op.f("ix_site_region"), ["region"], unique=False)

    op.create_table(
        "atm",
        sa.Column("terminal_id", sa.String(length=8), nullable=False),
        sa.Column("site_id", sa.Integer(), nullable=False),
        sa.Column("contract_id", sa.Integer(), nullable=True),
        sa.Column("vendor", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("serial_number", sa.String(length=64), nullable=False),
        sa.Column(
            "ej_dialect",
            sa.Enum("ndc", "procash", name="ejdialect", native_enum=False, length=24),
            nullable=False,
        ),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "in_service",
                "out_of_service",
                "decommissioned",
                name="atmstatus",
                native_enum=False,
                length=24,
            ),
            nullable=False,
        ),
        sa.Column("reject_bin_capacity", sa.Integer(), nullable=False),
        sa.Column("retract_bin_capacity", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["contract_id"],
            ["service_contract.id"],
            name=op.f("fk_atm_contract_id_service_contract"),
        ),
        sa.ForeignKeyConstraint(["site_id"], ["site.id"], name=op.f("fk_atm_site_id_site")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_atm")),
    )
    with op.batch_alter_table("atm", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_atm_contract_id"), ["contract_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_atm_site_id"), ["site_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_atm_terminal_id"), ["terminal_id"], unique=True)

    op.create_table(
        "user_session",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["app_user.id"],
            name=op.f("fk_user_session_user_id_app_user"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user_session")),
    )
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_user_session_token_hash"), ["token_hash"], unique=True)
        batch_op.create_index(batch_op.f("ix_user_session_user_id"), ["user_id"], unique=False)

    op.create_table(
        "cassette",
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("denomination", sa.Integer(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("capacity", sa.Integer(), nullable=False),
        sa.Column("minimum", sa.Integer(), nullable=False),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_cassette_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cassette")),
        sa.UniqueConstraint("atm_id", "number", name=op.f("uq_cassette_atm_id_number")),
    )
    with op.batch_alter_table("cassette", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cassette_atm_id"), ["atm_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("cassette", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cassette_atm_id"))

    op.drop_table("cassette")
    with op.batch_alter_table("user_session", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_user_session_user_id"))
        batch_op.drop_index(batch_op.f("ix_user_session_token_hash"))

    op.drop_table("user_session")
    with op.batch_alter_table("atm", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_atm_terminal_id"))
        batch_op.drop_index(batch_op.f("ix_atm_site_id"))
        batch_op.drop_index(batch_op.f("ix_atm_contract_id"))

    op.drop_table("atm")
    with op.batch_alter_table("site", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_site_region"))
        batch_op.drop_index(batch_op.f("ix_site_code"))

    op.drop_table("site")
    with op.batch_alter_table("service_contract", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_service_contract_code"))

    op.drop_table("service_contract")
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_app_user_username"))

    op.drop_table("app_user")
