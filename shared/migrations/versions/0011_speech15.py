"""speech15: a tenant's speech choice ('vendor' or 'local': the self-hosted speech service)

Revision ID: 0011_speech15
Revises: 0010_filler17
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_speech15"
down_revision = "0010_filler17"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "tenants",
        sa.Column("speech", sa.String(length=16), nullable=False, server_default="vendor"),
    )
    op.create_check_constraint(
        "ck_tenants_speech", "tenants", sa.text("speech IN ('vendor', 'local')")
    )


def downgrade() -> None:
    op.drop_constraint("ck_tenants_speech", "tenants", type_="check")
    op.drop_column("tenants", "speech")
