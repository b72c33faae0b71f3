"""Pure graph facts about a topology: core mesh, reachability of every PoP."""

from __future__ import annotations

from itertools import combinations

import networkx as nx
from pydantic import BaseModel

from federica.substrate.models import PopRole
from federica.substrate.topology import Topology


class PopAttachment(BaseModel):
    pop: str
    role: PopRole
    neighbours: list[str]
    connected_to_core: bool


class Summary(BaseModel):
    pops: int
    core_pops: int
    devices: int
    links: int
    hosts: int
    core_links: int
    core_full_mesh: bool
    all_pops_connected: bool
    total_cpu_cores: int
    total_ram_mb: int
    attachments: list[PopAttachment]


def pop_graph(topo: Topology) -> nx.MultiGraph:
    """PoPs as nodes, one edge per physical link between devices of two PoPs."""
    device_pop = {d.name: d.pop for d in topo.devices}
    g = nx.MultiGraph()
    g.add_nodes_from(p.name for p in topo.pops)
    for link in topo.links:
        pa, pb = device_pop[link.a.device], device_pop[link.b.device]
        if pa != pb:
            g.add_edge(pa, pb, name=link.name, capacity_mbps=link.capacity_mbps)
    return g


def summarize(topo: Topology) -> Summary:
    g = pop_graph(topo)
    core = sorted(p.name for p in topo.pops if p.role is PopRole.CORE)
    core_set = set(core)
    core_links = sum(1 for a, b in g.edges() if a in core_set and b in core_set)
    full_mesh = all(g.has_edge(a, b) for a, b in combinations(core, 2))
    reachable: set[str] = set()
    for c in core:
        reachable |= nx.node_connected_component(g, c)
    attachments = [
        PopAttachment(
            pop=p.name,
            role=p.role,
            neighbours=sorted(set(g.neighbors(p.name))),
            connected_to_core=p.name in reachable,
        )
        for p in sorted(topo.pops, key=lambda p: p.name)
    ]
    return Summary(
        pops=len(topo.pops),
        core_pops=len(core),
        devices=len(topo.devices),
        links=len(topo.links),
        hosts=len(topo.hosts),
        core_links=core_links,
        core_full_mesh=bool(core) and full_mesh,
        all_pops_connected=bool(core) and all(a.connected_to_core for a in attachments),
        total_cpu_cores=sum(h.cpu_cores for h in topo.hosts),
        total_ram_mb=sum(h.ram_mb for h in topo.hosts),
        attachments=attachments,
    )
