"""geni: the GENI slices the AM API v3 allocated

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "geni_slices",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slice_id", sa.Integer(), nullable=False),
        sa.Column("slice_urn", sa.String(length=300), nullable=False),
        sa.Column("user_urn", sa.String(length=300), nullable=False),
        sa.Column("allocation_expires", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("provisioned_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("started_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("stopped_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["slice_id"],
            ["slices.id"],
            name=op.f("fk_geni_slices_slice_id_slices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_geni_slices")),
        sa.UniqueConstraint("slice_id", name=op.f("uq_geni_slices_slice_id")),
    )
    op.create_index(op.f("ix_geni_slices_slice_urn"), "geni_slices", ["slice_urn"])


def downgrade() -> None:
    op.drop_index(op.f("ix_geni_slices_slice_urn"), table_name="geni_slices")
    op.drop_table("geni_slices")
