from __future__ import annotations

from federica.substrate.analysis import summarize
from federica.substrate.topology import Topology, parse_topology
from tests.conftest import EXAMPLES


def federica() -> Topology:
    return parse_topology((EXAMPLES / "topologies" / "federica.yaml").read_bytes())


def test_federica_facility_shape() -> None:
    s = summarize(federica())
    assert (s.pops, s.core_pops, s.core_links) == (14, 4, 6)
    assert s.core_full_mesh and s.all_pops_connected
    core = {"PRG", "ERL", "MIL", "PSN"}
    for a in s.attachments:
        if a.pop not in core:
            assert 1 <= len(set(a.neighbours) & core) <= 2, a


def test_missing_core_link_and_island_are_detected() -> None:
    topo = federica()
    links = [link for link in topo.links if link.name not in {"prg-erl", "mil-fccn"}]
    s = summarize(topo.model_copy(update={"links": links}))
    assert s.core_links == 5 and not s.core_full_mesh
    assert not s.all_pops_connected
    assert [a.pop for a in s.attachments if not a.connected_to_core] == ["FCCN"]
