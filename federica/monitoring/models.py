"""Monitoring data in the controller's database: interfaces seen, device poll state, rates.

Rates are per second, in base units (octets, packets, errors, discards), one row per
interface, resolution and period start. Resolution 0 is raw (one row per poll, [start, end)
the two answers' times); the roll-ups are aligned time-weighted averages whose
`covered_s` says how much of the period had data.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from federica.db import Base, UTCDateTime

RAW = 0
RATE_COLUMNS = (
    "in_octets",
    "out_octets",
    "in_ucast_pkts",
    "out_ucast_pkts",
    "in_errors",
    "out_errors",
    "in_discards",
    "out_discards",
)


class MonitoredInterface(Base):
    """A row of a device's IF-MIB, by its ifName; `port_id` when it is an inventory port."""

    __tablename__ = "monitored_interfaces"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    port_id: Mapped[int | None] = mapped_column(
        ForeignKey("ports.id", ondelete="SET NULL"), index=True, default=None
    )
    if_index: Mapped[int] = mapped_column(Integer)
    alias: Mapped[str] = mapped_column(String(255), default="")
    admin_status: Mapped[int | None] = mapped_column(Integer, default=None)
    oper_status: Mapped[int | None] = mapped_column(Integer, default=None)
    high_speed_mbps: Mapped[int | None] = mapped_column(Integer, default=None)
    last_seen: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # The latest raw counters as the agent gave them ({"in_octets": n, …}, JSON), for
    # Prometheus' `_total` series: JSON keeps a Counter64 exact where a signed BIGINT
    # could not hold it. Read at `last_seen`.
    counters: Mapped[str] = mapped_column(Text, default="{}")

    __table_args__ = (UniqueConstraint("device_id", "name"),)


class MonitoredDevice(Base):
    """How the latest polls of a device went (alarms will read this)."""

    __tablename__ = "monitored_devices"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    last_poll_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    # TimeTicks go up to 2**32 - 1, past a 32-bit signed INTEGER.
    uptime_ticks: Mapped[int | None] = mapped_column(BigInteger, default=None)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(255), default="")


class InterfaceRate(Base):
    __tablename__ = "interface_rates"

    interface_id: Mapped[int] = mapped_column(
        ForeignKey("monitored_interfaces.id", ondelete="CASCADE"), primary_key=True
    )
    resolution_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    covered_s: Mapped[float] = mapped_column(Float)
    in_octets: Mapped[float | None] = mapped_column(Float, default=None)
    out_octets: Mapped[float | None] = mapped_column(Float, default=None)
    in_ucast_pkts: Mapped[float | None] = mapped_column(Float, default=None)
    out_ucast_pkts: Mapped[float | None] = mapped_column(Float, default=None)
    in_errors: Mapped[float | None] = mapped_column(Float, default=None)
    out_errors: Mapped[float | None] = mapped_column(Float, default=None)
    in_discards: Mapped[float | None] = mapped_column(Float, default=None)
    out_discards: Mapped[float | None] = mapped_column(Float, default=None)

    __table_args__ = (
        CheckConstraint("resolution_s >= 0", name="resolution"),
        CheckConstraint('start < "end"', name="window"),
        # Pruning and roll-ups walk one resolution by time.
        Index("ix_interface_rates_resolution_end", "resolution_s", "end"),
    )


class RollupMark(Base):
    """Up to when each roll-up resolution has been computed."""

    __tablename__ = "monitoring_rollups"

    resolution_s: Mapped[int] = mapped_column(Integer, primary_key=True)
    done_until: Mapped[dt.datetime] = mapped_column(UTCDateTime)


class NodeSample(Base):
    """A slice node's state and resource use as its V-node's compute driver saw it, once
    per poll round. `cpu_cores` is the CPU time used since the node's previous sample per
    second of that time (1.0: one core busy); None on a node's first sample or after its
    counter went back (the node was made again)."""

    __tablename__ = "node_samples"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("compute_hosts.id", ondelete="CASCADE"), primary_key=True
    )
    node: Mapped[str] = mapped_column(String(64), primary_key=True)  # the driver's node id
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))  # compute.base.NodeState
    cpu_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    cpu_cores: Mapped[float | None] = mapped_column(Float, default=None)
    memory_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)

    __table_args__ = (Index("ix_node_samples_at", "at"),)


class MonitoredHost(Base):
    """How the latest sampling of a V-node's nodes went (its health as monitoring sees it)."""

    __tablename__ = "monitored_hosts"

    host_id: Mapped[int] = mapped_column(
        ForeignKey("compute_hosts.id", ondelete="CASCADE"), primary_key=True
    )
    last_sample_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    last_ok_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    nodes: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str] = mapped_column(String(255), default="")
