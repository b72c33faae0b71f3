"""The coordinated embedder (the controller's default) and the GRC baseline of the B3
benchmark: GRC's rank against the linear system it solves, the baselines' k-shortest-path
limit, the coordinated embedder's short paths, and (hypothesis) that whatever it returns
fits what was free."""

from __future__ import annotations

import itertools
from fractions import Fraction

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.grc import GrcKShortest, grc_rank
from federica.slices.coordinated import Coordinated
from federica.slices.embed import (
    Embedding,
    EmbeddingFailed,
    HostCap,
    LinkCap,
    RankedKShortest,
    SubstrateView,
    TagPool,
)
from federica.slices.request import SliceRequest

TAGS = TagPool(1, 4094)


def view(
    edges: list[tuple[str, str, int]],
    cpu: dict[str, int],
    distinct: bool = False,
    uplink: int = 10_000,
    pops: dict[str, str] | None = None,
) -> SubstrateView:
    """One V-node per device ("h" + device), named links "a-b"."""
    pops = pops or {}
    hosts = {
        f"h{d}": HostCap(f"h{d}", pops.get(d, d), d, "up", c, 1 << 20, uplink, TAGS)
        for d, c in cpu.items()
    }
    links = [LinkCap(f"{a}-{b}", a, f"to-{b}", b, f"to-{a}", bw, TAGS) for a, b, bw in edges]
    return SubstrateView(
        hosts=hosts,
        links=links,
        translating=frozenset(cpu),
        pops_of_devices={d: pops.get(d, d) for d in cpu},
        distinct_hosts=distinct,
    )


def slice_of(
    nodes: list[tuple[str, int, str | None]], circuits: list[tuple[list[str], int]]
) -> SliceRequest:
    return SliceRequest.model_validate(
        {
            "name": "t",
            "nodes": [{"name": n, "vcpu": c, **({"pop": p} if p else {})} for n, c, p in nodes],
            "circuits": [
                {"name": f"c{i}", "endpoints": ends, "bandwidth_mbps": bw}
                for i, (ends, bw) in enumerate(circuits)
            ],
        }
    )


def solve_grc(
    capacity: dict[str, int], edges: list[tuple[str, str, int]], d: Fraction
) -> dict[str, Fraction]:
    """r = (1 - d) c + d M r solved exactly (Gauss-Jordan over fractions)."""
    nodes = sorted(capacity)
    ix = {n: i for i, n in enumerate(nodes)}
    total = sum(capacity.values())
    strength = dict.fromkeys(nodes, 0)
    for a, b, w in edges:
        strength[a] += w
        strength[b] += w
    n = len(nodes)
    m = [[Fraction(0)] * (n + 1) for _ in range(n)]
    for i, a in enumerate(nodes):
        m[i][i] += 1
        m[i][n] = (1 - d) * Fraction(capacity[a], total)
    for a, b, w in edges:
        m[ix[a]][ix[b]] -= d * Fraction(w, strength[b])
        m[ix[b]][ix[a]] -= d * Fraction(w, strength[a])
    for col in range(n):
        pivot = next(r for r in range(col, n) if m[r][col] != 0)
        m[col], m[pivot] = m[pivot], m[col]
        m[col] = [x / m[col][col] for x in m[col]]
        for r in range(n):
            if r != col and m[r][col] != 0:
                f = m[r][col]
                m[r] = [x - f * y for x, y in zip(m[r], m[col], strict=True)]
    return {a: m[ix[a]][n] for a in nodes}


def test_grc_rank_is_the_fixed_point_of_its_equation() -> None:
    capacity = {"a": 80, "b": 55, "c": 100, "d": 60, "e": 70}
    edges = [("a", "b", 90), ("b", "c", 50), ("c", "a", 70), ("c", "d", 100), ("d", "e", 60)]
    got = grc_rank(capacity, edges, d=0.85, tolerance=1e-12)
    exact = solve_grc(capacity, edges, Fraction(85, 100))
    for n in capacity:
        assert got[n] == pytest.approx(float(exact[n]), abs=1e-9)
    assert sum(got.values()) == pytest.approx(1.0)  # M is column-stochastic


def test_grc_ranks_a_hub_above_its_leaves() -> None:
    capacity = dict.fromkeys("hxyz", 50)
    rank = grc_rank(capacity, [("h", "x", 100), ("h", "y", 100), ("h", "z", 100)])
    assert rank["h"] > max(rank["x"], rank["y"], rank["z"])


def eleven_narrow_paths_and_one_wide_detour() -> SubstrateView:
    edges = [(a, b, 10) for i in range(11) for a, b in (("s", f"m{i}"), (f"m{i}", "t"))]
    edges += [("s", "x1", 100), ("x1", "x2", 100), ("x2", "x3", 100), ("x3", "t", 100)]
    cpu = {d: 8 for e in edges for d in e[:2]}
    return view(edges, cpu, pops={"s": "S", "t": "T"})


def test_grc_baseline_looks_no_further_than_the_ten_shortest_paths() -> None:
    req = slice_of([("a", 1, "S"), ("b", 1, "T")], [(["a", "b"], 50)])
    sv = eleven_narrow_paths_and_one_wide_detour()
    with pytest.raises(EmbeddingFailed, match="none of the 10 shortest paths has that free"):
        GrcKShortest().embed(req, sv)
    for embedder in (RankedKShortest(), Coordinated()):
        e = embedder.embed(req, sv)
        assert e.circuits["c0"].links == {"s-x1", "x1-x2", "x2-x3", "x3-t"}


