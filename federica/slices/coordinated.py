"""The controller's embedder: coordinated node and link mapping with several starts.

The classic two-stage embedders place every node first and route afterwards, so a node
lands where CPU is plentiful but its circuits must cross half the network. Here nodes are
placed one at a time in breadth-first order over the slice's own topology, each on the
V-node that is fewest bandwidth-weighted hops from its already-placed neighbours, counting
only links that still have the circuit's bandwidth free; its circuits are routed at once on
those shortest feasible paths, so the next node sees what they took. Short paths are what
keep the network free for the next slice (and what the revenue/cost ratio measures).

The first node has no neighbours to be near, so the greedy pass runs from several starting
V-nodes (the roomiest ones) and keeps the embedding that takes the least bandwidth x hops,
within a small time budget. If no start fits, the classic embedder runs: it may still find
a fit, and if not it explains which constraint failed where. Pure: no I/O.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping, Sequence

from federica.slices.embed import (
    CircuitMapping,
    Embedding,
    RankedKShortest,
    SubstrateView,
    _State,
)
from federica.slices.request import CircuitRequest, NodeRequest, SliceRequest

Reach = dict[str, tuple[int, str, str]]  # device -> (hops, previous device, link)


class Coordinated(RankedKShortest):
    def __init__(self, starts: int = 8, candidates: int = 3, budget_s: float = 0.025) -> None:
        self.starts = starts  # starting V-nodes tried for the first node
        self.candidates = candidates  # best-scored V-nodes tried per node before giving up
        self.budget_s = budget_s  # no new start after this long, once one embedding fits

    def embed(self, request: SliceRequest, view: SubstrateView) -> Embedding:
        began = time.perf_counter()
        base = _State(view)
        order = _breadth_first(request)
        circuits_of: dict[str, list[int]] = {n.name: [] for n in request.nodes}
        for i, c in enumerate(request.circuits):
            for e in set(c.endpoints):
                circuits_of[e].append(i)
        best: Embedding | None = None
        for root in self._roots(order[0], base):
            if best is not None and time.perf_counter() - began > self.budget_s:
                break
            found = self._greedy(request, order, circuits_of, root, base.copy())
            if found is not None and (best is None or found.bandwidth_cost < best.bandwidth_cost):
                best = found
                if best.bandwidth_cost == 0:
                    break  # nothing crosses a link: no start can do better
        if best is not None:
            return best
        return super().embed(request, view)  # a last try, and the explanation if it fails

    def _roots(self, first: NodeRequest, state: _State) -> list[str]:
        """The V-nodes with the most CPU and link bandwidth free around them, one per
        device."""

        def room(h: str) -> float:
            device = state.view.hosts[h].device
            # The routes are the static topology's: a link under maintenance is in them
            # but not among the free links, and has nothing free.
            around = sum(state.bw.get(lk, 0) for lk in state.routes.around.get(device, ()))
            return state.cpu[h] * (1 + around)

        fitting = sorted(
            (h for h in state.view.hosts if state.fits(first, h)), key=lambda h: (-room(h), h)
        )
        # Starts on one device lead to the same paths: keep the roomiest V-node of each.
        roots: dict[str, str] = {}
        for h in fitting:
            roots.setdefault(state.view.hosts[h].device, h)
        return list(roots.values())[: self.starts]

    def _greedy(
        self,
        request: SliceRequest,
        order: Sequence[NodeRequest],
        circuits_of: Mapping[str, list[int]],
        root: str,
        state: _State,
    ) -> Embedding | None:
        placement: dict[str, str] = {}
        mapped: dict[str, CircuitMapping] = {}
        for node in order:
            choices: list[str] = [root]
            reaches: dict[int, Reach] = {}
            if placement:
                choices, reaches = self._ranked_hosts(node, request, placement, circuits_of, state)
            for host in choices[: self.candidates]:
                trial = state.copy()
                trial.place(node, host)
                placement[node.name] = host
                routed = self._route_ready(node, request, placement, circuits_of, reaches, trial)
                if routed is not None:
                    state = trial
                    mapped.update(routed)
                    break
                del placement[node.name]
            else:
                return None
        return Embedding(placement=placement, circuits=mapped)

    def _ranked_hosts(
        self,
        node: NodeRequest,
        request: SliceRequest,
        placement: Mapping[str, str],
        circuits_of: Mapping[str, list[int]],
        state: _State,
    ) -> tuple[list[str], dict[int, Reach]]:
        """V-nodes that fit, cheapest first: bandwidth x hops to the placed neighbours over
        links with that bandwidth free; ties go to the V-node with most CPU free. Also the
        searches, by circuit, so routing can follow them."""
        reaches: dict[int, Reach] = {}
        near: list[tuple[CircuitRequest, set[str], Reach]] = []
        for i in circuits_of[node.name]:
            c = request.circuits[i]
            placed = {placement[e] for e in c.endpoints if e != node.name and e in placement}
            if placed:
                devices = {state.view.hosts[h].device for h in placed}
                reaches[i] = _reach(state, devices, c.bandwidth_mbps)
                near.append((c, placed, reaches[i]))
        scored = []
        for h, cap in state.view.hosts.items():
            if not state.fits(node, h):
                continue
            cost = 0
            for c, placed, reach in near:
                if placed == {h}:
                    continue  # the circuit stays inside the V-node
                hit = reach.get(cap.device)
                if hit is None or state.uplink_bw[h] < c.bandwidth_mbps:
                    break
                cost += c.bandwidth_mbps * hit[0]
            else:
                scored.append((cost, -state.cpu[h], h))
        scored.sort()
        return [h for _, _, h in scored], reaches

    def _route_ready(
        self,
        node: NodeRequest,
        request: SliceRequest,
        placement: Mapping[str, str],
        circuits_of: Mapping[str, list[int]],
        reaches: Mapping[int, Reach],
        state: _State,
    ) -> dict[str, CircuitMapping] | None:
        """Route the node's circuits whose endpoints are now all placed; None if one fails."""
        out = {}
        for i in sorted(circuits_of[node.name], key=lambda i: -request.circuits[i].bandwidth_mbps):
            c = request.circuits[i]
            if not all(e in placement for e in c.endpoints):
                continue
            mapping = self._shortest(c, placement, state, reaches.get(i), node.name)
            if mapping is None:
                mapping, _ = self._route(i, c, placement, state)
            if mapping is None:
                return None
            out[c.name] = mapping
        return out

    def _shortest(
        self,
        c: CircuitRequest,
        placement: Mapping[str, str],
        state: _State,
        reach: Reach | None,
        new: str,
    ) -> CircuitMapping | None:
        """A point-to-point circuit on a fewest-hops path with its bandwidth free (None:
        leave it to the general router, which also handles multipoint and tag clashes).
        `reach` is the search made from the other end when `new` was being placed; its path
        is used if the circuits routed since left every link on it usable."""
        if len(c.endpoints) != 2:
            return None
        hosts = [placement[e] for e in c.endpoints]
        if hosts[0] == hosts[1]:
            return None
        bw = c.bandwidth_mbps
        if any(state.uplink_bw[h] < bw for h in hosts):
            return None
        here = state.view.hosts[placement[new]].device
        there = state.view.hosts[placement[next(e for e in c.endpoints if e != new)]].device
        if here == there:
            return self._assign(c, hosts, [], state)
        links = _path(reach, here) if reach is not None else None
        if links is None or not all(state.usable(lk, bw) for lk in links):
            links = _path(_reach(state, {there}, bw, stop=here), here)
        if links is None:
            return None
        return self._assign(c, hosts, links, state)


