"""Where a slice is measured: each circuit hop's device interface, each node's samples.

A hop (device, port, VLAN) is carried by the device's logical unit `<port>.<vlan>` (its
IF-MIB row, as on Junos; the emulated devices list one per VLAN a port carries), or by
the port itself when untagged. A hop without a link faces a V-node: what that interface
receives is what the slice's nodes sent into the circuit, what it sends is what the
circuit delivered to them ("edge" hops). A node is its V-node's driver id `s<slice>-<name>`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.monitoring.models import MonitoredInterface
from federica.slices.models import Slice, SliceCircuit
from federica.slices.provision import node_id
from federica.substrate.models import ComputeHost, Device, Port


@dataclass(frozen=True)
class HopInterface:
    device: str
    port: str
    vlan: int
    link: str | None
    interface: str  # the IF-MIB ifName that carries the hop
    interface_id: int | None  # its monitored row; None: not polled (yet)
    nodes: tuple[str, ...]  # on an edge hop: the slice's nodes behind it

    @property
    def edge(self) -> bool:
        return self.link is None


def unit_name(port: str, vlan: int) -> str:
    return f"{port}.{vlan}" if vlan else port


def circuit_interfaces(session: Session, sl: Slice, circuit: SliceCircuit) -> list[HopInterface]:
    hops = json.loads(circuit.mapping or "[]")
    wanted = {(h["device"], unit_name(h["port"], int(h["vlan"]))) for h in hops}
    ids: dict[tuple[str, str], int] = {}
    if wanted:
        rows = session.execute(
            select(Device.name, MonitoredInterface.name, MonitoredInterface.id)
            .join(Device, MonitoredInterface.device_id == Device.id)
            .where(Device.name.in_({d for d, _ in wanted}))
        )
        ids = {(d, n): i for d, n, i in rows if (d, n) in wanted}
    behind = _nodes_behind(session, sl)
    return [
        HopInterface(
            h["device"],
            h["port"],
            int(h["vlan"]),
            h.get("link"),
            unit_name(h["port"], int(h["vlan"])),
            ids.get((h["device"], unit_name(h["port"], int(h["vlan"])))),
            tuple(behind.get((h["device"], h["port"]), ())) if h.get("link") is None else (),
        )
        for h in hops
    ]


def _nodes_behind(session: Session, sl: Slice) -> dict[tuple[str, str], list[str]]:
    """(device, port) of each V-node's uplink -> the slice's nodes on that V-node."""
    host_ids = {n.host_id for n in sl.nodes}
    if not host_ids:
        return {}
    rows = session.execute(
        select(ComputeHost.id, Device.name, Port.name)
        .join(Port, ComputeHost.uplink_port_id == Port.id)
        .join(Device, Port.device_id == Device.id)
        .where(ComputeHost.id.in_(host_ids))
    )
    uplink = {hid: (dev, port) for hid, dev, port in rows}
    out: dict[tuple[str, str], list[str]] = {}
    for n in sorted(sl.nodes, key=lambda n: n.name):
        out.setdefault(uplink[n.host_id], []).append(n.name)
    return out


def driver_node(sl: Slice, name: str) -> str:
    return node_id(sl.id, name)
