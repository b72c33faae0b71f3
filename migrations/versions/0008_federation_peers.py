"""federation: the peer registry

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 23:19:23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_peers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=500), nullable=False),
        sa.Column(
            "form",
            sa.Enum(
                "overlay",
                "partial",
                "integrated",
                name="federation_form",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("ca_pem", sa.Text(), nullable=False),
        sa.Column("ca_fingerprint", sa.String(length=95), nullable=False),
        sa.Column("allowed", sa.Text(), nullable=True),
        sa.Column("pops", sa.Text(), nullable=True),
        sa.Column("borders", sa.Text(), nullable=False),
        sa.Column("guest_quota", sa.Integer(), nullable=False),
        sa.Column("created_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("guest_quota >= 0", name=op.f("ck_federation_peers_guest_quota")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_peers")),
        sa.UniqueConstraint("ca_fingerprint", name=op.f("uq_federation_peers_ca_fingerprint")),
        sa.UniqueConstraint("name", name=op.f("uq_federation_peers_name")),
    )


def downgrade() -> None:
    op.drop_table("federation_peers")
