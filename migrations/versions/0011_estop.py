"""emergency stops: one row per stop of a slice, with its report and forensic snapshot

Revision ID: 0011_estop
Revises: 0010
Create Date: 2026-12-01 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0011_estop"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "estops",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slice_id", sa.Integer(), nullable=False),
        sa.Column("at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("by", sa.String(length=100), nullable=False),
        sa.Column("via", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("ticket", sa.String(length=100), nullable=True),
        sa.Column("selector", sa.Text(), nullable=False),
        sa.Column("report", sa.Text(), nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("isolated_ms", sa.Float(), nullable=True),
        sa.Column("forensic_hold", sa.Boolean(), nullable=False),
        sa.Column("hold_by", sa.String(length=100), nullable=True),
        sa.Column("lifted_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("lifted_by", sa.String(length=100), nullable=True),
        sa.Column("lift_reason", sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(
            ["slice_id"],
            ["slices.id"],
            name=op.f("fk_estops_slice_id_slices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_estops")),
    )
    with op.batch_alter_table("estops", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_estops_slice_id"), ["slice_id"], unique=False)
        batch_op.create_index(
            "uq_estops_in_force",
            ["slice_id"],
            unique=True,
            sqlite_where=sa.text("lifted_at IS NULL"),
            postgresql_where=sa.text("lifted_at IS NULL"),
        )


def downgrade() -> None:
    with op.batch_alter_table("estops", schema=None) as batch_op:
        batch_op.drop_index("uq_estops_in_force")
        batch_op.drop_index(batch_op.f("ix_estops_slice_id"))
    op.drop_table("estops")
