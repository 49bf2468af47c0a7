"""outbound call requests (restaurant reservations and other outbound jobs)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 01:17:41.570218
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TABLE = "outbound_call_requests"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("tenant_id", sa.String(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=48), nullable=False),
        sa.Column("details", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("from_number", sa.String(length=20), nullable=False),
        sa.Column("to_number", sa.String(length=20), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="queued", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("retry_delay_s", sa.Double(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "twilio_call_sids",
            postgresql.ARRAY(sa.String(length=64)),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("last_call_status", sa.String(length=16), nullable=True),
        sa.Column("answered_by", sa.String(length=32), nullable=True),
        sa.Column("outcome", sa.String(length=24), nullable=True),
        sa.Column(
            "outcome_details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("webhook_event_id", sa.String(length=64), nullable=True),
        sa.Column("webhook_queued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint(
            "status IN ('queued', 'dialing', 'in_progress', 'retry_scheduled', 'completed')",
            name="ck_outbound_call_requests_status",
        ),
        sa.CheckConstraint(
            "outcome IS NULL OR outcome IN ('confirmed', 'alternative_offered', 'declined',"
            " 'voicemail_left', 'no_answer', 'busy', 'failed')",
            name="ck_outbound_call_requests_outcome",
        ),
        sa.CheckConstraint(
            "attempts >= 0 AND max_attempts >= 1", name="ck_outbound_call_requests_attempts"
        ),
    )
    # "Find the request of this CallSid" (tools, status callbacks): array containment.
    op.create_index(
        "ix_outbound_call_requests_call_sids",
        TABLE,
        ["twilio_call_sids"],
        unique=False,
        postgresql_using="gin",
    )
    # The dialler's scan for due rows.
    op.create_index("ix_outbound_call_requests_due", TABLE, ["status", "next_attempt_at"])
    # The per-tenant rate limit counts a tenant's recent requests.
    op.create_index("ix_outbound_call_requests_tenant_created", TABLE, ["tenant_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_outbound_call_requests_tenant_created", table_name=TABLE)
    op.drop_index("ix_outbound_call_requests_due", table_name=TABLE)
    op.drop_index("ix_outbound_call_requests_call_sids", table_name=TABLE)
    op.drop_table(TABLE)
