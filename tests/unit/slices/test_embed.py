"""The embedders on the example topologies: placement, routing, VLANs, and failures that
name the constraint and the place. Every test runs against each embedder the controller
can use (the classic baseline and the default, coordinated one): this is their contract."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest

from federica.slices.coordinated import Coordinated
from federica.slices.embed import (
    Embedder,
    Embedding,
    EmbeddingFailed,
    RankedKShortest,
    TagPool,
    full_view,
)
from federica.slices.request import SliceRequest, parse_request
from federica.substrate.topology import Topology, parse_topology
from tests.conftest import EXAMPLES

NOW = dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC)


def topo(name: str = "core4") -> Topology:
    return parse_topology((EXAMPLES / "topologies" / f"{name}.yaml").read_bytes())


def request(nodes: list[dict[str, Any]], circuits: list[dict[str, Any]]) -> SliceRequest:
    r, _ = parse_request(
        {"name": "t", "nodes": nodes, "circuits": circuits, "window": {"duration": "3h"}},
        now=NOW,
        max_duration=dt.timedelta(days=30),
    )
    return r


EMBEDDER: list[Embedder] = [RankedKShortest()]


@pytest.fixture(autouse=True, params=[RankedKShortest, Coordinated])
def embedder(request: pytest.FixtureRequest) -> Embedder:
    EMBEDDER[0] = request.param()
    return EMBEDDER[0]


def embed(req: SliceRequest, view: Any = None) -> Embedding:
    return EMBEDDER[0].embed(req, view or full_view(topo(), "2026-12-01 09:00-12:00"))


def assert_consistent(e: Embedding, t: Topology) -> None:
    """Every circuit's hops form, per device, at least two attachments; link hops pair up."""
    links = {lk.name: lk for lk in t.links}
    for cm in e.circuits.values():
        for device, atts in cm.attachments_by_device().items():
            assert len(atts) >= 2, (cm.name, device, atts)
        for h in cm.hops:
            if h.link:
                lk = links[h.link]
                assert (h.device, h.port) in {(lk.a.device, lk.a.port), (lk.b.device, lk.b.port)}


def test_the_bgp_ring_lands_where_pinned_and_routes_directly() -> None:
    req, _ = parse_request(
        (EXAMPLES / "slices" / "bgp-lab.yaml").read_bytes(),
        now=NOW,
        max_duration=dt.timedelta(days=30),
    )
    t = topo()
    e = embed(req)
    hosts = {h.name: h.pop for h in t.hosts}
    assert {n: hosts[h] for n, h in e.placement.items()} == {
        "r-prg": "PRG",
        "r-erl": "ERL",
        "r-mil": "MIL",
        "r-psn": "PSN",
    }
    for cm in e.circuits.values():
        assert len([h for h in cm.hops if h.link]) == 2  # one direct link: its two ends
        assert len({h.vlan for h in cm.hops}) == 1  # one tag end to end
    assert_consistent(e, t)


def test_bandwidth_is_accounted_within_the_request() -> None:
    # The direct PRG-ERL link has 500 Mb/s free: the first 450 Mb/s circuit takes it, the
    # second must go round through another PoP.
    view = full_view(topo())
    view = dataclasses.replace(
        view,
        links=[
            dataclasses.replace(lk, bw_free=500) if lk.name == "prg-erl" else lk
            for lk in view.links
        ],
    )
    req = request(
        [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "ERL"}],
        [
            {"name": "c1", "endpoints": ["a", "b"], "bandwidth_mbps": 450},
            {"name": "c2", "endpoints": ["a", "b"], "bandwidth_mbps": 450},
        ],
    )
    e = embed(req, view)
    used = [{h.link for h in cm.hops if h.link} for cm in e.circuits.values()]
    assert {"prg-erl"} in used
    assert any(len(u) == 2 and "prg-erl" not in u for u in used)


def test_a_v_node_uplink_is_a_constraint_too() -> None:
    req = request(
        [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "ERL"}],
        [
            {"name": "c1", "endpoints": ["a", "b"], "bandwidth_mbps": 600},
            {"name": "c2", "endpoints": ["a", "b"], "bandwidth_mbps": 600},
        ],
    )
    with pytest.raises(EmbeddingFailed, match="needs 600 Mb/s on the uplink of V-node"):
        embed(req)


