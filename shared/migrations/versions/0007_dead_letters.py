"""dead_letters: stream entries given up on, with their error

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("stream", sa.String(length=200), nullable=False),
        sa.Column("entry_id", sa.String(length=32), nullable=False),
        sa.Column("call_sid", sa.String(length=64), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False, comment="entry fields as JSON"),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False, comment="dead | retried"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("retried_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stream", "entry_id"),
    )
    op.create_index("ix_dead_letters_call_sid", "dead_letters", ["call_sid"])


def downgrade() -> None:
    op.drop_index("ix_dead_letters_call_sid", table_name="dead_letters")
    op.drop_table("dead_letters")
