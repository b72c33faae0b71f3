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
class TagPool:
    """VLAN tags lo..hi except `taken`: kept as a range and the (few) tags in use, since
    copying 4094-element sets per resource per booking costs milliseconds."""

    lo: int
    hi: int
    taken: frozenset[int] = frozenset()

    @classmethod
    def only(cls, tags: set[int] | frozenset[int]) -> TagPool:
        lo, hi = min(tags), max(tags)
        return cls(lo, hi, frozenset(range(lo, hi + 1)) - frozenset(tags))

    def __contains__(self, tag: object) -> bool:
        return isinstance(tag, int) and self.lo <= tag <= self.hi and tag not in self.taken

    def __bool__(self) -> bool:
        return self.hi - self.lo + 1 > len(self.taken)

    def first(self) -> int | None:
        return first_common([self])

    def without(self, tag: int) -> TagPool:
        return TagPool(self.lo, self.hi, self.taken | {tag})


def first_common(pools: Sequence[TagPool]) -> int | None:
    """The lowest tag free in every pool."""
    lo = max(p.lo for p in pools)
    hi = min(p.hi for p in pools)
    taken: set[int] = set().union(*(p.taken for p in pools))
    for tag in range(lo, hi + 1):
        if tag not in taken:
            return tag
    return None


class RouteCache:
    """k shortest device paths (by hops) on the static topology, computed once per pair.
    Routing first tries these, in order, against what is free; only when none fits does it
    search the graph pruned to links with enough bandwidth."""

    def __init__(self, links: Sequence[tuple[str, str, str]]) -> None:
        self.graph = nx.Graph()
        self.parallel: dict[frozenset[str], list[str]] = {}
        self.around: dict[str, list[str]] = {}
        self.adjacent: dict[str, list[tuple[str, str]]] = {}  # device -> (neighbour, link)
        for name, a, b in links:
            self.graph.add_edge(a, b)
            self.parallel.setdefault(frozenset((a, b)), []).append(name)
            self.around.setdefault(a, []).append(name)
            self.around.setdefault(b, []).append(name)
            self.adjacent.setdefault(a, []).append((b, name))
            self.adjacent.setdefault(b, []).append((a, name))
        self._paths: dict[tuple[str, str], list[list[str]]] = {}

    def paths(self, a: str, b: str) -> list[list[str]]:
        key = (a, b)
        if key not in self._paths:
            try:
                self._paths[key] = list(
                    itertools.islice(nx.shortest_simple_paths(self.graph, a, b), K_PATHS)
                )
            except (nx.NetworkXNoPath, nx.NodeNotFound):
                self._paths[key] = []
        return self._paths[key]


@dataclass(frozen=True)
class HostCap:
    name: str
    pop: str
    device: str  # the device its uplink port is on
    port: str  # the uplink port
    cpu_free: int
    ram_free_mb: int
    uplink_bw_free: int
    uplink_vlans_free: TagPool


@dataclass(frozen=True)
class LinkCap:
    name: str
    a_device: str
    a_port: str
    b_device: str
    b_port: str
    bw_free: int
    vlans_free: TagPool


@dataclass(frozen=True)
class SubstrateView:
    hosts: Mapping[str, HostCap]
    links: Sequence[LinkCap]
    translating: frozenset[str]  # devices that may rewrite VLAN tags
    pops_of_devices: Mapping[str, str]
    window_label: str = ""  # "2026-12-01 09:00 to 12:00 UTC", for messages
    routes: RouteCache | None = None  # shared across views of one topology
    blocked: Mapping[str, str] = field(default_factory=dict)  # resource -> why (maintenance)
    # At most one node of a slice per V-node (the VNE benchmark's rule; the testbed itself
    # lets nodes share a V-node, which saves the circuit between them).
    distinct_hosts: bool = False


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

    @property
    def links(self) -> set[str]:
        """The physical links it crosses (host uplinks are not links)."""
        return {h.link for h in self.hops if h.link is not None}

    def attachments_by_device(self) -> dict[str, list[tuple[str, int]]]:
        out: dict[str, list[tuple[str, int]]] = {}
        for h in self.hops:
            out.setdefault(h.device, []).append((h.port, h.vlan))
        return out


