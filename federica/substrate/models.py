"""The physical facility as stored in the database.

Natural keys (PoP name, device name, (device, port name), link name, host name) are unique,
so a topology file can be re-loaded and applied in place; surrogate integer keys are what
other tables reference.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from federica.db import Base, UTCDateTime, str_enum, utcnow

# The kinds live in a pure module (topology validation and embedding import them); named
# here too for the code that thinks of them as part of the schema.
from federica.substrate.kinds import VLAN_MAX, VLAN_MIN, DeviceKind, PopRole, PortKind

__all__ = ["VLAN_MAX", "VLAN_MIN", "DeviceKind", "PopRole", "PortKind"]


class Timestamps:
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Pop(Timestamps, Base):
    __tablename__ = "pops"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    country: Mapped[str] = mapped_column(String(2))
    role: Mapped[PopRole] = mapped_column(str_enum(PopRole, "pop_role"))
    site: Mapped[str] = mapped_column(String(128), default="")
    latitude: Mapped[float] = mapped_column(Float)
    longitude: Mapped[float] = mapped_column(Float)

    devices: Mapped[list[Device]] = relationship(back_populates="pop", order_by="Device.name")
    hosts: Mapped[list[ComputeHost]] = relationship(
        back_populates="pop", order_by="ComputeHost.name"
    )

    __table_args__ = (
        CheckConstraint("latitude BETWEEN -90 AND 90", name="latitude"),
        CheckConstraint("longitude BETWEEN -180 AND 180", name="longitude"),
    )


class Device(Timestamps, Base):
    """A switch or router the controller configures over NETCONF."""

    __tablename__ = "devices"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    pop_id: Mapped[int] = mapped_column(ForeignKey("pops.id", ondelete="RESTRICT"), index=True)
    kind: Mapped[DeviceKind] = mapped_column(str_enum(DeviceKind, "device_kind"))
    model: Mapped[str] = mapped_column(String(128), default="")
    driver: Mapped[str] = mapped_column(String(32))
    mgmt_host: Mapped[str] = mapped_column(String(255))
    netconf_port: Mapped[int] = mapped_column(Integer, default=830)
    # "SHA256:<base64>" as printed by ssh-keygen -l; None until recorded (then nothing connects).
    host_key_fingerprint: Mapped[str | None] = mapped_column(String(128), default=None)
    # Name of a credential set in the controller's configuration; never the secret itself.
    credentials_ref: Mapped[str] = mapped_column(String(64), default="default")
    vlan_translation: Mapped[bool] = mapped_column(Boolean, default=False)

    pop: Mapped[Pop] = relationship(back_populates="devices")
    ports: Mapped[list[Port]] = relationship(
        back_populates="device", order_by="Port.name", cascade="all, delete-orphan"
    )

    __table_args__ = (CheckConstraint("netconf_port BETWEEN 1 AND 65535", name="netconf_port"),)


class DeviceReachability(Base):
    """Whether the controller could last talk to a device, and since when: runtime state
    written by whoever saw it (the worker's sessions, `federica device check`), kept apart
    from the inventory so that applying a topology never touches it."""

    __tablename__ = "device_reachability"

    device_id: Mapped[int] = mapped_column(
        ForeignKey("devices.id", ondelete="CASCADE"), primary_key=True
    )
    reachable: Mapped[bool] = mapped_column(Boolean)
    since: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reason: Mapped[str] = mapped_column(Text, default="")
    seen_by: Mapped[str] = mapped_column(String(64), default="")


class Port(Timestamps, Base):
    __tablename__ = "ports"

    id: Mapped[int] = mapped_column(primary_key=True)
    device_id: Mapped[int] = mapped_column(ForeignKey("devices.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    speed_mbps: Mapped[int] = mapped_column(Integer)
    kind: Mapped[PortKind] = mapped_column(str_enum(PortKind, "port_kind"))
    description: Mapped[str] = mapped_column(String(255), default="")

    device: Mapped[Device] = relationship(back_populates="ports")
    border: Mapped[BorderPort | None] = relationship(
        back_populates="port", cascade="all, delete-orphan"
    )

    __table_args__ = (
        UniqueConstraint("device_id", "name"),
        CheckConstraint("speed_mbps > 0", name="speed"),
    )

    @property
    def label(self) -> str:
        return f"{self.device.name}:{self.name}"


class PeerFacility(Timestamps, Base):
    """A neighbouring facility reached through border ports (federation builds on it)."""

    __tablename__ = "peer_facilities"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str] = mapped_column(String(255), default="")

    border_ports: Mapped[list[BorderPort]] = relationship(back_populates="peer")


class BorderPort(Timestamps, Base):
    """A port facing a peer facility, with the VLAN range agreed with that peer."""

    __tablename__ = "border_ports"

    port_id: Mapped[int] = mapped_column(
        ForeignKey("ports.id", ondelete="CASCADE"), primary_key=True
    )
    peer_id: Mapped[int] = mapped_column(
        ForeignKey("peer_facilities.id", ondelete="RESTRICT"), index=True
    )
    vlan_min: Mapped[int] = mapped_column(Integer)
    vlan_max: Mapped[int] = mapped_column(Integer)
    # The device may rewrite a circuit's tag at this port (the border tag need not be the
    # one the circuit uses inside the facility).
    translate: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())

    port: Mapped[Port] = relationship(back_populates="border")
    peer: Mapped[PeerFacility] = relationship(back_populates="border_ports")

    __table_args__ = (
        CheckConstraint(
            f"vlan_min >= {VLAN_MIN} AND vlan_max <= {VLAN_MAX} AND vlan_min <= vlan_max",
            name="vlans",
        ),
    )


class Link(Timestamps, Base):
    """A physical link between two ports, with capacity and the VLAN tags usable on it."""

    __tablename__ = "links"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    port_a_id: Mapped[int] = mapped_column(ForeignKey("ports.id", ondelete="RESTRICT"), unique=True)
    port_b_id: Mapped[int] = mapped_column(ForeignKey("ports.id", ondelete="RESTRICT"), unique=True)
    capacity_mbps: Mapped[int] = mapped_column(Integer)
    vlan_min: Mapped[int] = mapped_column(Integer)
    vlan_max: Mapped[int] = mapped_column(Integer)

    port_a: Mapped[Port] = relationship(foreign_keys=[port_a_id])
    port_b: Mapped[Port] = relationship(foreign_keys=[port_b_id])

    __table_args__ = (
        CheckConstraint("port_a_id <> port_b_id", name="distinct_ends"),
        CheckConstraint("capacity_mbps > 0", name="capacity"),
        CheckConstraint(
            f"vlan_min >= {VLAN_MIN} AND vlan_max <= {VLAN_MAX} AND vlan_min <= vlan_max",
            name="vlans",
        ),
    )


class ComputeHost(Timestamps, Base):
    """A V-node: a virtualisation server at a PoP, attached to one device port."""

    __tablename__ = "compute_hosts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    pop_id: Mapped[int] = mapped_column(ForeignKey("pops.id", ondelete="RESTRICT"), index=True)
    uplink_port_id: Mapped[int] = mapped_column(
        ForeignKey("ports.id", ondelete="RESTRICT"), unique=True
    )
    cpu_cores: Mapped[int] = mapped_column(Integer)
    ram_mb: Mapped[int] = mapped_column(Integer)
    driver: Mapped[str] = mapped_column(String(32))

    # Joined: a V-node is always named with its PoP (a slice's nodes, the calendar).
    pop: Mapped[Pop] = relationship(back_populates="hosts", lazy="joined", innerjoin=True)
    uplink: Mapped[Port] = relationship()

    __table_args__ = (
        CheckConstraint("cpu_cores > 0", name="cpu"),
        CheckConstraint("ram_mb > 0", name="ram"),
    )
