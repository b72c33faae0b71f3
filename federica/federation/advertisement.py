"""What a peer sees of this facility: PoPs, V-node classes and capacity, and the border
ports facing it, never more than its agreement says.

Versioned: `version` names the schema; a peer that reads a version it does not know
stops rather than guesses.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from federica.federation.agreement import API_VERSION
from federica.federation.identity import Facility
from federica.federation.models import FederationPeer
from federica.substrate.models import BorderPort, ComputeHost, Device, PeerFacility, Pop, Port


def advertise(
    session: Session, facility: Facility, peer: FederationPeer, now: dt.datetime
) -> dict[str, Any]:
    shown = peer.pop_names
    pops = [
        p
        for p in session.scalars(select(Pop).order_by(Pop.name))
        if shown is None or p.name in shown
    ]
    names = {p.name for p in pops}
    hosts: dict[str, list[ComputeHost]] = defaultdict(list)
    for host in session.scalars(select(ComputeHost).options(selectinload(ComputeHost.pop))):
        if host.pop.name in names:
            hosts[host.pop.name].append(host)
    return {
        "version": API_VERSION,
        "facility": {"name": facility.name, "authority": facility.authority, "urn": facility.urn},
        "peer": peer.name,
        "form": peer.form.value,
        "operations": [op.value for op in peer.operations],
        "generated_at": now.isoformat(),
        "pops": [_pop(p, hosts[p.name]) for p in pops],
        "border_ports": _borders(session, peer, names),
    }


def _pop(pop: Pop, hosts: list[ComputeHost]) -> dict[str, Any]:
    classes: dict[tuple[int, int], int] = defaultdict(int)
    for h in hosts:
        classes[(h.cpu_cores, h.ram_mb)] += 1
    return {
        "name": pop.name,
        "country": pop.country,
        "role": pop.role.value,
        "vnode_classes": [
            {"class": f"{cores}c-{ram}m", "cpu_cores": cores, "ram_mb": ram, "count": n}
            for (cores, ram), n in sorted(classes.items())
        ],
        "capacity": {
            "vnodes": len(hosts),
            "cpu_cores": sum(h.cpu_cores for h in hosts),
            "ram_mb": sum(h.ram_mb for h in hosts),
        },
    }


def _borders(session: Session, peer: FederationPeer, pops: set[str]) -> list[dict[str, Any]]:
    """Only the border ports facing this peer (the topology's `peer:` names it), at the
    PoPs it may see: another peer's borders are not its business."""
    rows = session.execute(
        select(BorderPort, Port, Device, Pop)
        .join(Port, BorderPort.port_id == Port.id)
        .join(Device, Port.device_id == Device.id)
        .join(Pop, Device.pop_id == Pop.id)
        .join(PeerFacility, BorderPort.peer_id == PeerFacility.id)
        .where(PeerFacility.name == peer.name)
        .order_by(Device.name, Port.name)
    )
    remote = peer.border_map
    out = []
    for border, port, device, pop in rows:
        if pop.name not in pops:
            continue
        label = f"{device.name}:{port.name}"
        out.append(
            {
                "port": label,
                "pop": pop.name,
                "speed_mbps": port.speed_mbps,
                "vlans": {"min": border.vlan_min, "max": border.vlan_max},
                "peer_port": remote.get(label),
            }
        )
    return out
