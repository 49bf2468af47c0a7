"""recordings: per-tenant recording settings, and each call's recording

Revision ID: 0008_recordings
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_recordings"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("recording_enabled", sa.Boolean(), nullable=False, server_default="true"),
    )
    op.add_column(
        "tenants",
        sa.Column("recording_disclosure", sa.Text(), nullable=False, server_default=""),
    )
    op.add_column(
        "tenants",
        sa.Column("recording_retention_days", sa.Integer(), nullable=False, server_default="30"),
    )
    op.add_column("calls", sa.Column("recording_key", sa.String(length=300), nullable=True))
    op.add_column("calls", sa.Column("recording_duration_s", sa.Double(), nullable=True))
    op.add_column("calls", sa.Column("recording_bytes", sa.BigInteger(), nullable=True))
    op.add_column(
        "calls", sa.Column("recording_purged_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.create_index(
        "ix_calls_recording_due",
        "calls",
        ["ended_at"],
        postgresql_where=sa.text("recording_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_calls_recording_due", table_name="calls")
    for column in ("recording_purged_at", "recording_bytes", "recording_duration_s"):
        op.drop_column("calls", column)
    op.drop_column("calls", "recording_key")
    for column in ("recording_retention_days", "recording_disclosure", "recording_enabled"):
        op.drop_column("tenants", column)
