"""The substrate drawings of the pages, from the database's topology: what a slice (or a
dry run) holds, and how free each link is over a window."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy.orm import Session

from federica.slices.availability import Availability
from federica.substrate.inventory import current_topology
from federica.substrate.topology import Topology
from federica.web.portal.drawing import Drawing, LinkEnds, draw, level


def _shape(topo: Topology) -> tuple[dict[str, tuple[float, float]], list[LinkEnds]]:
    pop_of = {d.name: d.pop for d in topo.devices}
    coords = {p.name: (p.location.lat, p.location.lon) for p in topo.pops}
    links = [LinkEnds(lk.name, pop_of[lk.a.device], pop_of[lk.b.device]) for lk in topo.links]
    return coords, links


def mapping(
    session: Session,
    placement: Mapping[str, str],
    circuits: Mapping[str, Iterable[Mapping[str, Any]]],
) -> Drawing:
    """Nodes by their V-node's PoP; each link a circuit crosses, with its VLAN tags."""
    topo = current_topology(session)
    coords, links = _shape(topo)
    host_pop = {h.name: h.pop for h in topo.hosts}
    at_pop: dict[str, list[str]] = defaultdict(list)
    for node, host in sorted(placement.items()):
        at_pop[host_pop.get(host, "?")].append(node)
    tags: dict[str, list[str]] = defaultdict(list)
    for name, hops in sorted(circuits.items()):
        for hop in hops:
            link = hop.get("link")
            label = f"{name}:{hop.get('vlan')}"
            if link and label not in tags[link]:
                tags[link].append(label)
    return draw(
        coords,
        links,
        pop_labels={p: ", ".join(n) for p, n in at_pop.items()},
        link_labels={lk: " ".join(t) for lk, t in tags.items()},
        used_links=tags,
    )


def free_capacity(session: Session, av: Availability) -> Drawing:
    coords, links = _shape(current_topology(session))
    levels = {
        lk.name: "down" if lk.blocked else level(lk.free_mbps, lk.capacity_mbps) for lk in av.links
    }
    labels = {lk.name: f"{lk.free_mbps}/{lk.capacity_mbps}" for lk in av.links}
    return draw(coords, links, link_labels=labels, levels=levels)
