"""What is free over a window, from the reservations in the database."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from federica.slices.calendar import Booking, Interval, peak_usage
from federica.slices.embed import HostCap, LinkCap, SubstrateView
from federica.slices.models import Reservation, ReservationKind
from federica.substrate.models import ComputeHost, Device, Link, Port
from federica.substrate.topology import format_vlan_range

K = ReservationKind


@dataclass
class Ids:
    """Database ids behind the names an embedding uses."""

    links: dict[str, int]
    hosts: dict[str, int]
    uplink_ports: dict[str, int]  # host name -> its uplink port id
    ports: dict[tuple[str, str], int]  # (device, port) -> id
    link_capacity: dict[int, int]
    port_speed: dict[int, int]
    host_cpu: dict[int, int]
    host_ram: dict[int, int]


def overlapping(session: Session, window: Interval) -> list[Reservation]:
    return list(
        session.scalars(
            select(Reservation).where(
                Reservation.start < window.end, Reservation.end > window.start
            )
        )
    )


def usage(reservations: Iterable[Reservation], window: Interval) -> dict[tuple[str, int], int]:
    """Peak use per shared resource over the window: ("link"|"port"|"cpu"|"ram", id)."""
    books: dict[tuple[str, int], list[Booking]] = defaultdict(list)
    for r in reservations:
        iv = Interval(r.start, r.end)
        if r.kind is K.LINK_BANDWIDTH and r.link_id is not None:
            books[("link", r.link_id)].append(Booking(iv, r.bandwidth_mbps))
        elif r.kind is K.PORT_BANDWIDTH and r.port_id is not None:
            books[("port", r.port_id)].append(Booking(iv, r.bandwidth_mbps))
        elif r.kind is K.COMPUTE and r.host_id is not None:
            books[("cpu", r.host_id)].append(Booking(iv, r.vcpu))
            books[("ram", r.host_id)].append(Booking(iv, r.ram_mb))
    return {key: peak_usage(b, window) for key, b in books.items()}


def view(session: Session, window: Interval) -> tuple[SubstrateView, Ids]:
    links = session.scalars(
        select(Link).options(
            selectinload(Link.port_a).selectinload(Port.device),
            selectinload(Link.port_b).selectinload(Port.device),
        )
    ).all()
    hosts = session.scalars(
        select(ComputeHost).options(
            selectinload(ComputeHost.pop),
            selectinload(ComputeHost.uplink).selectinload(Port.device),
        )
    ).all()
    devices = session.scalars(select(Device).options(selectinload(Device.pop))).all()
    held = overlapping(session, window)
    peak = usage(held, window)
    link_tags: dict[int, set[int]] = defaultdict(set)
    port_tags: dict[int, set[int]] = defaultdict(set)
    for r in held:
        if r.kind is K.LINK_VLAN and r.link_id is not None and r.vlan is not None:
            link_tags[r.link_id].add(r.vlan)
        elif r.kind is K.PORT_VLAN and r.port_id is not None and r.vlan is not None:
            port_tags[r.port_id].add(r.vlan)
    every_tag = frozenset(range(1, 4095))
    host_caps = {
        h.name: HostCap(
            h.name,
            h.pop.name,
            h.uplink.device.name,
            h.uplink.name,
            h.cpu_cores - peak.get(("cpu", h.id), 0),
            h.ram_mb - peak.get(("ram", h.id), 0),
            h.uplink.speed_mbps - peak.get(("port", h.uplink_port_id), 0),
            every_tag - port_tags[h.uplink_port_id],
        )
        for h in hosts
    }
    link_caps = [
        LinkCap(
            lk.name,
            lk.port_a.device.name,
            lk.port_a.name,
            lk.port_b.device.name,
            lk.port_b.name,
            lk.capacity_mbps - peak.get(("link", lk.id), 0),
            frozenset(range(lk.vlan_min, lk.vlan_max + 1)) - link_tags[lk.id],
        )
        for lk in links
    ]
    label = f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
    sv = SubstrateView(
        hosts=host_caps,
        links=link_caps,
        translating=frozenset(d.name for d in devices if d.vlan_translation),
        pops_of_devices={d.name: d.pop.name for d in devices},
        window_label=label,
    )
    ports = {(p.device.name, p.name): p.id for lk in links for p in (lk.port_a, lk.port_b)}
    ports |= {(h.uplink.device.name, h.uplink.name): h.uplink_port_id for h in hosts}
    ids = Ids(
        links={lk.name: lk.id for lk in links},
        hosts={h.name: h.id for h in hosts},
        uplink_ports={h.name: h.uplink_port_id for h in hosts},
        ports=ports,
        link_capacity={lk.id: lk.capacity_mbps for lk in links},
        port_speed={h.uplink_port_id: h.uplink.speed_mbps for h in hosts},
        host_cpu={h.id: h.cpu_cores for h in hosts},
        host_ram={h.id: h.ram_mb for h in hosts},
    )
    return sv, ids


def vlan_text(tags: Iterable[int]) -> str:
    ordered = sorted(tags)
    return ", ".join(format_vlan_range(t, t) for t in ordered)
