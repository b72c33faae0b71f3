"""The datastore's /info objects, built from the database as a viewer may see them.

Every object carries `$schema`, `id`, `selfRef`, `urn` (where its type has one) and `ts`
(integer µs since the epoch: when the record last changed, or now for what is computed at
each request), and links its neighbours by their `href` (their selfRef). Services: they
read the database; an object the viewer may not see is "not found", as if it did not exist.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica import inputs
from federica.aaa.models import Membership, Project, User
from federica.errors import Forbidden, NotFound
from federica.gmoc import metrics, resources
from federica.gmoc.access import Viewer
from federica.gmoc.naming import INFO_TYPES, MONITORING_VERSION, SCHEMA_VERSION, Site, split_prefix
from federica.gmoc.query import MAX_ID_LENGTH
from federica.monitoring.rollup import EPOCH
from federica.slices.models import Slice
from federica.substrate.models import ComputeHost, Device, Link, Port

Obj = dict[str, Any]
VIRTUALIZATION = {"libvirt": "kvm"}


def us(at: dt.datetime) -> int:
    """Integer microseconds since the epoch of an aware time: exact (no float on the way)
    and, without timedelta division, fast (a series has many points)."""
    d = at - EPOCH
    return (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds


def _head(site: Site, kind: str, obj_id: str, urn: str | None, ts: dt.datetime) -> Obj:
    head: Obj = {
        "$schema": site.schema(kind),
        "id": obj_id,
        "selfRef": site.href(kind, obj_id),
    }
    if urn is not None:
        head["urn"] = urn
    head["ts"] = us(ts)
    return head


def ref(site: Site, kind: str, obj_id: str, urn: str) -> Obj:
    return {"urn": urn, "href": site.href(kind, obj_id)}


def get(
    session: Session, site: Site, viewer: Viewer, kind: str, obj_id: str, now: dt.datetime
) -> Obj:
    """GET /info/<kind>/<id>."""
    if kind not in INFO_TYPES:
        raise NotFound(f"no object type {kind!r}; the datastore serves {', '.join(INFO_TYPES)}")
    if len(obj_id) > MAX_ID_LENGTH or inputs.text_problem(obj_id):
        raise NotFound(f"no {kind} with such an id")
    builder = _BUILDERS[kind]
    obj = builder(session, site, viewer, obj_id, now)
    if obj is None:
        raise NotFound(f"no {kind} {obj_id!r}")
    return obj


# The aggregate, its authority and the discovery document.


def aggregate(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> Obj | None:
    if obj_id != site.name:
        return None
    period = site.period_s
    res: list[Obj] = []
    for d in session.scalars(select(Device).order_by(Device.name)):
        res.append(
            {
                "resource_type": "node",
                **ref(site, "node", site.node_id(d.name), site.node_urn(d.name)),
            }
        )
    for h in session.scalars(select(ComputeHost).order_by(ComputeHost.name)):
        res.append(
            {
                "resource_type": "node",
                **ref(site, "node", site.node_id(h.name), site.node_urn(h.name)),
            }
        )
    for link in session.scalars(select(Link).order_by(Link.name)):
        res.append(
            {
                "resource_type": "link",
                **ref(site, "link", site.link_id(link.name), site.link_urn(link.name)),
            }
        )
    slices = resources.visible_slices(session, viewer, now)
    for sl in slices:
        for c in sl.circuits:
            name = site.circuit_name(sl.id, c.name)
            res.append(
                {
                    "resource_type": "link",
                    **ref(site, "link", site.link_id(name), site.link_urn(name)),
                }
            )
    return {
        **_head(site, "aggregate", site.name, site.aggregate_urn, now),
        "measRef": site.measref,
        "monitoring_version": MONITORING_VERSION,
        "operational_status": "production",
        "resources": res,
        "slivers": [
            ref(site, "sliver", site.sliver_id(sl.id), site.sliver_urn(sl.id))
            for sl in slices
            if sl.status in resources.LIVE
        ],
        "reported_metrics": [
            {"metric": m.name, "period": period} for m in metrics.BY_TYPE["aggregate"]
        ],
    }


def authority(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> Obj | None:
    if obj_id != site.authority:
        return None
    slices = [
        s for s in resources.visible_slices(session, viewer, now) if s.status in resources.LIVE
    ]
    obj: Obj = {
        **_head(site, "authority", site.authority, site.authority_urn, now),
        "name": site.name,
        "monitoring_version": MONITORING_VERSION,
    }
    if viewer.users:
        obj["users"] = [
            ref(site, "user", site.user_id(u.username), site.user_urn(u.username))
            for u in session.scalars(select(User).where(User.active).order_by(User.username))
        ]
    obj["slices"] = [
        ref(site, "slice", site.slice_id(sl.id), site.slice_urn(sl.project, sl.name))
        for sl in slices
    ]
    return obj


def opsconfig(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> Obj | None:
    if obj_id != site.name:
        return None
    events = {
        kind: [
            {"name": m.name, "id": "varchar", "ts": "int8", "v": "float8", "units": m.units}
            for m in ms
        ]
        for kind, ms in metrics.BY_TYPE.items()
    }
    events["experiment"] = []
    return {
        **_head(site, "opsconfig", site.name, None, now),
        "version": SCHEMA_VERSION,
        "aggregatestores": [
            {
                "urn": site.aggregate_urn,
                "amtype": "federica",
                "href": site.href("aggregate", site.name),
            }
        ],
        "externalcheckstores": [],
        "authorities": [
            {"urn": site.authority_urn, "href": site.href("authority", site.authority)}
        ],
        "info": [
            {
                "name": kind,
                "db_schema": [
                    ["$schema", "varchar"],
                    ["id", "varchar"],
                    ["selfRef", "varchar"],
                    ["urn", "varchar"],
                    ["ts", "int8"],
                ],
            }
            for kind in INFO_TYPES
            if kind != "opsconfig"
        ],
        "events": events,
    }


# The facility's nodes, interfaces and links.


def node(session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime) -> Obj | None:
    name = split_prefix(site, "node", obj_id)
    if name is None:
        return None
    device = session.scalar(select(Device).where(Device.name == name))
    if device is not None:
        return {
            **_head(site, "node", obj_id, site.node_urn(name), device.updated_at),
            "name": device.name,
            "description": device.model,
            "location": _location(device.pop),
            "properties": {"pop": device.pop.name, "kind": device.kind.value},
            "node_type": "switch",
            "interfaces": [
                ref(
                    site,
                    "interface",
                    site.interface_id(name, p.name),
                    site.interface_urn(name, p.name),
                )
                for p in device.ports
            ],
            "reported_metrics": [{"metric": metrics.AVAILABLE.name, "period": site.period_s}],
        }
    host = session.scalar(select(ComputeHost).where(ComputeHost.name == name))
    if host is None:
        return None
    obj = {
        **_head(site, "node", obj_id, site.node_urn(name), host.updated_at),
        "name": host.name,
        "location": _location(host.pop),
        "properties": {
            "pop": host.pop.name,
            "cpu_cores": host.cpu_cores,
            "uplink": ref(
                site,
                "interface",
                site.interface_id(host.uplink.device.name, host.uplink.name),
                site.interface_urn(host.uplink.device.name, host.uplink.name),
            ),
        },
        "node_type": "server",
        "ops_monitoring:mem_total_kb": host.ram_mb * 1024,
        # Its slice nodes' CPU and memory, as the poller samples them (gmoc/nodestats.py).
        "reported_metrics": [
            {"metric": m.name, "period": site.period_s} for m in metrics.BY_TYPE["node"]
        ],
    }
    if host.driver in VIRTUALIZATION:
        obj["virtualization_type"] = VIRTUALIZATION[host.driver]
    return obj


def _location(pop: Any) -> Obj:
    loc: Obj = {"country": pop.country, "latitude": pop.latitude, "longitude": pop.longitude}
    if pop.site:
        loc["institution"] = pop.site
    return loc


def _split_port(site: Site, obj_id: str) -> tuple[str, str] | None:
    name = split_prefix(site, "interface", obj_id)
    if name is None or ":" not in name:
        return None
    device, _, port = name.partition(":")
    return device, port


def interface(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> Obj | None:
    parts = _split_port(site, obj_id)
    if parts is None:
        return None
    port = resources.port_by_name(session, *parts)
    if port is None:
        return None
    device = port.device.name
    return {
        **_head(site, "interface", obj_id, site.interface_urn(device, port.name), port.updated_at),
        "name": port.name,
        "description": port.description,
        "properties": {
            "node": ref(site, "node", site.node_id(device), site.node_urn(device)),
            "kind": port.kind.value,
        },
        "ops_monitoring:role": "experimental",
        "ops_monitoring:max_bps": port.speed_mbps * 1_000_000,
    }


def split_vlan(site: Site, obj_id: str) -> tuple[str, str, int] | None:
    base, sep, tag = obj_id.rpartition(":")
    parts = _split_port(site, base) if sep else None
    if parts is None or not tag.isdigit() or not 1 <= int(tag) <= 4094:
        return None
    return parts[0], parts[1], int(tag)


def visible_vlan(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> tuple[Port, int, list[resources.VlanUse]] | None:
    """The port and tag of a per-VLAN interface some slice the viewer sees holds, and
    those holdings (when its traffic is theirs)."""
    parts = split_vlan(site, obj_id)
    if parts is None:
        return None
    port = resources.port_by_name(session, parts[0], parts[1])
    if port is None:
        return None
    slices = resources.visible_slices(session, viewer, now)
    uses = [
        u
        for u in resources.vlan_uses(session, [s.id for s in slices])
        if u.port_id == port.id and u.tag == parts[2]
    ]
    return (port, parts[2], uses) if uses else None


def interfacevlan(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> Obj | None:
    found = visible_vlan(session, site, viewer, obj_id, now)
    if found is None:
        return None
    port, tag, uses = found
    device = port.device.name
    latest = max(u.start for u in uses)
    return {
        **_head(site, "interfacevlan", obj_id, site.vlan_urn(device, port.name, tag), latest),
        "tag": tag,
        "interface": ref(
            site,
            "interface",
            site.interface_id(device, port.name),
            site.interface_urn(device, port.name),
        ),
    }


def link(session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime) -> Obj | None:
    name = split_prefix(site, "link", obj_id)
    if name is None:
        return None
    row = session.scalar(select(Link).where(Link.name == name))
    if row is not None:
        return {
            **_head(site, "link", obj_id, site.link_urn(name), row.updated_at),
            "name": row.name,
            "properties": {"capacity_mbps": row.capacity_mbps},
            "layer": "physical",
            "endpoints": [
                ref(
                    site,
                    "interface",
                    site.interface_id(p.device.name, p.name),
                    site.interface_urn(p.device.name, p.name),
                )
                for p in (row.port_a, row.port_b)
            ],
        }
    return _circuit(session, site, viewer, obj_id, name, now)


def _circuit(
    session: Session, site: Site, viewer: Viewer, obj_id: str, name: str, now: dt.datetime
) -> Obj | None:
    """A slice's circuit: a layer-2 link between the per-VLAN interfaces it crosses."""
    for sl in resources.visible_slices(session, viewer, now):
        for c in sl.circuits:
            if site.circuit_name(sl.id, c.name) != name:
                continue
            ends: list[Obj] = []
            for hop in json.loads(c.mapping):
                end = ref(
                    site,
                    "interfacevlan",
                    site.vlan_id(hop["device"], hop["port"], hop["vlan"]),
                    site.vlan_urn(hop["device"], hop["port"], hop["vlan"]),
                )
                if end not in ends:
                    ends.append(end)
            return {
                **_head(site, "link", obj_id, site.link_urn(name), sl.created_at),
                "name": c.name,
                "description": f"circuit {c.name!r} of slice {sl.name!r}",
                "properties": {
                    "bandwidth_mbps": c.bandwidth_mbps,
                    "slice": ref(
                        site, "slice", site.slice_id(sl.id), site.slice_urn(sl.project, sl.name)
                    ),
                },
                "layer": "L2",
                "endpoints": ends,
            }
    return None


