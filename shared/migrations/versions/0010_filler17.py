"""Fillers and undone barge-ins in the stored record (issue 17, branch filler17)

- `transcript_lines.kind`: `speech` (what was said in the conversation) or `filler` (a short
  "One moment." media played while the reply was slow; not said by the LLM). Added on the
  partitioned parent, so every partition gets it.
- `turns.false_interrupts`: interruptions of the turn's reply that media undid (the caller only
  said "mhm" or coughed: the cut sentences were spoken again). Such a turn is not `barged_in`.
- `barge_ins.undone`: that barge-in was found false and undone (`caller.false_interrupt`).

Revision ID: 0010_filler17
Revises: 0009_partitions
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010_filler17"
down_revision = "0009_partitions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "transcript_lines",
        sa.Column(
            "kind",
            sa.String(16),
            server_default="speech",
            nullable=False,
            comment="speech | filler (played while a slow reply was awaited)",
        ),
    )
    op.add_column(
        "turns",
        sa.Column(
            "false_interrupts",
            sa.Integer(),
            server_default="0",
            nullable=False,
            comment="Interruptions of this turn's reply that were undone (backchannel, cough)",
        ),
    )
    op.add_column(
        "barge_ins",
        sa.Column(
            "undone",
            sa.Boolean(),
            server_default="false",
            nullable=False,
            comment="Found false (caller.false_interrupt): the cut speech was spoken again",
        ),
    )


def downgrade() -> None:
    op.drop_column("barge_ins", "undone")
    op.drop_column("turns", "false_interrupts")
    op.drop_column("transcript_lines", "kind")
