"""GRC node ranking + k-shortest-path link mapping: the published baseline of the embedding
benchmark (bench/vne.py, B3), kept in the project so both run on the same workload.

GRC (Gong et al., "Toward profit-seeking virtual network embedding algorithm via global
resource capacity", INFOCOM 2014) ranks a node by a PageRank-like fixed point that mixes
its own CPU with its neighbours' ranks, weighted by link bandwidth:
r = (1 - d) c + d M r, with c the normalised CPU and M[i][j] = bw(i, j) / Σ_k bw(j, k).
Virtual nodes, in rank order, go to the highest-ranked V-node that fits; circuits take the
first of the k = 10 shortest paths with the bandwidth free, and nothing else. Pure.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping
from typing import TypeVar

from federica.errors import FieldError
from federica.slices.embed import RankedKShortest, _State
from federica.slices.request import SliceRequest

K = TypeVar("K", bound=Hashable)
DAMPING = 0.85
TOLERANCE = 1e-4


def grc_rank(
    capacity: Mapping[K, float],
    edges: Iterable[tuple[K, K, float]],
    d: float = DAMPING,
    tolerance: float = TOLERANCE,
    max_rounds: int = 500,
) -> dict[K, float]:
    """The GRC vector by power iteration until it moves less than `tolerance` (L2)."""
    nodes = list(capacity)
    total = sum(capacity.values())
    c = {n: (capacity[n] / total if total > 0 else 1 / len(nodes)) for n in nodes}
    strength = dict.fromkeys(nodes, 0.0)
    around: dict[K, list[tuple[K, float]]] = {n: [] for n in nodes}
    for a, b, w in edges:
        if a == b or w <= 0:
            continue
        strength[a] += w
        strength[b] += w
        around[a].append((b, w))
        around[b].append((a, w))
    r = dict(c)
    for _ in range(max_rounds):
        new = {
            n: (1 - d) * c[n] + d * sum(w / strength[m] * r[m] for m, w in around[n]) for n in nodes
        }
        moved = math.sqrt(sum((new[n] - r[n]) ** 2 for n in nodes))
        r = new
        if moved < tolerance:
            break
    return r


class GrcKShortest(RankedKShortest):
    """GRC (d = 0.85) node ranking + first-fit over the k = 10 shortest paths."""

    search_fallback = False

    def _place(
        self, request: SliceRequest, state: _State
    ) -> tuple[dict[str, str], list[FieldError]]:
        host_rank = substrate_rank(state)
        edges = []
        for c in request.circuits:  # a multipoint circuit counts as a full mesh
            for i, a in enumerate(c.endpoints):
                edges += [(a, b, float(c.bandwidth_mbps)) for b in c.endpoints[i + 1 :]]
        rank = grc_rank({n.name: float(n.vcpu) for n in request.nodes}, edges)
        index = {n.name: i for i, n in enumerate(request.nodes)}
        hosts = sorted(state.view.hosts, key=lambda h: (-host_rank[h], h))
        placement: dict[str, str] = {}
        reasons: list[FieldError] = []
        for node in sorted(request.nodes, key=lambda n: (-rank[n.name], index[n.name])):
            host = next((h for h in hosts if state.fits(node, h)), None)
            if host is None:
                reasons.append(
                    FieldError(f"nodes[{index[node.name]}]", self._why_no_host(node, 0, state))
                )
                continue
            placement[node.name] = host
            state.place(node, host)
        return placement, reasons


def substrate_rank(state: _State) -> dict[str, float]:
    """GRC over the device graph (a device's CPU is its V-nodes'), shared out to the V-nodes
    in proportion to their free CPU."""
    device_cpu: dict[str, float] = dict.fromkeys(state.routes.adjacent, 0.0)
    for h, cap in state.view.hosts.items():
        device_cpu[cap.device] = device_cpu.get(cap.device, 0.0) + state.cpu[h]
    links = state.links.values()
    rank = grc_rank(
        device_cpu, ((lk.a_device, lk.b_device, float(state.bw[lk.name])) for lk in links)
    )
    out = {}
    for h, cap in state.view.hosts.items():
        share = state.cpu[h] / device_cpu[cap.device] if device_cpu[cap.device] > 0 else 0.0
        out[h] = rank[cap.device] * share
    return out
