"""alarms; monitored interfaces keep their latest raw counters (issue 20)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 23:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("monitored_interfaces", schema=None) as batch_op:
        batch_op.add_column(sa.Column("counters", sa.Text(), nullable=False, server_default="{}"))
    op.create_table(
        "alarms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=160), nullable=False),
        sa.Column("device", sa.String(length=64), nullable=True),
        sa.Column("link", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=False),
        sa.Column("raised_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("cleared_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acked_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acked_by", sa.String(length=128), nullable=True),
        sa.Column("suppressed", sa.Boolean(), nullable=False),
        sa.Column("slices", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alarms")),
    )
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alarms_device"), ["device"], unique=False)
        batch_op.create_index("ix_alarms_raised_at", ["raised_at"], unique=False)
        batch_op.create_index(
            "uq_alarms_open",
            ["kind", "subject"],
            unique=True,
            sqlite_where=sa.text("cleared_at IS NULL"),
            postgresql_where=sa.text("cleared_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("alarms", schema=None) as batch_op:
        batch_op.drop_index("uq_alarms_open")
        batch_op.drop_index("ix_alarms_raised_at")
        batch_op.drop_index(batch_op.f("ix_alarms_device"))
    op.drop_table("alarms")
    with op.batch_alter_table("monitored_interfaces", schema=None) as batch_op:
        batch_op.drop_column("counters")
