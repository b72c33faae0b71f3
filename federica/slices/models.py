"""Slices and their reservations in the database.

Exclusive resources (a VLAN tag on a link or on a V-node's uplink port) can never be held
twice at once: PostgreSQL enforces it with exclusion constraints over tstzrange (see the
migration). Every calendar writer first takes the calendar revision's lock (revision.py),
then checks tags and shared capacity (link and uplink bandwidth, host CPU/RAM) with a
sweep over the in-memory index, which is then exactly what is committed.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, object_session, relationship

from federica.db import Base, UTCDateTime, str_enum, utcnow
from federica.slices.lifecycle import EventKind, PartState, SliceStatus
from federica.substrate.models import ComputeHost

if TYPE_CHECKING:
    from federica.aaa.models import User


class ReservationKind(enum.StrEnum):
    # A circuit's hop is one row: its tag (exclusive) and its Mb/s (shared capacity).
    LINK_VLAN = "link-vlan"  # a tag on a physical link, and the Mb/s the circuit takes
    PORT_VLAN = "port-vlan"  # a tag on a V-node uplink port, and the Mb/s
    # Mb/s alone: bookings made before November 2026 kept a hop's Mb/s in
    # a row of its own (their tag rows carry 0), so capacity is the sum over every row.
    LINK_BANDWIDTH = "link-bw"
    PORT_BANDWIDTH = "port-bw"
    COMPUTE = "compute"  # shared: vCPU and RAM on a V-node


class Slice(Base):
    __tablename__ = "slices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(32), index=True)
    description: Mapped[str] = mapped_column(String(500), default="")
    project: Mapped[str | None] = mapped_column(String(64), default=None, index=True)
    # Who booked it (None: the facility's own, booked from the operators' console).
    owner_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None, index=True
    )
    status: Mapped[SliceStatus] = mapped_column(str_enum(SliceStatus, "slice_status"))
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    request: Mapped[str] = mapped_column(Text)  # the request as submitted (JSON)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The calendar revision of this slice's last reservation change (see revision.py):
    # in-memory calendar indexes reload only slices newer than what they hold.
    rev: Mapped[int] = mapped_column(Integer, default=0, index=True)
    timings: Mapped[str] = mapped_column(Text, default="{}")  # phase -> ms, as JSON
    # How to reach the running slice (the gateway's endpoint), as JSON; {} when not running.
    access: Mapped[str] = mapped_column(Text, default="{}")

    # Joined: a slice's description names its owner, also after its session closed.
    owner: Mapped[User | None] = relationship(lazy="joined")
    # Selectin: what describe() shows comes in one query per collection for all the
    # slices loaded at once (a listing, a booking's answer), not one per slice and part;
    # B4 (bench/booking.py) measured ~9 queries per booking's answer before. In the order
    # they were booked: PostgreSQL returns rows in whatever order its pages hold them
    # (a restored database showed the nodes in another order).
    nodes: Mapped[list[SliceNode]] = relationship(
        back_populates="slice",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="SliceNode.id",
    )
    circuits: Mapped[list[SliceCircuit]] = relationship(
        back_populates="slice",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="SliceCircuit.id",
    )
    reservations: Mapped[list[Reservation]] = relationship(
        back_populates="slice", cascade="all, delete-orphan"
    )
    # Not selectin: a status change is added without reading the history (lifecycle).
    history: Mapped[list[StatusChange]] = relationship(
        back_populates="slice", cascade="all, delete-orphan", order_by="StatusChange.id"
    )
    events: Mapped[list[SliceEvent]] = relationship(
        back_populates="slice",
        cascade="all, delete-orphan",
        order_by="SliceEvent.due",
        lazy="selectin",
    )

    __table_args__ = (CheckConstraint('start < "end"', name="window"),)

    def _record_status(self, status: SliceStatus, at: dt.datetime, reason: str) -> None:
        """Set the status and add it to the history. Only lifecycle.move calls it (after
        checking the move against the table)."""
        self.status = status
        self._add_history(StatusChange(status=status, at=at, reason=reason))

    def note(self, at: dt.datetime, reason: str) -> None:
        """A history entry that changes nothing (an extension): the status stays."""
        self._add_history(StatusChange(status=self.status, at=at, reason=reason))

    def _add_history(self, change: StatusChange) -> None:
        # Without loading the history when it is not loaded yet: a long-lived slice has
        # many entries, and the worker's hot path should not read them all to add one.
        session = object_session(self)
        if "history" in self.__dict__ or session is None or self.id is None:
            self.history.append(change)
        else:
            change.slice_id = self.id
            session.add(change)


class SliceNode(Base):
    __tablename__ = "slice_nodes"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(16))
    vcpu: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    image: Mapped[str] = mapped_column(String(64))
    host_id: Mapped[int] = mapped_column(
        ForeignKey("compute_hosts.id", ondelete="RESTRICT"), index=True
    )
    state: Mapped[PartState] = mapped_column(
        str_enum(PartState, "part_state"), default=PartState.PLANNED
    )
    detail: Mapped[str] = mapped_column(Text, default="")  # why it failed, login details

    slice: Mapped[Slice] = relationship(back_populates="nodes")
    # With its PoP (describe() names both): joined, not two queries per node.
    host: Mapped[ComputeHost] = relationship(lazy="joined", innerjoin=True)


class SliceCircuit(Base):
    __tablename__ = "slice_circuits"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(32))
    bandwidth_mbps: Mapped[int] = mapped_column(Integer)
    mapping: Mapped[str] = mapped_column(Text)  # hops as JSON: device, port, vlan, link
    state: Mapped[PartState] = mapped_column(
        str_enum(PartState, "part_state"), default=PartState.PLANNED
    )
    detail: Mapped[str] = mapped_column(Text, default="")

    slice: Mapped[Slice] = relationship(back_populates="circuits")


class Reservation(Base):
    __tablename__ = "reservations"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ReservationKind] = mapped_column(str_enum(ReservationKind, "reservation_kind"))
    link_id: Mapped[int | None] = mapped_column(
        ForeignKey("links.id", ondelete="RESTRICT"), default=None
    )
    port_id: Mapped[int | None] = mapped_column(
        ForeignKey("ports.id", ondelete="RESTRICT"), default=None
    )
    host_id: Mapped[int | None] = mapped_column(
        ForeignKey("compute_hosts.id", ondelete="RESTRICT"), default=None
    )
    vlan: Mapped[int | None] = mapped_column(Integer, default=None)
    bandwidth_mbps: Mapped[int] = mapped_column(Integer, default=0)
    vcpu: Mapped[int] = mapped_column(Integer, default=0)
    ram_mb: Mapped[int] = mapped_column(Integer, default=0)
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime)

    slice: Mapped[Slice] = relationship(back_populates="reservations")

    __table_args__ = (
        CheckConstraint('start < "end"', name="window"),
        CheckConstraint(
            "(kind = 'link-vlan' AND link_id IS NOT NULL AND vlan BETWEEN 1 AND 4094)"
            " OR (kind = 'port-vlan' AND port_id IS NOT NULL AND vlan BETWEEN 1 AND 4094)"
            " OR (kind = 'link-bw' AND link_id IS NOT NULL AND bandwidth_mbps > 0)"
            " OR (kind = 'port-bw' AND port_id IS NOT NULL AND bandwidth_mbps > 0)"
            " OR (kind = 'compute' AND host_id IS NOT NULL AND vcpu >= 0 AND ram_mb >= 0)",
            name="shape",
        ),
        Index("ix_reservations_link_window", "link_id", "start", "end"),
        Index("ix_reservations_port_window", "port_id", "start", "end"),
        Index("ix_reservations_host_window", "host_id", "start", "end"),
    )


class StatusChange(Base):
    __tablename__ = "slice_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    status: Mapped[SliceStatus] = mapped_column(str_enum(SliceStatus, "slice_status"))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    reason: Mapped[str] = mapped_column(Text, default="")

    slice: Mapped[Slice] = relationship(back_populates="history")


class SliceEvent(Base):
    """A due calendar event (start, warn before end, end). The worker claims due events
    atomically with a lease: a worker that dies leaves its claim to expire and be taken
    again, so an event is handled at least once and its handler is idempotent."""

    __tablename__ = "slice_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    slice_id: Mapped[int] = mapped_column(ForeignKey("slices.id", ondelete="CASCADE"), index=True)
    kind: Mapped[EventKind] = mapped_column(str_enum(EventKind, "event_kind"))
    due: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    claimed_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, default=None)
    result: Mapped[str] = mapped_column(Text, default="")

    slice: Mapped[Slice] = relationship(back_populates="events")

    __table_args__ = (Index("ix_slice_events_pending", "done_at", "due"),)


class MaintenanceTarget(enum.StrEnum):
    POP = "pop"
    DEVICE = "device"
    LINK = "link"
    HOST = "host"


class MaintenanceWindow(Base):
    """An operator's block on a PoP, device, link or V-node: no booking may use it
    during [start, end)."""

    __tablename__ = "maintenance_windows"

    id: Mapped[int] = mapped_column(primary_key=True)
    target_kind: Mapped[MaintenanceTarget] = mapped_column(
        str_enum(MaintenanceTarget, "maintenance_target")
    )
    target: Mapped[str] = mapped_column(String(64))  # the resource's name
    start: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    end: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint('start < "end"', name="window"),
        Index("ix_maintenance_windows_window", "start", "end"),
    )


class ProjectQuota(Base):
    """A project's limits (no row, or a limit None: unlimited): vCPU-hours per calendar
    month, and nodes and circuit bandwidth held at any one instant."""

    __tablename__ = "project_quotas"

    project: Mapped[str] = mapped_column(String(64), primary_key=True)
    vcpu_hours_per_month: Mapped[int | None] = mapped_column(Integer, default=None)
    max_nodes: Mapped[int | None] = mapped_column(Integer, default=None)
    max_bandwidth_mbps: Mapped[int | None] = mapped_column(Integer, default=None)

    __table_args__ = (
        CheckConstraint("vcpu_hours_per_month >= 0", name="non_negative"),
        CheckConstraint("max_nodes >= 0", name="nodes_non_negative"),
        CheckConstraint("max_bandwidth_mbps >= 0", name="bandwidth_non_negative"),
    )
