"""Inventory service: apply a validated topology to the database, export it back.

Applying is a diff by natural key (names): unchanged rows are untouched, changed rows are
updated in place (their ids, which reservations reference, stay), and nothing in use is
removed. The caller owns the transaction; on any error nothing is applied.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

import yaml
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from federica import revision
from federica.errors import InUse, NotFound
from federica.substrate.models import (
    BorderPort,
    ComputeHost,
    Device,
    Link,
    PeerFacility,
    Pop,
    Port,
    PortKind,
)
from federica.substrate.topology import (
    DeviceSpec,
    HostSpec,
    LinkSpec,
    Location,
    Management,
    PeerSpec,
    PopSpec,
    PortRef,
    PortSpec,
    Topology,
    format_vlan_range,
    parse_vlan_range,
)
from federica.substrate.usage import Resource, users_of

Action = Literal["create", "update", "remove"]


class Change(BaseModel):
    kind: Resource
    name: str
    action: Action
    fields: list[str] = []

    def __str__(self) -> str:
        detail = f" ({', '.join(self.fields)})" if self.fields else ""
        return f"{self.action} {self.kind.value} {self.name}{detail}"


class LoadReport(BaseModel):
    changes: list[Change] = []

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.changes:
            out[c.action] = out.get(c.action, 0) + 1
        return out


def _vlans(text: str) -> tuple[int, int]:
    parsed = parse_vlan_range(text)
    assert parsed is not None, "topology was validated"
    return parsed


class _Applier:
    def __init__(self, session: Session) -> None:
        self.s = session
        self.report = LoadReport()

    def set(self, obj: Any, values: dict[str, Any], kind: Resource, name: str) -> None:
        changed = [k for k, v in values.items() if getattr(obj, k) != v]
        for k in changed:
            setattr(obj, k, values[k])
        if changed and obj in self.s and obj not in self.s.new:
            self.report.changes.append(
                Change(kind=kind, name=name, action="update", fields=changed)
            )

    def created(self, kind: Resource, name: str) -> None:
        self.report.changes.append(Change(kind=kind, name=name, action="create"))

    def removed(self, kind: Resource, names: Iterable[str]) -> None:
        for n in sorted(names):
            self.report.changes.append(Change(kind=kind, name=n, action="remove"))


def apply_topology(session: Session, topo: Topology) -> LoadReport:
    """Make the database's substrate equal to `topo`. Raises InUse before changing anything
    if something to be removed is in use."""
    a = _Applier(session)
    peers = {p.name: p for p in session.scalars(select(PeerFacility))}
    pops = {p.name: p for p in session.scalars(select(Pop))}
    devices = {
        d.name: d for d in session.scalars(select(Device).options(selectinload(Device.ports)))
    }
    links = {link.name: link for link in session.scalars(select(Link))}
    hosts = {h.name: h for h in session.scalars(select(ComputeHost))}

    wanted_ports = {(d.name, p.name) for d in topo.devices for p in d.ports}
    gone: dict[Resource, list[Any]] = {
        Resource.PEER: [v for k, v in peers.items() if k not in {p.name for p in topo.peers}],
        Resource.POP: [v for k, v in pops.items() if k not in {p.name for p in topo.pops}],
        Resource.DEVICE: [v for k, v in devices.items() if k not in {d.name for d in topo.devices}],
        Resource.PORT: [
            p for d in devices.values() for p in d.ports if (d.name, p.name) not in wanted_ports
        ],
        Resource.LINK: [v for k, v in links.items() if k not in {x.name for x in topo.links}],
        Resource.HOST: [v for k, v in hosts.items() if k not in {h.name for h in topo.hosts}],
    }
    gone_names = {kind: sorted(_name(row) for row in rows) for kind, rows in gone.items()}
    in_use: list[str] = []
    for kind, rows in gone.items():
        in_use.extend(users_of(session, kind, [row.id for row in rows]))
    if in_use:
        raise InUse(
            "the topology removes resources that are in use: " + "; ".join(in_use), users=in_use
        )

    # Links and hosts go first: they hold the ports other rows may still reference.
    for kind in (Resource.LINK, Resource.HOST):
        for row in gone[kind]:
            session.delete(row)
        a.removed(kind, gone_names[kind])
    session.flush()

    for spec in topo.peers:
        peer = peers.get(spec.name)
        if peer is None:
            peer = peers[spec.name] = PeerFacility(name=spec.name)
            session.add(peer)
            a.created(Resource.PEER, spec.name)
        a.set(peer, {"description": spec.description}, Resource.PEER, spec.name)

    for pspec in topo.pops:
        pop = pops.get(pspec.name)
        if pop is None:
            pop = pops[pspec.name] = Pop(name=pspec.name)
            session.add(pop)
            a.created(Resource.POP, pspec.name)
        a.set(
            pop,
            {
                "country": pspec.country,
                "role": pspec.role,
                "site": pspec.site,
                "latitude": pspec.location.lat,
                "longitude": pspec.location.lon,
            },
            Resource.POP,
            pspec.name,
        )
    session.flush()

    port_rows: dict[tuple[str, str], Port] = {}
    for dspec in topo.devices:
        dev = devices.get(dspec.name)
        if dev is None:
            dev = devices[dspec.name] = Device(name=dspec.name)
            session.add(dev)
            a.created(Resource.DEVICE, dspec.name)
        values: dict[str, Any] = {
            "pop": pops[dspec.pop],
            "kind": dspec.kind,
            "model": dspec.model,
            "driver": dspec.driver,
            "mgmt_host": dspec.management.host,
            "netconf_port": dspec.management.port,
            "credentials_ref": dspec.credentials,
            "vlan_translation": dspec.vlan_translation,
        }
        # A file without host_key keeps the fingerprint recorded earlier (e.g. by the emulator).
        if dspec.host_key is not None:
            values["host_key_fingerprint"] = dspec.host_key
        a.set(dev, values, Resource.DEVICE, dspec.name)
        existing_ports = {p.name: p for p in dev.ports}
        for port_spec in dspec.ports:
            label = f"{dspec.name}:{port_spec.name}"
            port = existing_ports.get(port_spec.name)
            if port is None:
                port = Port(name=port_spec.name)
                dev.ports.append(port)
                a.created(Resource.PORT, label)
            a.set(
                port,
                {
                    "speed_mbps": port_spec.speed_mbps,
                    "kind": port_spec.kind,
                    "description": port_spec.description,
                },
                Resource.PORT,
                label,
            )
            _apply_border(a, port, port_spec, peers, label)
            port_rows[(dspec.name, port_spec.name)] = port
    session.flush()

    for lspec in topo.links:
        link = links.get(lspec.name)
        if link is None:
            link = links[lspec.name] = Link(name=lspec.name)
            session.add(link)
            a.created(Resource.LINK, lspec.name)
        lo, hi = _vlans(lspec.vlans)
        a.set(
            link,
            {
                "port_a": port_rows[(lspec.a.device, lspec.a.port)],
                "port_b": port_rows[(lspec.b.device, lspec.b.port)],
                "capacity_mbps": lspec.capacity_mbps,
                "vlan_min": lo,
                "vlan_max": hi,
            },
            Resource.LINK,
            lspec.name,
        )
    for hspec in topo.hosts:
        host = hosts.get(hspec.name)
        if host is None:
            host = hosts[hspec.name] = ComputeHost(name=hspec.name)
            session.add(host)
            a.created(Resource.HOST, hspec.name)
        a.set(
            host,
            {
                "pop": pops[hspec.pop],
                "uplink": port_rows[(hspec.uplink.device, hspec.uplink.port)],
                "cpu_cores": hspec.cpu_cores,
                "ram_mb": hspec.ram_mb,
                "driver": hspec.driver,
            },
            Resource.HOST,
            hspec.name,
        )
    session.flush()

    # Now nothing references what is left over.
    for port in gone[Resource.PORT]:
        assert isinstance(port, Port)
        if port.device not in gone[Resource.DEVICE]:
            port.device.ports.remove(port)
    a.removed(Resource.PORT, gone_names[Resource.PORT])
    session.flush()
    for kind in (Resource.DEVICE, Resource.POP, Resource.PEER):
        for row in gone[kind]:
            session.delete(row)
        a.removed(kind, gone_names[kind])
        session.flush()
    if a.report.changed:
        revision.bump(session, revision.SUBSTRATE)
    return a.report


def _name(row: Any) -> str:
    return row.label if isinstance(row, Port) else str(row.name)


def _apply_border(
    a: _Applier, port: Port, spec: PortSpec, peers: dict[str, PeerFacility], label: str
) -> None:
    if spec.kind is not PortKind.BORDER:
        if port.border is not None:
            port.border = None
        return
    assert spec.peer is not None and spec.vlans is not None, "topology was validated"
    lo, hi = _vlans(spec.vlans)
    if port.border is None:
        port.border = BorderPort(
            peer=peers[spec.peer], vlan_min=lo, vlan_max=hi, translate=bool(spec.translate)
        )
        return
    a.set(
        port.border,
        {
            "peer": peers[spec.peer],
            "vlan_min": lo,
            "vlan_max": hi,
            "translate": bool(spec.translate),
        },
        Resource.PORT,
        label,
    )


def current_topology(session: Session) -> Topology:
    """The database's substrate in the topology-file model (what `export` writes)."""
    pops = session.scalars(select(Pop).order_by(Pop.name)).all()
    devices = session.scalars(
        select(Device)
        .options(selectinload(Device.ports).selectinload(Port.border).selectinload(BorderPort.peer))
        .order_by(Device.name)
    ).all()
    links = session.scalars(
        select(Link)
        .options(
            selectinload(Link.port_a).selectinload(Port.device),
            selectinload(Link.port_b).selectinload(Port.device),
        )
        .order_by(Link.name)
    ).all()
    hosts = session.scalars(
        select(ComputeHost)
        .options(
            selectinload(ComputeHost.uplink).selectinload(Port.device),
            selectinload(ComputeHost.pop),
        )
        .order_by(ComputeHost.name)
    ).all()
    peers = session.scalars(select(PeerFacility).order_by(PeerFacility.name)).all()
    return Topology(
        peers=[PeerSpec(name=p.name, description=p.description) for p in peers],
        pops=[
            PopSpec(
                name=p.name,
                country=p.country,
                role=p.role,
                site=p.site,
                location=Location(lat=p.latitude, lon=p.longitude),
            )
            for p in pops
        ],
        devices=[_device_spec(d) for d in devices],
        links=[
            LinkSpec(
                name=link.name,
                a=PortRef(device=link.port_a.device.name, port=link.port_a.name),
                b=PortRef(device=link.port_b.device.name, port=link.port_b.name),
                capacity_mbps=link.capacity_mbps,
                vlans=format_vlan_range(link.vlan_min, link.vlan_max),
            )
            for link in links
        ],
        hosts=[
            HostSpec(
                name=h.name,
                pop=h.pop.name,
                uplink=PortRef(device=h.uplink.device.name, port=h.uplink.name),
                cpu_cores=h.cpu_cores,
                ram_mb=h.ram_mb,
                driver=h.driver,
            )
            for h in hosts
        ],
    )