def _path(reach: Reach, to: str) -> list[str] | None:
    """The links back from `to` to the search's source."""
    if to not in reach:
        return None
    links = []
    hops, at, link = reach[to]
    while hops:
        links.append(link)
        hops, at, link = reach[at]
    return links


def _reach(state: _State, sources: set[str], bw: int, stop: str | None = None) -> Reach:
    """Breadth-first over devices, crossing only links with `bw` free and a tag left."""
    seen: Reach = {s: (0, s, "") for s in sources}
    frontier = deque(sources)
    adjacent, free, tags = state.routes.adjacent, state.bw, state.vlans
    while frontier:
        u = frontier.popleft()
        hops = seen[u][0] + 1
        for v, link in adjacent.get(u, ()):
            if v not in seen and free[link] >= bw and tags[link]:
                seen[v] = (hops, u, link)
                if v == stop:
                    return seen
                frontier.append(v)
    return seen


def _breadth_first(request: SliceRequest) -> list[NodeRequest]:
    """Pinned and heavy nodes first, then outward along the heaviest circuits, so each node
    after the first has a placed neighbour to be near."""
    weight = {n.name: n.vcpu for n in request.nodes}
    neighbours: dict[str, dict[str, int]] = {n.name: {} for n in request.nodes}
    for c in request.circuits:
        for e in c.endpoints:
            weight[e] += c.bandwidth_mbps
            for f in c.endpoints:
                if f != e:
                    neighbours[e][f] = max(neighbours[e].get(f, 0), c.bandwidth_mbps)
    by_name = {n.name: n for n in request.nodes}
    start_key = sorted(request.nodes, key=lambda n: (n.pop is None, -weight[n.name], n.name))
    order: list[NodeRequest] = []
    seen: set[str] = set()
    for start in start_key:
        if start.name in seen:
            continue
        seen.add(start.name)
        queue = deque([start.name])
        while queue:
            name = queue.popleft()
            order.append(by_name[name])
            for nb in sorted(neighbours[name], key=lambda m: (-neighbours[name][m], m)):
                if nb not in seen:
                    seen.add(nb)
                    queue.append(nb)
    return order
