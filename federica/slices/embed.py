"""Embedding a slice request onto the substrate. Pure: no I/O.

The input is a `SubstrateView`: what is free over the requested window (the caller
computes it from reservations). The classic baseline is implemented here — node ranking
(free CPU times free bandwidth around the host) + k-shortest-path routing with unsplittable
bandwidth, multipoint circuits as Steiner trees — behind the small `Embedder` interface,
so a better algorithm can replace it. Failures say which constraint failed where.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import networkx as nx
from networkx.algorithms.approximation import steiner_tree

from federica.errors import FedericaError, FieldError
from federica.slices.request import CircuitRequest, NodeRequest, SliceRequest
from federica.substrate.topology import Topology, parse_vlan_range

K_PATHS = 10


@dataclass(frozen=True)
class HostCap:
    name: str
    pop: str
    device: str  # the device its uplink port is on
    port: str  # the uplink port
    cpu_free: int
    ram_free_mb: int
    uplink_bw_free: int
    uplink_vlans_free: frozenset[int]


@dataclass(frozen=True)
class LinkCap:
    name: str
    a_device: str
    a_port: str
    b_device: str
    b_port: str
    bw_free: int
    vlans_free: frozenset[int]


@dataclass(frozen=True)
class SubstrateView:
    hosts: Mapping[str, HostCap]
    links: Sequence[LinkCap]
    translating: frozenset[str]  # devices that may rewrite VLAN tags
    pops_of_devices: Mapping[str, str]
    window_label: str = ""  # "2026-12-01 09:00 to 12:00 UTC", for messages


@dataclass(frozen=True)
class Hop:
    """One physical link (or a host uplink, `link` None) a circuit crosses, with its tag."""

    device: str
    port: str
    vlan: int
    link: str | None = None


@dataclass
class CircuitMapping:
    name: str
    bandwidth_mbps: int
    hops: list[Hop] = field(default_factory=list)  # every (device, port, vlan) it uses

    def attachments_by_device(self) -> dict[str, list[tuple[str, int]]]:
        out: dict[str, list[tuple[str, int]]] = {}
        for h in self.hops:
            out.setdefault(h.device, []).append((h.port, h.vlan))
        return out


@dataclass
class Embedding:
    placement: dict[str, str]  # node -> host
    circuits: dict[str, CircuitMapping]


class EmbeddingFailed(FedericaError):
    """The request is well-formed but does not fit; each reason names the part."""

    status = 409
    title = "Does not fit"
    type_slug = "does-not-fit"

    def __init__(self, reasons: list[FieldError]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(str(r) for r in reasons), errors=[r.as_dict() for r in reasons])


class Embedder(Protocol):
    def embed(self, request: SliceRequest, view: SubstrateView) -> Embedding: ...


class _State:
    """What is still free while one request is being embedded."""

    def __init__(self, view: SubstrateView) -> None:
        self.view = view
        self.cpu = {h: c.cpu_free for h, c in view.hosts.items()}
        self.ram = {h: c.ram_free_mb for h, c in view.hosts.items()}
        self.uplink_bw = {h: c.uplink_bw_free for h, c in view.hosts.items()}
        self.uplink_vlans = {h: set(c.uplink_vlans_free) for h, c in view.hosts.items()}
        self.graph = nx.MultiGraph()
        for link in view.links:
            self.graph.add_edge(
                link.a_device,
                link.b_device,
                key=link.name,
                link=link,
                bw=link.bw_free,
                vlans=set(link.vlans_free),
            )
        for c in view.hosts.values():
            self.graph.add_node(c.device)

    def simple(self, bw: int) -> nx.Graph:
        """Devices joined where some parallel link still has `bw` free (the widest kept)."""
        g = nx.Graph()
        g.add_nodes_from(self.graph.nodes)
        for a, b, data in self.graph.edges(data=True):
            usable = data["bw"] >= bw and data["vlans"]
            if usable and (not g.has_edge(a, b) or g[a][b]["bw"] < data["bw"]):
                g.add_edge(a, b, bw=data["bw"], key=data["link"].name)
        return g

    def widest(self, a: str, b: str) -> int:
        """The most bandwidth free on any path between two devices (bottleneck path)."""
        g = self.simple(1)
        if a == b:
            return 10**9
        if not (a in g and b in g and nx.has_path(g, a, b)):
            return 0
        tree = nx.maximum_spanning_tree(g, weight="bw")
        path = nx.shortest_path(tree, a, b)
        return min(int(tree[u][v]["bw"]) for u, v in itertools.pairwise(path))


class RankedKShortest:
    """Node ranking + k-shortest paths: the classic baseline."""

    def embed(self, request: SliceRequest, view: SubstrateView) -> Embedding:
        state = _State(view)
        placement, reasons = self._place(request, state)
        if reasons:
            raise EmbeddingFailed(reasons)
        circuits: dict[str, CircuitMapping] = {}
        order = sorted(enumerate(request.circuits), key=lambda ic: -ic[1].bandwidth_mbps)
        for i, c in order:
            mapping, reason = self._route(i, c, placement, state)
            if reason is not None:
                reasons.append(reason)
            elif mapping is not None:
                circuits[c.name] = mapping
        if reasons:
            raise EmbeddingFailed(sorted(reasons, key=lambda r: r.field))
        return Embedding(placement=placement, circuits=circuits)

    # -- nodes -------------------------------------------------------------------------
    def _place(
        self, request: SliceRequest, state: _State
    ) -> tuple[dict[str, str], list[FieldError]]:
        bw_need = {n.name: 0 for n in request.nodes}
        for c in request.circuits:
            for e in c.endpoints:
                if e in bw_need:
                    bw_need[e] += c.bandwidth_mbps
        placement: dict[str, str] = {}
        reasons: list[FieldError] = []
        index = {n.name: i for i, n in enumerate(request.nodes)}
        # Hardest first: pinned, then biggest.
        nodes = sorted(
            request.nodes, key=lambda n: (n.pop is None, -n.vcpu, -n.ram_mb, -bw_need[n.name])
        )
        for node in nodes:
            # Prefer a V-node whose uplink can carry the node's circuits; if none can, place
            # it anyway (CPU/RAM permitting) so routing blames the circuit that is too big.
            host = self._best_host(node, bw_need[node.name], state) or self._best_host(
                node, 0, state
            )
            if host is None:
                reasons.append(
                    FieldError(
                        f"nodes[{index[node.name]}]",
                        self._why_no_host(node, bw_need[node.name], state),
                    )
                )
                continue
            placement[node.name] = host
            state.cpu[host] -= node.vcpu
            state.ram[host] -= node.ram_mb
        return placement, reasons

    def _best_host(self, node: NodeRequest, bw: int, state: _State) -> str | None:
        best, best_rank = None, -1.0
        for name, cap in sorted(state.view.hosts.items()):
            if node.pop is not None and cap.pop != node.pop:
                continue
            if state.cpu[name] < node.vcpu or state.ram[name] < node.ram_mb:
                continue
            if state.uplink_bw[name] < bw and bw > 0:
                continue
            around = state.uplink_bw[name] + sum(
                d["bw"] for _, _, d in state.graph.edges(cap.device, data=True)
            )
            rank = state.cpu[name] * (1 + around)
            if rank > best_rank:
                best, best_rank = name, rank
        return best

    def _why_no_host(self, node: NodeRequest, bw: int, state: _State) -> str:
        hosts = [h for h, c in state.view.hosts.items() if node.pop in (None, c.pop)]
        where = f"at PoP {node.pop}" if node.pop else "anywhere"
        if not hosts:
            return f"node {node.name}: no V-node {where}"
        cpu = max(state.cpu[h] for h in hosts)
        ram = max(state.ram[h] for h in hosts)
        during = f" during {state.view.window_label}" if state.view.window_label else ""
        if cpu < node.vcpu:
            return (
                f"node {node.name} needs {node.vcpu} vCPU {where}; at most {cpu} free on "
                f"any V-node{during}"
            )
        if ram < node.ram_mb:
            return (
                f"node {node.name} needs {node.ram_mb} MB RAM {where}; at most {ram} MB "
                f"free on any V-node{during}"
            )
        return (
            f"node {node.name} needs {node.vcpu} vCPU and {node.ram_mb} MB RAM on one V-node "
            f"{where}; no single V-node has both free{during}"
        )

    # -- circuits ----------------------------------------------------------------------
    def _route(
        self, i: int, c: CircuitRequest, placement: Mapping[str, str], state: _State
    ) -> tuple[CircuitMapping | None, FieldError | None]:
        if any(e not in placement for e in c.endpoints):
            return None, None  # a node failed; its reason is already given
        hosts = [placement[e] for e in c.endpoints]
        if len(set(hosts)) == 1:
            # Every endpoint on one V-node: the circuit stays inside it (no network hop).
            return CircuitMapping(c.name, c.bandwidth_mbps), None
        caps = [state.view.hosts[h] for h in hosts]
        devices = sorted({cap.device for cap in caps})
        bw = c.bandwidth_mbps
        path_field = f"circuits[{i}]"
        during = f" during {state.view.window_label}" if state.view.window_label else ""
        for h in sorted(set(hosts)):
            if state.uplink_bw[h] < bw:
                return None, FieldError(
                    path_field,
                    f"circuit {c.name} needs {bw} Mb/s on the "
                    f"uplink of V-node {h}; {state.uplink_bw[h]} free{during}",
                )
        g = state.simple(bw)
        trees: list[list[tuple[str, str]]] = []
        if len(devices) == 1:
            trees = [[]]
        elif len(devices) == 2:
            try:
                for path in itertools.islice(nx.shortest_simple_paths(g, *devices), K_PATHS):
                    trees.append(list(itertools.pairwise(path)))
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                trees = []
        else:
            if all(d in g for d in devices) and all(
                nx.has_path(g, devices[0], d) for d in devices[1:]
            ):
                tree = steiner_tree(g, devices)
                trees = [list(tree.edges())]
        if not trees:
            pops = [state.view.pops_of_devices.get(d, d) for d in devices]
            if len(devices) == 2:
                widest = state.widest(*devices)
                return None, FieldError(
                    path_field,
                    f"circuit {c.name} needs {bw} Mb/s between "
                    f"{pops[0]} and {pops[1]}; at most {widest} Mb/s free on "
                    f"any path{during}",
                )
            return None, FieldError(
                path_field,
                f"circuit {c.name} needs {bw} Mb/s joining "
                f"{', '.join(pops)}; no tree of links has that free{during}",
            )
        for edges in trees:
            mapping = self._assign(c, hosts, edges, g, state)
            if mapping is not None:
                return mapping, None
        return None, FieldError(
            path_field,
            f"circuit {c.name}: no VLAN tag is free on every "
            "link of any usable path (and a device on it cannot translate "
            f"tags){during}",
        )

    def _assign(
        self,
        c: CircuitRequest,
        hosts: list[str],
        edges: list[tuple[str, str]],
        g: nx.Graph,
        state: _State,
    ) -> CircuitMapping | None:
        """Tags for one tree: one tag everywhere if possible, else per link where every
        device on the tree can translate."""
        links = []
        for a, b in edges:
            key = g[a][b]["key"]
            data = state.graph[a][b][key]
            links.append(data["link"])
        uplinks = sorted(set(hosts))
        pools = [state.graph[lk.a_device][lk.b_device][lk.name]["vlans"] for lk in links]
        pools += [state.uplink_vlans[h] for h in uplinks]
        common = set.intersection(*pools) if pools else {1}
        tags: dict[str, int] = {}
        if common:
            tag = min(common)
            tags = {lk.name: tag for lk in links} | {f"host:{h}": tag for h in uplinks}
        else:
            devices = {d for e in edges for d in e} | {state.view.hosts[h].device for h in uplinks}
            if not devices <= state.view.translating:
                return None
            for lk, pool in zip(links, pools, strict=False):
                if not pool:
                    return None
                tags[lk.name] = min(pool)
            for h in uplinks:
                if not state.uplink_vlans[h]:
                    return None
                tags[f"host:{h}"] = min(state.uplink_vlans[h])
        mapping = CircuitMapping(c.name, c.bandwidth_mbps)
        for lk in links:
            t = tags[lk.name]
            d = state.graph[lk.a_device][lk.b_device][lk.name]
            d["bw"] -= c.bandwidth_mbps
            d["vlans"].discard(t)
            mapping.hops += [
                Hop(lk.a_device, lk.a_port, t, lk.name),
                Hop(lk.b_device, lk.b_port, t, lk.name),
            ]
        for h in uplinks:
            t = tags[f"host:{h}"]
            cap = state.view.hosts[h]
            state.uplink_bw[h] -= c.bandwidth_mbps
            state.uplink_vlans[h].discard(t)
            mapping.hops.append(Hop(cap.device, cap.port, t))
        return mapping


def full_view(topo: Topology, window_label: str = "") -> SubstrateView:
    """The whole substrate free (a dry run on an empty calendar, tests, benchmarks)."""
    devices = {d.name: d for d in topo.devices}
    speeds = {(d.name, p.name): p.speed_mbps for d in topo.devices for p in d.ports}
    every_tag = frozenset(range(1, 4095))
    hosts = {
        h.name: HostCap(
            h.name,
            h.pop,
            h.uplink.device,
            h.uplink.port,
            h.cpu_cores,
            h.ram_mb,
            speeds[(h.uplink.device, h.uplink.port)],
            every_tag,
        )
        for h in topo.hosts
    }
    links = []
    for lk in topo.links:
        lo, hi = parse_vlan_range(lk.vlans) or (1, 4094)
        links.append(
            LinkCap(
                lk.name,
                lk.a.device,
                lk.a.port,
                lk.b.device,
                lk.b.port,
                lk.capacity_mbps,
                frozenset(range(lo, hi + 1)),
            )
        )
    return SubstrateView(
        hosts=hosts,
        links=links,
        translating=frozenset(n for n, d in devices.items() if d.vlan_translation),
        pops_of_devices={n: d.pop for n, d in devices.items()},
        window_label=window_label,
    )
