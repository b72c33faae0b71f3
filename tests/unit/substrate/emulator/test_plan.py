from __future__ import annotations

import ipaddress

import pytest

from federica.substrate.emulator.plan import (
    BORDER_GROUP,
    BORDER_UNDERLAY,
    IFNAMSIZ,
    PlanError,
    plan_facility,
    port_ifname,
    vlan_ifname,
)
from federica.substrate.topology import Topology, parse_topology
from tests.conftest import EXAMPLES


def federica() -> Topology:
    return parse_topology((EXAMPLES / "topologies" / "federica.yaml").read_bytes())


def test_every_link_and_uplink_is_a_wire_with_matching_ends() -> None:
    topo = federica()
    plan = plan_facility(topo, "fed")
    plugged = [w for w in plan.wires if w.plugged]
    assert len(plugged) == len(topo.links) + len(topo.hosts)
    ips = [ip for w in plugged for ip in (w.a_ip, w.b_ip)]
    assert len(ips) == len(set(ips)), "underlay addresses must be unique"
    for link in topo.links:
        a = plan.device(link.a.device).port(link.a.port).underlay
        b = plan.device(link.b.device).port(link.b.port).underlay
        assert a and b
        assert (a.local_ip, a.remote_ip) == (b.remote_ip, b.local_ip)
        assert a.vxlan_port == b.vxlan_port
    ports = [
        p.underlay.vxlan_port
        for d in plan.devices
        for p in d.ports
        if p.underlay and not p.underlay.group
    ]
    assert len(ports) == 2 * len(topo.links) + len(topo.hosts)


def test_unplugged_ports_still_get_an_interface() -> None:
    plan = plan_facility(federica(), "fed")
    border = plan.device("psn-mx").port("xe-2/0/0")
    # A border port: its far end waits for the border link; its VLANs go to the border
    # group, from an address both facilities can plan apart.
    assert border.underlay is not None
    assert (border.underlay.group, border.underlay.vxlan_port) == (BORDER_GROUP, 19000)
    assert ipaddress.ip_address(border.underlay.local_ip) in BORDER_UNDERLAY
    (wire,) = [w for w in plan.wires if w.a_if == border.ifname]
    assert not wire.plugged and wire.a_ip == border.underlay.local_ip
    other = plan_facility(federica(), "feb").device("psn-mx").port("xe-2/0/0")
    assert other.underlay is not None and other.underlay.local_ip != border.underlay.local_ip


def test_interface_names_fit_the_kernel_with_a_vlan_suffix() -> None:
    plan = plan_facility(federica(), "fed")
    for d in plan.devices:
        names = [p.ifname for p in d.ports]
        assert len(names) == len(set(names))
        for n in names:
            assert len(vlan_ifname(n, 4094)) <= IFNAMSIZ
    assert port_ifname("ge-0/0/0", 0, set()) == "ge-0_0_0"
    assert port_ifname("xe-10/1/12.300", 7, set()) == "p7"  # too long for '.vlan'
    assert port_ifname("ge-0/0/0", 3, {"ge-0_0_0"}) == "p3"


def test_namespaces_are_prefixed_and_the_prefix_is_checked() -> None:
    plan = plan_facility(federica(), "ft42")
    assert all(ns.startswith("ft42-") for ns in plan.namespaces)
    assert len(plan.namespaces) == 14 + 18
    with pytest.raises(PlanError):
        plan_facility(federica(), "Bad-Prefix")


def test_unplugged_ports_start_shut_down_and_plugged_ones_enabled() -> None:
    from federica.substrate.emulator.device import startup_ports

    topo = federica()
    plan = plan_facility(topo, "fed")
    ends = {(e.device, e.port) for link in topo.links for e in (link.a, link.b)}
    ends |= {(h.uplink.device, h.uplink.port) for h in topo.hosts}
    enabled = {(d.name, p) for d in plan.devices for p, on in startup_ports(d).items() if on}
    assert enabled == ends
    assert startup_ports(plan.device("psn-mx"))["xe-2/0/0"] is False
    assert startup_ports(plan.device("psn-mx"))["ge-0/0/0"] is True