# Slices, slivers, users.


def _slice(
    session: Session, viewer: Viewer, site: Site, kind: str, obj_id: str, now: dt.datetime
) -> Slice | None:
    key = split_prefix(site, kind, obj_id)
    if key is None or not key.isdigit() or len(key) > 18:
        return None
    sl = session.get(Slice, int(key))
    if sl is None or not viewer.sees_slice(sl.project, sl.owner_id):
        return None
    return sl


def slice_(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> Obj | None:
    sl = _slice(session, viewer, site, "slice", obj_id, now)
    if sl is None:
        return None
    members: list[Obj] = []
    if sl.owner is not None:
        members.append(
            {
                **ref(
                    site, "user", site.user_id(sl.owner.username), site.user_urn(sl.owner.username)
                ),
                "role": "owner",
            }
        )
    if sl.project is not None:
        rows = session.execute(
            select(User.username, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .join(Project, Project.id == Membership.project_id)
            .where(Project.name == sl.project)
            .order_by(User.username)
        )
        for username, role in rows:
            if sl.owner is None or username != sl.owner.username:
                members.append(
                    {
                        **ref(site, "user", site.user_id(username), site.user_urn(username)),
                        "role": role.value,
                    }
                )
    return {
        **_head(site, "slice", obj_id, site.slice_urn(sl.project, sl.name), sl.created_at),
        "name": sl.name,
        "description": sl.description,
        "status": sl.status.value,
        "uuid": site.uuid("slice", sl.id),
        "authority": {"urn": site.authority_urn, "href": site.href("authority", site.authority)},
        "created": us(sl.created_at),
        "expires": us(sl.end),
        "members": members,
    }


def sliver(
    session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime
) -> Obj | None:
    sl = _slice(session, viewer, site, "sliver", obj_id, now)
    if sl is None:
        return None
    res: list[Obj] = []
    for host in sorted({n.host.name for n in sl.nodes}):
        res.append(
            {"resource_type": "node", **ref(site, "node", site.node_id(host), site.node_urn(host))}
        )
    for c in sl.circuits:
        name = site.circuit_name(sl.id, c.name)
        res.append(
            {"resource_type": "link", **ref(site, "link", site.link_id(name), site.link_urn(name))}
        )
    if not res:
        return None  # a slice holding nothing here has no sliver here
    obj: Obj = {
        **_head(site, "sliver", obj_id, site.sliver_urn(sl.id), sl.created_at),
        "status": sl.status.value,
        "uuid": site.uuid("sliver", sl.id),
        "aggregate": {"urn": site.aggregate_urn, "href": site.href("aggregate", site.name)},
        "slice_urn": site.slice_urn(sl.project, sl.name),
        "slice_uuid": site.uuid("slice", sl.id),
    }
    if sl.owner is not None:
        obj["creator"] = site.user_urn(sl.owner.username)
    obj.update({"created": us(sl.created_at), "expires": us(sl.end), "resources": res})
    return obj


def user(session: Session, site: Site, viewer: Viewer, obj_id: str, now: dt.datetime) -> Obj | None:
    if not viewer.users:
        raise Forbidden("user objects are only for collectors registered to receive them")
    name = split_prefix(site, "user", obj_id)
    row = session.scalar(select(User).where(User.username == name)) if name else None
    if row is None:
        return None
    return {
        **_head(site, "user", obj_id, site.user_urn(row.username), row.created_at),
        "authority": {"urn": site.authority_urn, "href": site.href("authority", site.authority)},
        "fullname": row.display_name or row.username,
        "email": row.email,
    }


_BUILDERS = {
    "aggregate": aggregate,
    "authority": authority,
    "opsconfig": opsconfig,
    "node": node,
    "interface": interface,
    "interfacevlan": interfacevlan,
    "link": link,
    "slice": slice_,
    "sliver": sliver,
    "user": user,
}