def _device_spec(d: Device) -> DeviceSpec:
    return DeviceSpec(
        name=d.name,
        pop=d.pop.name,
        kind=d.kind,
        model=d.model,
        driver=d.driver,
        management=Management(host=d.mgmt_host, port=d.netconf_port),
        host_key=d.host_key_fingerprint,
        credentials=d.credentials_ref,
        vlan_translation=d.vlan_translation,
        ports=[
            PortSpec(
                name=p.name,
                speed_mbps=p.speed_mbps,
                kind=p.kind,
                description=p.description,
                peer=p.border.peer.name if p.border else None,
                vlans=format_vlan_range(p.border.vlan_min, p.border.vlan_max) if p.border else None,
                translate=(p.border.translate or None) if p.border else None,
            )
            for p in d.ports
        ],
    )


def topology_to_data(topo: Topology) -> dict[str, Any]:
    return topo.model_dump(mode="json", exclude_none=True)


def topology_to_yaml(topo: Topology) -> str:
    return yaml.safe_dump(topology_to_data(topo), sort_keys=False, allow_unicode=True)


def record_host_key(session: Session, device_name: str, fingerprint: str) -> None:
    """Store a device's SSH host-key fingerprint (the emulator calls this after `up`)."""
    dev = session.scalar(select(Device).where(Device.name == device_name))
    if dev is None:
        raise NotFound(f"device {device_name!r} is not in the inventory")
    dev.host_key_fingerprint = fingerprint