def test_too_much_bandwidth_is_explained_with_the_widest_path() -> None:
    view = full_view(topo(), "2026-12-01 09:00-12:00 UTC")
    narrowed = dataclasses.replace(
        view, links=[dataclasses.replace(lk, bw_free=350) for lk in view.links]
    )
    req = request(
        [{"name": "m", "pop": "MIL"}, {"name": "p", "pop": "PRG"}],
        [{"name": "c2", "endpoints": ["m", "p"], "bandwidth_mbps": 800}],
    )
    with pytest.raises(EmbeddingFailed) as info:
        embed(req, narrowed)
    assert [str(r) for r in info.value.reasons] == [
        "circuits[0]: circuit c2 needs 800 Mb/s between MIL and PRG; at most 350 Mb/s free "
        "on any path during 2026-12-01 09:00-12:00 UTC"
    ]
    assert info.value.status == 409


def test_a_node_that_does_not_fit_its_pop_is_explained() -> None:
    req = request([{"name": "big", "pop": "PRG", "vcpu": 16}, {"name": "ok"}], [])
    with pytest.raises(EmbeddingFailed) as info:
        embed(req)
    assert str(info.value.reasons[0]).startswith(
        "nodes[0]: node big needs 16 vCPU at PoP PRG; at most 8 free on any V-node"
    )


def test_vlans_must_be_common_unless_every_device_translates() -> None:
    view = full_view(topo())
    # Give each link a different single free tag: no tag is free end to end.
    split = [
        dataclasses.replace(lk, vlans_free=TagPool.only({100 + i}))
        for i, lk in enumerate(view.links)
    ]
    hosts = {
        n: dataclasses.replace(h, uplink_vlans_free=TagPool.only({500 + i}))
        for i, (n, h) in enumerate(view.hosts.items())
    }
    req = request(
        [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "ERL"}],
        [{"name": "c", "endpoints": ["a", "b"]}],
    )
    e = embed(req, dataclasses.replace(view, links=split, hosts=hosts))  # MX routers translate
    assert len({h.vlan for h in e.circuits["c"].hops}) == 3  # uplink, link, uplink
    strict = dataclasses.replace(view, links=split, hosts=hosts, translating=frozenset())
    with pytest.raises(EmbeddingFailed, match="no VLAN tag is free on every link"):
        embed(req, strict)


def test_multipoint_circuit_is_a_tree_over_three_pops() -> None:
    t = topo("federica")
    req = request(
        [{"name": "a", "pop": "KTH"}, {"name": "b", "pop": "FCCN"}, {"name": "c", "pop": "NIIF"}],
        [{"name": "lan", "endpoints": ["a", "b", "c"], "bandwidth_mbps": 50}],
    )
    e = embed(req, full_view(t))
    cm = e.circuits["lan"]
    assert len([h for h in cm.hops if not h.link]) == 3  # three uplinks
    assert_consistent(e, t)


def test_endpoints_on_one_v_node_need_no_network() -> None:
    req = request(
        [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "PRG"}],
        [{"name": "c", "endpoints": ["a", "b"]}],
    )
    view = full_view(topo())
    one = dataclasses.replace(view, hosts={"prg-v1": view.hosts["prg-v1"]})
    e = embed(req, one)
    assert e.placement == {"a": "prg-v1", "b": "prg-v1"} and e.circuits["c"].hops == []


def test_ten_nodes_twelve_circuits_on_federica() -> None:
    t = topo("federica")
    pops = ["PRG", "ERL", "MIL", "PSN", "KTH", "NIIF", "GRNET", "SWITCH", "I2CAT", "HEANET"]
    nodes = [{"name": f"n{i}", "pop": p} for i, p in enumerate(pops)]
    circuits = [{"name": f"c{i}", "endpoints": [f"n{i}", f"n{(i + 1) % 10}"]} for i in range(10)]
    circuits += [
        {"name": "c10", "endpoints": ["n0", "n5"]},
        {"name": "c11", "endpoints": ["n2", "n7"]},
    ]
    e = embed(request(nodes, circuits), full_view(t))
    assert len(e.placement) == 10 and len(e.circuits) == 12
    assert_consistent(e, t)


def test_multipoint_circuit_when_part_of_the_network_is_full() -> None:
    # KTH's links have nothing free: the pruned graph falls apart, and the tree is built in
    # the part the endpoints are in (this raised KeyError inside networkx once).
    t = topo("federica")
    view = full_view(t)
    full = dataclasses.replace(
        view,
        links=[
            dataclasses.replace(lk, bw_free=0) if "kth" in (lk.a_device + lk.b_device) else lk
            for lk in view.links
        ],
    )
    req = request(
        [{"name": "a", "pop": "PRG"}, {"name": "b", "pop": "MIL"}, {"name": "c", "pop": "NIIF"}],
        [{"name": "lan", "endpoints": ["a", "b", "c"], "bandwidth_mbps": 50}],
    )
    e = embed(req, full)
    assert not any("kth" in (h.link or "") for h in e.circuits["lan"].hops)
    assert_consistent(e, t)
