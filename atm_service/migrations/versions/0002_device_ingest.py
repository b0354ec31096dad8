"""device ingest: device keys and nonces, journals, counters, status, events, latest ATM state

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 16:42:12.426487
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "atm_state",
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("agent_version", sa.String(length=32), nullable=True),
        sa.Column("agent_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("link_state", sa.String(length=200), nullable=True),
        sa.Column("agent_error", sa.String(length=500), nullable=True),
        sa.Column("backlog_bytes", sa.BigInteger(), nullable=False),
        sa.Column("backlog_records", sa.Integer(), nullable=False),
        sa.Column("ingest_lag_s", sa.Integer(), nullable=True),
        sa.Column("in_service", sa.Boolean(), nullable=True),
        sa.Column("safe_door", sa.String(length=16), nullable=True),
        sa.Column("devices", sa.JSON(), nullable=True),
        sa.Column("status_time", sa.String(length=32), nullable=True),
        sa.Column("status_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cash_units", sa.JSON(), nullable=True),
        sa.Column("counters_reason", sa.String(length=64), nullable=True),
        sa.Column("counters_received_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_kind", sa.String(length=32), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_journal_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_atm_state_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("atm_id", name=op.f("pk_atm_state")),
    )
    op.create_table(
        "device_key",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("public_key", sa.String(length=64), nullable=False),
        sa.Column("label", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_device_key_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_key")),
    )
    with op.batch_alter_table("device_key", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_key_atm_id"), ["atm_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_device_key_key_id"), ["key_id"], unique=True)

    op.create_table(
        "device_record_stream",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("stream", sa.String(length=32), nullable=False),
        sa.Column("last_seq", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"],
            ["atm.id"],
            name=op.f("fk_device_record_stream_atm_id_atm"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_device_record_stream")),
        sa.UniqueConstraint("atm_id", "stream", name=op.f("uq_device_record_stream_atm_id_stream")),
    )
    op.create_table(
        "journal_file",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=8), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("line_count", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_journal_file_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_file")),
        sa.UniqueConstraint("atm_id", "name", name=op.f("uq_journal_file_atm_id_name")),
    )
    op.create_table(
        "counters_snapshot",
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("cash_units", sa.JSON(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_counters_snapshot_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["device_record_stream.id"],
            name=op.f("fk_counters_snapshot_stream_id_device_record_stream"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("stream_id", "seq", name=op.f("pk_counters_snapshot")),
    )
    with op.batch_alter_table("counters_snapshot", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_counters_snapshot_atm_id"), ["atm_id"], unique=False)

    op.create_table(
        "device_event",
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("device_time", sa.String(length=32), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_device_event_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["device_record_stream.id"],
            name=op.f("fk_device_event_stream_id_device_record_stream"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("stream_id", "seq", name=op.f("pk_device_event")),
    )
    with op.batch_alter_table("device_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_event_atm_id"), ["atm_id"], unique=False)

    op.create_table(
        "device_nonce",
        sa.Column("key_id", sa.String(length=32), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key_id", "nonce", name=op.f("pk_device_nonce")),
    )
    op.create_table(
        "device_status",
        sa.Column("stream_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("atm_id", sa.Integer(), nullable=False),
        sa.Column("device_time", sa.String(length=32), nullable=True),
        sa.Column("in_service", sa.Boolean(), nullable=True),
        sa.Column("safe_door", sa.String(length=16), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["atm_id"], ["atm.id"], name=op.f("fk_device_status_atm_id_atm"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["stream_id"],
            ["device_record_stream.id"],
            name=op.f("fk_device_status_stream_id_device_record_stream"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("stream_id", "seq", name=op.f("pk_device_status")),
    )
    with op.batch_alter_table("device_status", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_device_status_atm_id"), ["atm_id"], unique=False)

    op.create_table(
        "journal_chunk",
        sa.Column("journal_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["journal_id"],
            ["journal_file.id"],
            name=op.f("fk_journal_chunk_journal_id_journal_file"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("journal_id", "start", name=op.f("pk_journal_chunk")),
    )


def downgrade() -> None:
    op.drop_table("journal_chunk")
    with op.batch_alter_table("device_status", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_status_atm_id"))

    op.drop_table("device_status")
    op.drop_table("device_nonce")
    with op.batch_alter_table("device_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_event_atm_id"))

    op.drop_table("device_event")
    with op.batch_alter_table("counters_snapshot", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_counters_snapshot_atm_id"))

    op.drop_table("counters_snapshot")
    op.drop_table("journal_file")
    op.drop_table("device_record_stream")
    with op.batch_alter_table("device_key", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_key_key_id"))
        batch_op.drop_index(batch_op.f("ix_device_key_atm_id"))

    op.drop_table("device_key")
    op.drop_table("atm_state")
