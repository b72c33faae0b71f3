"""tokens: parent and kind; anonymous requests counted

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 22:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_id", sa.Integer(), nullable=True))
        batch_op.add_column(
            sa.Column(
                "kind",
                sa.Enum(
                    "api",
                    "session",
                    name="token_kind",
                    native_enum=False,
                    create_constraint=True,
                    length=16,
                ),
                server_default="api",
                nullable=False,
            )
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_api_tokens_parent_id_api_tokens"),
            "api_tokens",
            ["parent_id"],
            ["id"],
            ondelete="CASCADE",
        )
        batch_op.create_index(batch_op.f("ix_api_tokens_parent_id"), ["parent_id"], unique=False)
    # Before this revision the portal's session tokens were bearer tokens too, readable in
    # the cookie: they become sessions, which the API refuses (and whose "fed_" secrets
    # no session accepts either: those browsers sign in again once).
    op.execute("UPDATE api_tokens SET kind = 'session' WHERE name = 'portal session'")

    op.create_table(
        "anonymous_requests",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=64), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("last_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_address", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint(
            "day", "method", "route", "status", name=op.f("pk_anonymous_requests")
        ),
    )


def downgrade() -> None:
    op.drop_table("anonymous_requests")
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_tokens_parent_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_api_tokens_parent_id_api_tokens"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("ck_api_tokens_token_kind"), type_="check")
        batch_op.drop_column("kind")
        batch_op.drop_column("parent_id")
