"""federation: seen assertions, guest bookings, remote parts

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-01 01:46:23.126666
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "federation_seen_assertions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("jti", sa.String(length=64), nullable=False),
        sa.Column("expires_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_seen_assertions")),
        sa.UniqueConstraint("issuer", "jti", name="issuer_jti"),
    )
    with op.batch_alter_table("federation_seen_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_federation_seen_assertions_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "federation_guest_bookings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("slice_id", sa.Integer(), nullable=False),
        sa.Column("user_urn", sa.String(length=255), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "held",
                "committed",
                "aborted",
                name="federation_guest_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("hold_until", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["slice_id"],
            ["slices.id"],
            name=op.f("fk_federation_guest_bookings_slice_id_slices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_guest_bookings")),
        sa.UniqueConstraint("peer", "request_id", name="peer_request"),
    )
    with op.batch_alter_table("federation_guest_bookings", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_federation_guest_bookings_slice_id"), ["slice_id"], unique=False
        )

    op.create_table(
        "federation_remote_parts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slice_id", sa.Integer(), nullable=False),
        sa.Column("peer", sa.String(length=64), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=False),
        sa.Column("remote_slice", sa.String(length=64), nullable=False),
        sa.Column(
            "state",
            sa.Enum(
                "held",
                "committed",
                "aborted",
                name="federation_guest_state",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("nodes", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("created_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["slice_id"],
            ["slices.id"],
            name=op.f("fk_federation_remote_parts_slice_id_slices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_federation_remote_parts")),
        sa.UniqueConstraint("request_id", name=op.f("uq_federation_remote_parts_request_id")),
    )
    with op.batch_alter_table("federation_remote_parts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_federation_remote_parts_slice_id"), ["slice_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("federation_remote_parts", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federation_remote_parts_slice_id"))

    op.drop_table("federation_remote_parts")
    with op.batch_alter_table("federation_guest_bookings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federation_guest_bookings_slice_id"))

    op.drop_table("federation_guest_bookings")
    with op.batch_alter_table("federation_seen_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_federation_seen_assertions_expires_at"))

    op.drop_table("federation_seen_assertions")