@dataclass
class Embedding:
    placement: dict[str, str]  # node -> host
    circuits: dict[str, CircuitMapping]

    @property
    def bandwidth_cost(self) -> int:
        """Mb/s times links crossed, summed over circuits: the network the slice takes."""
        return sum(c.bandwidth_mbps * len(c.links) for c in self.circuits.values())


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
        self.uplink_vlans = {h: c.uplink_vlans_free for h, c in view.hosts.items()}
        self.links = {lk.name: lk for lk in view.links}
        self.bw = {lk.name: lk.bw_free for lk in view.links}
        self.vlans = {lk.name: lk.vlans_free for lk in view.links}
        self.routes = view.routes or RouteCache(
            [(lk.name, lk.a_device, lk.b_device) for lk in view.links]
        )
        self.used: set[str] = set()  # hosts holding a node of this slice

    def copy(self) -> _State:
        """A trial copy: what-if placements are cheap (a few dict copies)."""
        new = object.__new__(_State)
        new.view, new.links, new.routes = self.view, self.links, self.routes
        new.cpu, new.ram = dict(self.cpu), dict(self.ram)
        new.uplink_bw, new.uplink_vlans = dict(self.uplink_bw), dict(self.uplink_vlans)
        new.bw, new.vlans = dict(self.bw), dict(self.vlans)
        new.used = set(self.used)
        return new

    def fits(self, node: NodeRequest, host: str) -> bool:
        cap = self.view.hosts[host]
        return (
            (node.pop is None or cap.pop == node.pop)
            and self.cpu[host] >= node.vcpu
            and self.ram[host] >= node.ram_mb
            and not (self.view.distinct_hosts and host in self.used)
        )

    def place(self, node: NodeRequest, host: str) -> None:
        self.cpu[host] -= node.vcpu
        self.ram[host] -= node.ram_mb
        self.used.add(host)

    def usable(self, link: str, bw: int) -> bool:
        return link in self.bw and self.bw[link] >= bw and bool(self.vlans[link])

    def hop_link(self, a: str, b: str, bw: int) -> str | None:
        """The parallel link between two devices with the most bandwidth free, if usable."""
        best = None
        for name in self.routes.parallel.get(frozenset((a, b)), ()):
            if self.usable(name, bw) and (best is None or self.bw[name] > self.bw[best]):
                best = name
        return best

    def simple(self, bw: int) -> nx.Graph:
        """Devices joined where some parallel link still has `bw` free (the widest kept)."""
        g = nx.Graph()
        g.add_nodes_from(self.routes.graph.nodes)
        g.add_nodes_from(c.device for c in self.view.hosts.values())
        for pair in self.routes.parallel:
            a, b = sorted(pair)
            best = self.hop_link(a, b, bw)
            if best is not None:
                g.add_edge(a, b, bw=self.bw[best], key=best)
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

    # When none of the k shortest paths has the bandwidth, search the graph pruned to the
    # links that do. The published k-shortest-path baselines do not; the controller does.
    search_fallback = True

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
            state.place(node, host)
        return placement, reasons

    def _best_host(self, node: NodeRequest, bw: int, state: _State) -> str | None:
        best, best_rank = None, -1.0
        for name, cap in sorted(state.view.hosts.items()):
            if not state.fits(node, name):
                continue
            if state.uplink_bw[name] < bw and bw > 0:
                continue
            around = state.uplink_bw[name] + sum(
                state.bw.get(lk, 0) for lk in state.routes.around.get(cap.device, ())
            )
            rank = state.cpu[name] * (1 + around)
            if rank > best_rank:
                best, best_rank = name, rank
        return best

    def _why_no_host(self, node: NodeRequest, bw: int, state: _State) -> str:
        hosts = [h for h, c in state.view.hosts.items() if node.pop in (None, c.pop)]
        where = f"at PoP {node.pop}" if node.pop else "anywhere"
        if not hosts:
            return f"node {node.name}: no V-node {where}{self._blocked_note(state)}"
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
        if state.view.distinct_hosts and any(
            state.cpu[h] >= node.vcpu and state.ram[h] >= node.ram_mb for h in hosts
        ):
            return (
                f"node {node.name}: every V-node {where} with {node.vcpu} vCPU and "
                f"{node.ram_mb} MB RAM free already holds a node of this slice{during}"
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
        if len(devices) == 1:
            return self._first_assignable(c, hosts, [[]], state), None
        if len(devices) == 2:
            mapping = self._first_assignable(
                c, hosts, self._cached_paths(devices, bw, state), state
            )
            if mapping is not None:
                return mapping, None
        search = self.search_fallback or len(devices) > 2
        trees = self._searched_trees(devices, bw, state) if search else []
        if not trees:
            pops = [state.view.pops_of_devices.get(d, d) for d in devices]
            blocked = self._blocked_note(state)
            if len(devices) == 2:
                widest = state.widest(*devices)
                if widest >= bw:  # only without the search fallback
                    return None, FieldError(
                        path_field,
                        f"circuit {c.name} needs {bw} Mb/s between {pops[0]} and {pops[1]}; "
                        f"none of the {K_PATHS} shortest paths has that free{during}",
                    )
                return None, FieldError(
                    path_field,
                    f"circuit {c.name} needs {bw} Mb/s between "
                    f"{pops[0]} and {pops[1]}; at most {widest} Mb/s free on "
                    f"any path{during}{blocked}",
                )
            return None, FieldError(
                path_field,
                f"circuit {c.name} needs {bw} Mb/s joining "
                f"{', '.join(pops)}; no tree of links has that free{during}{blocked}",
            )
        mapping = self._first_assignable(c, hosts, trees, state)
        if mapping is not None:
            return mapping, None
        return None, FieldError(
            path_field,
            f"circuit {c.name}: no VLAN tag is free on every "
            "link of any usable path (and a device on it cannot translate "
            f"tags){during}",
        )

    @staticmethod
    def _blocked_note(state: _State) -> str:
        if not state.view.blocked:
            return ""
        return "; under maintenance: " + "; ".join(
            f"{what} ({why})" for what, why in sorted(state.view.blocked.items())
        )

    @staticmethod
    def _cached_paths(devices: list[str], bw: int, state: _State) -> list[list[str]]:
        """The precomputed shortest paths whose every hop has a usable link, as link names."""
        out = []
        for path in state.routes.paths(devices[0], devices[1]):
            links = [state.hop_link(a, b, bw) for a, b in itertools.pairwise(path)]
            if all(links):
                out.append([lk for lk in links if lk])
        return out

    @staticmethod
    def _searched_trees(devices: list[str], bw: int, state: _State) -> list[list[str]]:
        """Paths (2 devices) or a Steiner tree (more) in the graph pruned to `bw`."""
        g = state.simple(bw)
        if not all(d in g for d in devices):
            return []
        if len(devices) == 2:
            try:
                paths = itertools.islice(nx.shortest_simple_paths(g, *devices), K_PATHS)
                return [[g[a][b]["key"] for a, b in itertools.pairwise(p)] for p in paths]
            except nx.NetworkXNoPath:
                return []
        reachable = nx.node_connected_component(g, devices[0])
        if not all(d in reachable for d in devices[1:]):
            return []
        # networkx's Steiner tree needs a connected graph (else KeyError): keep the part
        # the terminals are in.
        tree = steiner_tree(g.subgraph(reachable), devices)
        return [[g[a][b]["key"] for a, b in tree.edges()]]

    def _first_assignable(
        self, c: CircuitRequest, hosts: list[str], trees: list[list[str]], state: _State
    ) -> CircuitMapping | None:
        for links in trees:
            mapping = self._assign(c, hosts, links, state)
            if mapping is not None:
                return mapping
        return None

    def _assign(
        self, c: CircuitRequest, hosts: list[str], link_names: list[str], state: _State
    ) -> CircuitMapping | None:
        """Tags for one tree: one tag everywhere if possible, else per link where every
        device on the tree can translate."""
        links = [state.links[n] for n in link_names]
        uplinks = sorted(set(hosts))
        pools = [state.vlans[lk.name] for lk in links]
        pools += [state.uplink_vlans[h] for h in uplinks]
        common = first_common(pools) if pools else 1
        tags: dict[str, int] = {}
        if common is not None:
            tags = {lk.name: common for lk in links} | {f"host:{h}": common for h in uplinks}
        else:
            devices = {d for lk in links for d in (lk.a_device, lk.b_device)}
            devices |= {state.view.hosts[h].device for h in uplinks}
            if not devices <= state.view.translating:
                return None
            for lk in links:
                tag = state.vlans[lk.name].first()
                if tag is None:
                    return None
                tags[lk.name] = tag
            for h in uplinks:
                tag = state.uplink_vlans[h].first()
                if tag is None:
                    return None
                tags[f"host:{h}"] = tag
        mapping = CircuitMapping(c.name, c.bandwidth_mbps)
        for lk in links:
            t = tags[lk.name]
            state.bw[lk.name] -= c.bandwidth_mbps
            state.vlans[lk.name] = state.vlans[lk.name].without(t)
            mapping.hops += [
                Hop(lk.a_device, lk.a_port, t, lk.name),
                Hop(lk.b_device, lk.b_port, t, lk.name),
            ]
        for h in uplinks:
            t = tags[f"host:{h}"]
            cap = state.view.hosts[h]
            state.uplink_bw[h] -= c.bandwidth_mbps
            state.uplink_vlans[h] = state.uplink_vlans[h].without(t)
            mapping.hops.append(Hop(cap.device, cap.port, t))
        return mapping


def full_view(topo: Topology, window_label: str = "") -> SubstrateView:
    """The whole substrate free (a dry run on an empty calendar, tests, benchmarks)."""
    devices = {d.name: d for d in topo.devices}
    speeds = {(d.name, p.name): p.speed_mbps for d in topo.devices for p in d.ports}
    every_tag = TagPool(1, 4094)
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
                TagPool(lo, hi),
            )
        )
    return SubstrateView(
        hosts=hosts,
        links=links,
        translating=frozenset(n for n, d in devices.items() if d.vlan_translation),
        pops_of_devices={n: d.pop for n, d in devices.items()},
        window_label=window_label,
    )
