"""gmoc collectors: who may poll the GENI monitoring datastore, and what they see

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gmoc_collectors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("cert_name", sa.String(length=500), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=True),
        sa.Column("project", sa.String(length=64), nullable=True),
        sa.Column("users", sa.Boolean(), nullable=False),
        sa.Column("created_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gmoc_collectors")),
        sa.UniqueConstraint("name", name=op.f("uq_gmoc_collectors_name")),
        sa.UniqueConstraint("cert_name", name=op.f("uq_gmoc_collectors_cert_name")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gmoc_collectors_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("gmoc_collectors")
