"""federation: e-stop relays (an outbox of emergency stops a peer must hear of)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-01 05:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_estop_relays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slice_id", sa.Integer(), nullable=False),
        sa.Column("estop_id", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column(
            "direction",
            sa.Enum(
                "to-visited",
                "to-home",
                name="federation_relay_direction",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column(
            "state",
            sa.Enum(
                "pending",
                "delivered",
                "refused",
                name="federation_relay_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("by", sa.String(length=128), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("next_attempt_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["slice_id"],
            ["slices.id"],
            name=op.f("fk_federation_estop_relays_slice_id_slices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_estop_relays")),
        sa.UniqueConstraint("estop_id", "peer", "request_id", name="estop_peer_request"),
    )
    with op.batch_alter_table("federation_estop_relays", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_federation_estop_relays_slice_id"), ["slice_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_federation_estop_relays_next_attempt_at"),
            ["next_attempt_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("federation_estop_relays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federation_estop_relays_next_attempt_at"))
        batch_op.drop_index(batch_op.f("ix_federation_estop_relays_slice_id"))
    op.drop_table("federation_estop_relays")
