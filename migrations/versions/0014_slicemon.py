"""per-slice monitoring: slice nodes' CPU and memory samples, V-nodes' sampling state

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 02:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "node_samples",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("node", sa.String(length=64), nullable=False),
        sa.Column("at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("cpu_seconds", sa.Float(), nullable=True),
        sa.Column("cpu_cores", sa.Float(), nullable=True),
        sa.Column("memory_bytes", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["compute_hosts.id"],
            name=op.f("fk_node_samples_host_id_compute_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("host_id", "node", "at", name=op.f("pk_node_samples")),
    )
    op.create_index("ix_node_samples_at", "node_samples", ["at"], unique=False)
    op.create_table(
        "monitored_hosts",
        sa.Column("host_id", sa.Integer(), nullable=False),
        sa.Column("last_sample_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_ok_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["host_id"],
            ["compute_hosts.id"],
            name=op.f("fk_monitored_hosts_host_id_compute_hosts"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("host_id", name=op.f("pk_monitored_hosts")),
    )


def downgrade() -> None:
    op.drop_table("monitored_hosts")
    op.drop_index("ix_node_samples_at", table_name="node_samples")
    op.drop_table("node_samples")
