"""The topology validator: every problem reported with its path; valid files parse."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from federica.errors import InvalidInput
from federica.substrate.topology import parse_topology, parse_vlan_range, validate_topology
from tests.conftest import DATA, EXAMPLES


def minimal() -> dict[str, Any]:
    return {
        "pops": [
            {"name": "A", "country": "CZ", "role": "core", "location": {"lat": 1, "lon": 2}},
            {"name": "B", "country": "IT", "role": "core", "location": {"lat": 3, "lon": 4}},
        ],
        "devices": [
            {
                "name": "a-mx",
                "pop": "A",
                "kind": "router",
                "driver": "ietf",
                "management": {"host": "127.0.0.1", "port": 1830},
                "ports": [
                    {"name": "ge-0/0/0", "speed_mbps": 1000},
                    {"name": "ge-1/0/0", "speed_mbps": 1000, "kind": "edge"},
                ],
            },
            {
                "name": "b-mx",
                "pop": "B",
                "kind": "router",
                "driver": "ietf",
                "management": {"host": "127.0.0.1", "port": 1831},
                "ports": [{"name": "ge-0/0/0", "speed_mbps": 1000}],
            },
        ],
        "links": [
            {
                "name": "a-b",
                "a": {"device": "a-mx", "port": "ge-0/0/0"},
                "b": {"device": "b-mx", "port": "ge-0/0/0"},
                "capacity_mbps": 1000,
                "vlans": "100-199",
            }
        ],
        "hosts": [
            {
                "name": "a-v1",
                "pop": "A",
                "uplink": {"device": "a-mx", "port": "ge-1/0/0"},
                "cpu_cores": 8,
                "ram_mb": 32768,
            }
        ],
    }


def problems(data: Any) -> list[str]:
    with pytest.raises(InvalidInput) as info:
        validate_topology(data)
    return [str(e) for e in info.value.errors]


def test_minimal_topology_is_valid() -> None:
    topo = validate_topology(minimal())
    assert [d.name for d in topo.devices] == ["a-mx", "b-mx"]
    assert topo.hosts[0].driver == "netns"


@pytest.mark.parametrize("name", ["federica.yaml", "core4.yaml"])
def test_example_topologies_are_valid(name: str) -> None:
    topo = parse_topology((EXAMPLES / "topologies" / name).read_bytes())
    assert topo.pops and topo.links and topo.hosts


def test_five_mistakes_give_five_messages_with_paths() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_topology((DATA / "five-mistakes.yaml").read_bytes())
    assert [str(e) for e in info.value.errors] == [
        "devices[2].name: duplicate name 'mil-mx' (first at devices[1])",
        "links[0].b: port 'ge-0/0/9' not found on device 'mil-mx'",
        "links[1].capacity_mbps: capacity must be positive, got 0",
        "links[1].vlans: VLAN range '0-5000' is outside 1..4094",
        "hosts[0].uplink: port 'ge-1/0/7' not found on device 'prg-mx'",
    ]


def test_port_used_by_two_links_names_first_user() -> None:
    data = minimal()
    data["links"].append(copy.deepcopy(data["links"][0]) | {"name": "a-b-2"})
    msgs = problems(data)
    assert "links[1].a: port a-mx:ge-0/0/0 is already used by link 'a-b' (links[0].a)" in msgs
    assert "links[1].b: port b-mx:ge-0/0/0 is already used by link 'a-b' (links[0].b)" in msgs


def test_dangling_references() -> None:
    data = minimal()
    data["devices"][1]["pop"] = "NOPE"
    data["links"][0]["a"]["device"] = "ghost"
    data["hosts"][0]["pop"] = "ZZZ"
    msgs = problems(data)
    assert "devices[1].pop: PoP 'NOPE' not found" in msgs
    assert "links[0].a.device: device 'ghost' not found" in msgs
    assert "hosts[0].pop: PoP 'ZZZ' not found" in msgs


def test_structural_errors_are_reported_with_paths_and_do_not_cascade() -> None:
    data = minimal()
    del data["devices"][1]["kind"]  # b-mx broken structurally …
    data["devices"][0]["ports"][0]["speed_mbps"] = "fast"
    data["pops"][0]["colour"] = "red"
    msgs = problems(data)
    assert "devices[1].kind: field required" in msgs
    assert any(
        m.startswith("devices[0].ports[0].speed_mbps: input should be a valid integer")
        for m in msgs
    )
    assert "pops[0].colour: unknown field" in msgs
    # … so the link to it is not also reported as "device 'b-mx' not found".
    assert not any("b-mx' not found" in m for m in msgs)


def test_vlan_ranges() -> None:
    assert parse_vlan_range("100-3999") == (100, 3999)
    assert parse_vlan_range(" 7 ") == (7, 7)
    assert parse_vlan_range("a-b") is None
    data = minimal()
    data["links"][0]["vlans"] = "300-200"
    assert problems(data) == ["links[0].vlans: VLAN range '300-200' is empty (start above end)"]
    data["links"][0]["vlans"] = "1-4095"
    assert problems(data) == ["links[0].vlans: VLAN range '1-4095' is outside 1..4094"]


def test_capacity_cannot_exceed_port_speed() -> None:
    data = minimal()
    data["links"][0]["capacity_mbps"] = 10_000
    assert problems(data) == [
        "links[0].capacity_mbps: 10000 Mb/s exceeds the 1000 Mb/s of port a-mx:ge-0/0/0",
        "links[0].capacity_mbps: 10000 Mb/s exceeds the 1000 Mb/s of port b-mx:ge-0/0/0",
    ]


def test_host_uplink_rules() -> None:
    data = minimal()
    data["hosts"][0]["uplink"] = {"device": "a-mx", "port": "ge-0/0/0"}  # used by the link
    msgs = problems(data)
    assert "hosts[0].uplink: port a-mx:ge-0/0/0 is already used by link 'a-b' (links[0].a)" in msgs
    assert "hosts[0].uplink: port a-mx:ge-0/0/0 is a internal port; edge expected here" in msgs
    data = minimal()
    data["hosts"][0]["pop"] = "B"
    assert problems(data) == [
        "hosts[0].uplink: device 'a-mx' is at PoP 'A', not at the host's PoP 'B'"
    ]


def test_border_ports_need_a_known_peer_and_vlans() -> None:
    data = minimal()
    data["devices"][0]["ports"].append({"name": "xe-2/0/0", "speed_mbps": 10000, "kind": "border"})
    data["devices"][1]["ports"].append(
        {"name": "xe-2/0/0", "speed_mbps": 10000, "kind": "border", "peer": "geni", "vlans": "1-10"}
    )
    data["devices"][1]["ports"][0]["vlans"] = "5-6"
    msgs = problems(data)
    assert "devices[0].ports[2].peer: a border port names the peer facility it faces" in msgs
    assert (
        "devices[0].ports[2].vlans: a border port needs the VLAN range agreed with its peer" in msgs
    )
    assert "devices[1].ports[1].peer: peer facility 'geni' not found" in msgs
    assert "devices[1].ports[0].vlans: only border ports have 'vlans'" in msgs


def test_translate_is_for_border_ports_of_translating_devices() -> None:
    data = minimal()
    data["peers"] = [{"name": "geni"}]
    border = {"name": "xe-2/0/0", "speed_mbps": 10000, "kind": "border", "peer": "geni",
              "vlans": "3000-3099", "translate": True}  # fmt: skip
    data["devices"][0]["ports"].append(border)
    data["devices"][1]["ports"][0]["translate"] = False
    msgs = problems(data)
    assert (
        "devices[0].ports[2].translate: device 'a-mx' cannot translate VLAN tags "
        "(vlan_translation: false)" in msgs
    )
    assert "devices[1].ports[0].translate: only border ports have 'translate'" in msgs
    data["devices"][0]["vlan_translation"] = True
    del data["devices"][1]["ports"][0]["translate"]
    topo = validate_topology(data)
    assert topo.devices[0].ports[2].translate is True


def test_duplicate_port_on_device_and_bad_names() -> None:
    data = minimal()
    data["devices"][0]["ports"].append({"name": "ge-0/0/0", "speed_mbps": 100})
    data["pops"][1]["name"] = "bad name!"
    msgs = problems(data)
    assert "devices[0].ports[2].name: duplicate port 'ge-0/0/0' on device 'a-mx'" in msgs
    assert any(m.startswith("pops[1].name: 'bad name!' is not a valid name") for m in msgs)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("pops: [\n", "not valid YAML: line 2, column 1"),
        ("- 1\n- 2\n", "the file must be a mapping"),
        ("pops: 3\n", "pops: must be a list"),
        ("routers: []\n", "routers: unknown section"),
    ],
)
def test_malformed_files(text: str, expected: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_topology(text)
    assert expected in str(info.value.errors[0])


def test_oversized_file_is_refused_before_parsing() -> None:
    big = "# " + "x" * (10 * 1024 * 1024) + "\n"
    with pytest.raises(InvalidInput, match="limit"):
        parse_topology(big)


def test_empty_file_is_an_empty_topology() -> None:
    topo = parse_topology("")
    assert topo.pops == [] and topo.links == []


def test_roundtrip_through_yaml_dump() -> None:
    topo = validate_topology(minimal())
    again = parse_topology(yaml.safe_dump(topo.model_dump(mode="json", exclude_none=True)))
    assert again == topo