def test_a_chain_lands_on_neighbouring_v_nodes() -> None:
    # A line of devices, the roomiest in the middle: a 4-node chain needs 3 one-hop links.
    line = [f"d{i}" for i in range(8)]
    edges = [(a, b, 100) for a, b in itertools.pairwise(line)]
    cpu = {d: 4 for d in line} | {"d4": 8}
    req = slice_of(
        [(f"n{i}", 2, None) for i in range(4)], [([f"n{i}", f"n{i + 1}"], 40) for i in range(3)]
    )
    e = Coordinated().embed(req, view(edges, cpu, distinct=True))
    assert e.bandwidth_cost == 3 * 40
    assert len(set(e.placement.values())) == 4


def test_each_node_on_its_own_v_node_when_asked() -> None:
    edges = [("a", "b", 100), ("b", "c", 100)]
    req = slice_of(
        [("x", 1, None), ("y", 1, None), ("z", 1, None)], [(["x", "y"], 10), (["y", "z"], 10)]
    )
    shared = Coordinated().embed(req, view(edges, {"a": 8, "b": 8, "c": 8}))
    assert shared.bandwidth_cost == 0  # all on one V-node: nothing crosses a link
    apart = Coordinated().embed(req, view(edges, {"a": 8, "b": 8, "c": 8}, distinct=True))
    assert len(set(apart.placement.values())) == 3
    with pytest.raises(EmbeddingFailed, match="already holds a node of this slice"):
        Coordinated().embed(req, view([("a", "b", 100)], {"a": 8, "b": 8}, distinct=True))


def check_fits(req: SliceRequest, sv: SubstrateView, e: Embedding) -> None:
    """What an embedding must satisfy, checked from scratch."""
    cpu: dict[str, int] = {}
    for node in req.nodes:
        host = e.placement[node.name]
        cap = sv.hosts[host]
        assert node.pop is None or cap.pop == node.pop
        cpu[host] = cpu.get(host, 0) + node.vcpu
    assert all(used <= sv.hosts[h].cpu_free for h, used in cpu.items())
    if sv.distinct_hosts:
        assert len(set(e.placement.values())) == len(req.nodes)
    links = {lk.name: lk for lk in sv.links}
    bw: dict[str, int] = {}
    uplink: dict[str, int] = {}
    for c in req.circuits:
        m = e.circuits[c.name]
        hosts = {e.placement[n] for n in c.endpoints}
        devices = {sv.hosts[h].device for h in hosts}
        tree = nx.Graph()
        tree.add_nodes_from(devices)
        tree.add_edges_from((links[lk].a_device, links[lk].b_device) for lk in m.links)
        assert nx.is_tree(tree) and devices <= set(tree), (c.name, m.links)
        for lk in m.links:
            bw[lk] = bw.get(lk, 0) + c.bandwidth_mbps
        if len(hosts) > 1:
            for h in hosts:
                uplink[h] = uplink.get(h, 0) + c.bandwidth_mbps
    assert all(used <= links[lk].bw_free for lk, used in bw.items())
    assert all(used <= sv.hosts[h].uplink_bw_free for h, used in uplink.items())


@st.composite
def cases(draw: st.DrawFn) -> tuple[SliceRequest, SubstrateView]:
    n = draw(st.integers(3, 8))
    devices = [f"d{i}" for i in range(n)]
    edges = {(devices[draw(st.integers(0, i - 1))], devices[i]) for i in range(1, n)}
    for a, b in draw(st.lists(st.tuples(st.sampled_from(devices), st.sampled_from(devices)))):
        if a != b and (b, a) not in edges:
            edges.add((a, b))
    widths = st.sampled_from([0, 10, 40, 100])
    cpu = {d: draw(st.integers(0, 6)) for d in devices}
    pops = {d: f"p{i // 2}" for i, d in enumerate(devices)}
    sv = view(
        [(a, b, draw(widths)) for a, b in sorted(edges)],
        cpu,
        distinct=draw(st.booleans()),
        uplink=draw(st.sampled_from([50, 100, 1000])),
        pops=pops,
    )
    k = draw(st.integers(2, 5))
    names = [f"n{i}" for i in range(k)]
    pin = st.none() | st.sampled_from(sorted(set(pops.values())))
    nodes = [(name, draw(st.integers(1, 3)), draw(pin)) for name in names]
    circuits = []
    for _ in range(draw(st.integers(0, 5))):
        ends = draw(st.lists(st.sampled_from(names), min_size=2, max_size=3, unique=True))
        circuits.append((ends, draw(st.integers(1, 60))))
    return slice_of(nodes, circuits), sv


@settings(max_examples=300, deadline=None)
@given(cases())
def test_what_it_returns_fits_and_it_fails_only_where_the_baseline_fails_too(
    case: tuple[SliceRequest, SubstrateView],
) -> None:
    req, sv = case
    try:
        e = Coordinated().embed(req, sv)
    except EmbeddingFailed as failed:
        reasons = failed.reasons
    else:
        check_fits(req, sv, e)
        return
    assert reasons and all(r.field.startswith(("nodes[", "circuits[")) for r in reasons)
    with pytest.raises(EmbeddingFailed):
        RankedKShortest().embed(req, sv)
