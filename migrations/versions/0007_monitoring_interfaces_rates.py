"""monitoring: interfaces, device poll state, rates, roll-ups (issue 20)

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 22:43:06.778917
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import federica.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitoring_rollups",
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("done_until", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("resolution_s", name=op.f("pk_monitoring_rollups")),
    )
    op.create_table(
        "monitored_devices",
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("last_poll_at", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_ok_at", federica.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("uptime_ticks", sa.BigInteger(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=255), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_monitored_devices_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("device_id", name=op.f("pk_monitored_devices")),
    )
    op.create_table(
        "monitored_interfaces",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("device_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("port_id", sa.Integer(), nullable=True),
        sa.Column("if_index", sa.Integer(), nullable=False),
        sa.Column("alias", sa.String(length=255), nullable=False),
        sa.Column("admin_status", sa.Integer(), nullable=True),
        sa.Column("oper_status", sa.Integer(), nullable=True),
        sa.Column("high_speed_mbps", sa.Integer(), nullable=True),
        sa.Column("last_seen", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_monitored_interfaces_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["port_id"],
            ["ports.id"],
            name=op.f("fk_monitored_interfaces_port_id_ports"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitored_interfaces")),
        sa.UniqueConstraint(
            "device_id", "name", name=op.f("uq_monitored_interfaces_device_id_name")
        ),
    )
    with op.batch_alter_table("monitored_interfaces", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_monitored_interfaces_port_id"), ["port_id"], unique=False
        )

    op.create_table(
        "interface_rates",
        sa.Column("interface_id", sa.Integer(), nullable=False),
        sa.Column("resolution_s", sa.Integer(), nullable=False),
        sa.Column("start", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("end", federica.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("covered_s", sa.Float(), nullable=False),
        sa.Column("in_octets", sa.Float(), nullable=True),
        sa.Column("out_octets", sa.Float(), nullable=True),
        sa.Column("in_ucast_pkts", sa.Float(), nullable=True),
        sa.Column("out_ucast_pkts", sa.Float(), nullable=True),
        sa.Column("in_errors", sa.Float(), nullable=True),
        sa.Column("out_errors", sa.Float(), nullable=True),
        sa.Column("in_discards", sa.Float(), nullable=True),
        sa.Column("out_discards", sa.Float(), nullable=True),
        sa.CheckConstraint("resolution_s >= 0", name=op.f("ck_interface_rates_resolution")),
        sa.CheckConstraint('start < "end"', name=op.f("ck_interface_rates_window")),
        sa.ForeignKeyConstraint(
            ["interface_id"],
            ["monitored_interfaces.id"],
            name=op.f("fk_interface_rates_interface_id_monitored_interfaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "interface_id", "resolution_s", "start", name=op.f("pk_interface_rates")
        ),
    )
    with op.batch_alter_table("interface_rates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_interface_rates_resolution_end", ["resolution_s", "end"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("interface_rates", schema=None) as batch_op:
        batch_op.drop_index("ix_interface_rates_resolution_end")

    op.drop_table("interface_rates")
    with op.batch_alter_table("monitored_interfaces", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_monitored_interfaces_port_id"))

    op.drop_table("monitored_interfaces")
    op.drop_table("monitored_devices")
    op.drop_table("monitoring_rollups")
