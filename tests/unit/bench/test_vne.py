"""bench/vne.py (B3): the workload generator, the independent check of embeddings, the
simulation loop on a short run, the export format, the plot."""

from __future__ import annotations

import json
from pathlib import Path

import networkx as nx
import pytest
from lxml import etree

from bench import vne
from bench.svgplot import line_chart
from federica.slices.embed import CircuitMapping, Embedding, Hop


def test_a_seed_fixes_the_substrate_and_the_slices_at_every_rate() -> None:
    a, b, c = (
        vne.generate(3, 0.14, n=200),
        vne.generate(3, 0.14, n=200),
        vne.generate(3, 0.06, n=200),
    )
    assert nx.utils.graphs_equal(a.substrate, b.substrate) and a.requests == b.requests
    assert nx.utils.graphs_equal(a.substrate, c.substrate)
    assert [(r.cpu, r.links) for r in a.requests] == [(r.cpu, r.links) for r in c.requests]
    assert a.requests[-1].arrival < c.requests[-1].arrival  # a higher rate arrives sooner
    g = a.substrate
    assert g.number_of_nodes() == 100 and nx.is_connected(g)
    assert all(50 <= d["cpu"] <= 100 for _, d in g.nodes(data=True))
    assert all(50 <= d["bw"] <= 100 for _, _, d in g.edges(data=True))
    for r in a.requests:
        assert 2 <= len(r.cpu) <= 10 and all(0 <= x <= 20 for x in r.cpu)
        assert all(0 <= bw <= 50 for _, _, bw in r.links)
        assert nx.is_connected(nx.Graph([(x, y) for x, y, _ in r.links])) or len(r.cpu) == 1
        assert r.start == r.arrival and set(r.pops) == {None}


def test_the_testbed_variant_pins_a_third_and_books_ahead() -> None:
    inst = vne.generate(1, 0.14, "testbed", n=300)
    pins = [p for r in inst.requests for p in r.pops]
    assert 0.2 < sum(p is not None for p in pins) / len(pins) < 0.4
    assert all(r.arrival <= r.start <= r.arrival + 500 for r in inst.requests)
    assert max(r.start - r.arrival for r in inst.requests) > 100


def test_the_check_catches_what_an_embedder_must_not_do() -> None:
    r = vne.VRequest(0, 0.0, 0.0, 10.0, (5, 5), (None, None), ((0, 1, 30),))
    cpu = {0: 10, 1: 10, 2: 10}
    bw = {"l0-1": 50, "l1-2": 50}

    def emb(h0: str, h1: str, links: list[str]) -> Embedding:
        hops = [Hop("x", "p", 1, lk) for lk in links]
        return Embedding({"n0": h0, "n1": h1}, {"c0": CircuitMapping("c0", 30, hops)})

    assert vne.check(r, emb("h0", "h1", ["l0-1"]), cpu, bw) == 10 + 30
    assert vne.check(r, emb("h0", "h2", ["l0-1", "l1-2"]), cpu, bw) == 10 + 60
    with pytest.raises(AssertionError, match="two nodes on one"):
        vne.check(r, emb("h0", "h0", []), cpu, bw)
    with pytest.raises(AssertionError, match="does not join"):
        vne.check(r, emb("h0", "h2", ["l0-1"]), cpu, bw)
    with pytest.raises(AssertionError, match="CPU over capacity"):
        vne.check(r, emb("h0", "h1", ["l0-1"]), {0: 4, 1: 10}, bw)
    with pytest.raises(AssertionError, match="over capacity"):
        vne.check(r, emb("h0", "h1", ["l0-1"]), cpu, {"l0-1": 20})


@pytest.mark.parametrize("variant", ["plain", "testbed"])
def test_a_short_run_of_every_embedder(variant: str) -> None:
    inst = vne.generate(0, 0.5, variant, n=120)  # a high rate, so some requests are refused
    runs = {name: vne.simulate(inst, name) for name in vne.EMBEDDERS}
    for run in runs.values():
        assert run.total == 120 and len(run.times_ms) == 120
        assert run.accepted + run.rejected_placement + run.rejected_routing == 120
        assert run.accepted > 0 and 0 < run.revenue <= run.cost
    assert runs["coordinated"].accepted >= runs["grc"].accepted
    s = vne.summarise(list(runs.values()))
    assert 0 < s.acceptance <= 1 and s.p50_ms <= s.p95_ms


def test_the_export_replays_the_same_workload(tmp_path: Path) -> None:
    inst = vne.generate(2, 0.14, "testbed", n=50)
    gml, events = vne.export(inst, tmp_path)
    g = nx.read_gml(gml, label="id")
    assert sorted(g.nodes) == sorted(inst.substrate.nodes)
    assert {frozenset(e) for e in g.edges} == {frozenset(e) for e in inst.substrate.edges}
    for v, d in inst.substrate.nodes(data=True):
        assert g.nodes[v]["cpu"] == d["cpu"] and g.nodes[v]["pop"] == d["pop"]
    doc = json.loads(events.read_text())
    assert doc["format"] == vne.FORMAT and doc["substrate"] == gml.name
    assert len(doc["requests"]) == 50 and len(doc["events"]) == 100
    times = [e["time"] for e in doc["events"]]
    assert times == sorted(times)
    first = doc["requests"][0]
    r = inst.requests[0]
    assert [n["cpu"] for n in first["nodes"]] == list(r.cpu)
    assert [(x["a"], x["b"], x["bw"]) for x in first["links"]] == list(r.links)
    assert [n.get("pop") for n in first["nodes"]] == list(r.pops)


def test_the_plot_is_an_svg_with_a_line_per_embedder() -> None:
    svg = line_chart(
        {"ours": [(0.04, 1.0), (0.14, 0.9)], "grc": [(0.04, 0.9), (0.14, 0.6)]},
        "eta", "acceptance", "t",
    )  # fmt: skip
    root = etree.fromstring(svg.encode())
    lines = root.findall("{http://www.w3.org/2000/svg}polyline")
    assert len(lines) == 3  # the axes and one per series
    assert "ours" in svg and "grc" in svg


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["--seeds", "0"], "--seeds: 0 is not >= 1"),
        (["--requests", "many"], "--requests: 'many' is not a whole number"),
        (["--jobs", "-2"], "--jobs: -2 is not >= 1"),
        (["--algorithms", "magic"], "--algorithms: unknown embedder 'magic'"),
        (["--variants", "lab"], "--variants: unknown variant 'lab'"),
    ],
)
def test_bad_arguments_are_named_and_nothing_runs(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        vne.main(argv)
    assert info.value.code == 2
    assert says in capsys.readouterr().err
