"""Per-tenant conversation knobs (barge-in, keypress, silence) on assistant_settings.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "assistant_settings",
        sa.Column(
            "conversation",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
            comment="ConversationKnobs: turn-taking and keys; unset keys use platform defaults",
        ),
    )


def downgrade() -> None:
    op.drop_column("assistant_settings", "conversation")
