"""Pure: how a topology becomes namespaces, interfaces and addresses.

Data plane model (see docs/emulator.md): each physical link (and each V-node uplink) is one
veth pair between two namespaces, with a /30 from 169.254.0.0/16 on its ends. "VLAN v on
that link" is a VXLAN device with VNI v over the pair (UDP port unique to the link), so
frames of different VLANs never mix, yet every frame really crosses the port's interface:
its counters and its admin state mean what they mean on a real port. (The kernel here has
no 802.1Q devices and no bridge VLAN filtering.)
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from federica.substrate.models import PortKind
from federica.substrate.topology import Topology

IFNAMSIZ = 15
UNDERLAY = ipaddress.ip_network("169.254.0.0/16")
VXLAN_PORT_BASE = 20000
UNDERLAY_MTU = 1550  # VXLAN adds 50 bytes; circuits keep a 1500-byte MTU
HOST_UPLINK_IF = "up0"
MAX_WIRES = UNDERLAY.num_addresses // 4


class PlanError(ValueError):
    pass


@dataclass(frozen=True)
class Underlay:
    """One end of a wire: what a VXLAN device on this port needs."""

    local_ip: str
    remote_ip: str
    vxlan_port: int
    peer: str  # "device:port" or "host:name", for people
    # A border port's: no known far end, so its VXLAN devices send to a multicast group
    # on the border segment (the emulated border link joins both facilities' ends).
    group: str = ""


@dataclass(frozen=True)
class PortPlan:
    name: str
    ifname: str
    kind: PortKind
    speed_mbps: int
    underlay: Underlay | None  # None: nothing plugged in


@dataclass(frozen=True)
class DevicePlan:
    name: str
    namespace: str
    mgmt_host: str
    netconf_port: int
    snmp_port: int
    vlan_translation: bool
    ports: list[PortPlan]

    def port(self, name: str) -> PortPlan:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(f"device {self.name!r} has no port {name!r}")

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DevicePlan:
        ports = [
            PortPlan(
                name=p["name"],
                ifname=p["ifname"],
                kind=PortKind(p["kind"]),
                speed_mbps=p["speed_mbps"],
                underlay=Underlay(**p["underlay"]) if p["underlay"] else None,
            )
            for p in data["ports"]
        ]
        return cls(**{**data, "ports": ports})


@dataclass(frozen=True)
class HostPlan:
    name: str
    namespace: str
    device: str
    port: str
    ifname: str
    underlay: Underlay

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostPlan:
        return cls(**{**data, "underlay": Underlay(**data["underlay"])})


@dataclass(frozen=True)
class Wire:
    """A veth pair: a_if in namespace a_ns, b_if in b_ns (b_ns None: a loose end)."""

    a_ns: str
    a_if: str
    b_ns: str
    b_if: str
    a_ip: str | None = None
    b_ip: str | None = None
    plugged: bool = True


@dataclass(frozen=True)
class FacilityPlan:
    prefix: str
    devices: list[DevicePlan]
    hosts: list[HostPlan]
    wires: list[Wire] = field(default_factory=list)

    def device(self, name: str) -> DevicePlan:
        for d in self.devices:
            if d.name == name:
                return d
        raise KeyError(f"no emulated device {name!r}")

    def host(self, name: str) -> HostPlan:
        for h in self.hosts:
            if h.name == name:
                return h
        raise KeyError(f"no emulated host {name!r}")

    @property
    def namespaces(self) -> list[str]:
        return [d.namespace for d in self.devices] + [h.namespace for h in self.hosts]


def port_ifname(port_name: str, index: int, taken: set[str]) -> str:
    """A kernel name for a port: its own name made legal if it leaves room for '.<vlan>'."""
    mangled = re.sub(r"[^A-Za-z0-9-]", "_", port_name)
    if len(mangled) <= IFNAMSIZ - 5 and mangled not in taken:
        return mangled
    return f"p{index}"


def vlan_ifname(port_ifname: str, vlan: int) -> str:
    name = f"{port_ifname}.{vlan}"
    assert len(name) <= IFNAMSIZ, name
    return name


def vxlan_add(name: str, vni: int, underlay: Underlay, dev: str) -> str:
    """The `ip` batch line making "VLAN vni on this wire": a VXLAN device over `dev`."""
    u = underlay
    far = f"group {u.group}" if u.group else f"remote {u.remote_ip}"
    return (
        f"link add name {name} mtu 1500 type vxlan id {vni} local {u.local_ip} "
        f"{far} dstport {u.vxlan_port} dev {dev}"
    )


# Border ports (kind border): "VLAN v at the border" is a VXLAN device with VNI v sent to
# this group on the border port's veth, UDP port BORDER_VXLAN_PORT + n for a device's n-th
# border port; its address comes from BORDER_UNDERLAY by a hash of (prefix, device, port),
# so two facilities planned apart agree on everything but their own addresses.
BORDER_GROUP = "239.254.0.1"
BORDER_VXLAN_PORT = 19000
BORDER_UNDERLAY = ipaddress.ip_network("169.254.240.0/20")


def border_underlay(prefix: str, device: str, port: str, n: int, peer: str) -> Underlay:
    digest = hashlib.sha256(f"{prefix}:{device}:{port}".encode()).digest()
    host = int.from_bytes(digest[:4], "big") % (BORDER_UNDERLAY.num_addresses - 2) + 1
    ip = str(BORDER_UNDERLAY.network_address + host)
    return Underlay(ip, "", BORDER_VXLAN_PORT + n, f"peer:{peer}", BORDER_GROUP)


def _wire_ips(index: int) -> tuple[str, str]:
    if index >= MAX_WIRES:
        raise PlanError(f"more than {MAX_WIRES} wires; the underlay range is exhausted")
    base = int(UNDERLAY.network_address) + 4 * index
    return str(ipaddress.ip_address(base + 1)), str(ipaddress.ip_address(base + 2))


def namespace_name(prefix: str, node: str) -> str:
    return f"{prefix}-{node}"


def plan_facility(topo: Topology, prefix: str) -> FacilityPlan:
    if not re.fullmatch(r"[a-z][a-z0-9]{0,11}", prefix):
        raise PlanError(f"emulator prefix {prefix!r}: 1-12 lowercase letters/digits")
    ifnames: dict[tuple[str, str], str] = {}
    for dev in topo.devices:
        taken: set[str] = set()
        for i, port in enumerate(dev.ports):
            name = port_ifname(port.name, i, taken)
            taken.add(name)
            ifnames[(dev.name, port.name)] = name

    underlays: dict[tuple[str, str], Underlay] = {}
    wires: list[Wire] = []
    index = 0
    for link in topo.links:
        a_ip, b_ip = _wire_ips(index)
        vport = VXLAN_PORT_BASE + index
        a, b = (link.a.device, link.a.port), (link.b.device, link.b.port)
        underlays[a] = Underlay(a_ip, b_ip, vport, f"{link.b.device}:{link.b.port}")
        underlays[b] = Underlay(b_ip, a_ip, vport, f"{link.a.device}:{link.a.port}")
        wires.append(
            Wire(
                namespace_name(prefix, a[0]),
                ifnames[a],
                namespace_name(prefix, b[0]),
                ifnames[b],
                a_ip,
                b_ip,
            )
        )
        index += 1

    hosts: list[HostPlan] = []
    for host in topo.hosts:
        a_ip, b_ip = _wire_ips(index)
        vport = VXLAN_PORT_BASE + index
        dev_end = (host.uplink.device, host.uplink.port)
        underlays[dev_end] = Underlay(a_ip, b_ip, vport, f"host:{host.name}")
        ns = namespace_name(prefix, host.name)
        hosts.append(
            HostPlan(
                name=host.name,
                namespace=ns,
                device=host.uplink.device,
                port=host.uplink.port,
                ifname=HOST_UPLINK_IF,
                underlay=Underlay(b_ip, a_ip, vport, f"{dev_end[0]}:{dev_end[1]}"),
            )
        )
        wires.append(
            Wire(
                namespace_name(prefix, dev_end[0]), ifnames[dev_end], ns, HOST_UPLINK_IF, a_ip, b_ip
            )
        )
        index += 1

    devices: list[DevicePlan] = []
    for dev in topo.devices:
        ns = namespace_name(prefix, dev.name)
        ports: list[PortPlan] = []
        borders = 0
        for i, port in enumerate(dev.ports):
            key = (dev.name, port.name)
            if port.kind is PortKind.BORDER and key not in underlays:
                u = border_underlay(prefix, dev.name, port.name, borders, port.peer or "")
                borders += 1
                ports.append(PortPlan(port.name, ifnames[key], port.kind, port.speed_mbps, u))
                # Its far end waits, down, for the border link (`demo --federation`).
                wires.append(Wire(ns, ifnames[key], ns, f"_n{i}", a_ip=u.local_ip, plugged=False))
                continue
            ports.append(
                PortPlan(port.name, ifnames[key], port.kind, port.speed_mbps, underlays.get(key))
            )
            if key not in underlays:
                # Nothing plugged in: the far end stays in the same namespace, down.
                wires.append(Wire(ns, ifnames[key], ns, f"_n{i}", plugged=False))
        devices.append(
            DevicePlan(
                name=dev.name,
                namespace=ns,
                mgmt_host=dev.management.host,
                netconf_port=dev.management.port,
                snmp_port=dev.management.port,
                vlan_translation=dev.vlan_translation,
                ports=ports,
            )
        )
    return FacilityPlan(prefix=prefix, devices=devices, hosts=hosts, wires=wires)
