"""border ports: may the device rewrite a circuit's tag at the border (inter-domain
circuits)

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-01 05:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("border_ports", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("translate", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("border_ports", schema=None) as batch_op:
        batch_op.drop_column("translate")
