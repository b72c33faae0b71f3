"""The reconciler is pure: configuration + observation → commands."""

from __future__ import annotations

from federica.substrate.drivers.base import Attachment, DeviceConfig, Segment
from federica.substrate.emulator.dataplane import Observed, bridge_ifname, reconcile
from federica.substrate.emulator.plan import DevicePlan, plan_facility
from federica.substrate.topology import parse_topology
from tests.conftest import EXAMPLES


def prg() -> DevicePlan:
    topo = parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes())
    return plan_facility(topo, "fed").device("prg-mx")


def booted(plan: DevicePlan) -> Observed:
    return Observed(up={p.ifname: True for p in plan.ports})


XC = Segment(
    "s1-c1", (Attachment("ge-0/0/0", 100), Attachment("ge-1/0/0", 100)), bandwidth_mbps=100
)


def test_new_cross_connect_creates_bridge_vxlans_and_shaping() -> None:
    plan = prg()
    ip, tc = reconcile(plan, DeviceConfig(segments={"s1-c1": XC}), booted(plan))
    br = bridge_ifname("s1-c1")
    u = plan.port("ge-0/0/0").underlay
    assert u is not None
    assert f"link add name {br} type bridge" in ip
    assert (
        f"link add name ge-0_0_0.100 mtu 1500 type vxlan id 100 local {u.local_ip} "
        f"remote {u.remote_ip} dstport {u.vxlan_port} dev ge-0_0_0"
    ) in ip
    assert f"link set dev ge-1_0_0.100 master {br}" in ip
    assert "link set dev ge-1_0_0.100 up" in ip
    assert len(tc) == 2 and all("tbf rate 100mbit" in line for line in tc)


def test_reconcile_is_idempotent() -> None:
    plan = prg()
    br = bridge_ifname("s1-c1")
    obs = booted(plan)
    obs.bridges = {br}
    obs.up |= {br: True, "ge-0_0_0.100": True, "ge-1_0_0.100": True}
    obs.vxlans = {"ge-0_0_0.100": br, "ge-1_0_0.100": br}
    obs.tbf_mbps = {"ge-0_0_0.100": 100, "ge-1_0_0.100": 100}
    assert reconcile(plan, DeviceConfig(segments={"s1-c1": XC}), obs) == ([], [])


def test_removed_cross_connect_is_deleted_and_disabled_one_goes_down() -> None:
    plan = prg()
    br = bridge_ifname("s1-c1")
    obs = booted(plan)
    obs.bridges = {br}
    obs.vxlans = {"ge-0_0_0.100": br, "ge-1_0_0.100": br}
    obs.up |= {br: True, "ge-0_0_0.100": True, "ge-1_0_0.100": True}
    ip, _ = reconcile(plan, DeviceConfig(), obs)
    assert ip == [
        "link delete dev ge-0_0_0.100",
        "link delete dev ge-1_0_0.100",
        f"link delete dev {br}",
    ]
    off = Segment(XC.name, XC.attachments, enabled=False)
    ip, tc = reconcile(plan, DeviceConfig(segments={"s1-c1": off}), obs)
    assert ip == ["link set dev ge-0_0_0.100 down", "link set dev ge-1_0_0.100 down"]
    assert tc == []


def test_port_admin_state_follows_enabled() -> None:
    plan = prg()
    ip, _ = reconcile(plan, DeviceConfig(port_enabled={"ge-0/0/1": False}), booted(plan))
    assert ip == ["link set dev ge-0_0_1 down"]


def test_attachment_on_a_border_port_goes_to_the_border_group() -> None:
    topo = parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes())
    plan = plan_facility(topo, "fed").device("psn-mx")
    ifname = plan.port("xe-2/0/0").ifname
    xc = Segment("b", (Attachment("xe-2/0/0", 3000), Attachment("ge-1/0/0", 3000)))
    ip, _ = reconcile(plan, DeviceConfig(segments={"b": xc}), booted(plan))
    (border,) = [line for line in ip if line.startswith(f"link add name {ifname}.3000 ")]
    assert "group 239.254.0.1 dstport 19000" in border and "remote" not in border
    assert "link add name ge-1_0_0.3000" in " ".join(ip)


def test_an_unplugged_port_follows_its_configuration_too() -> None:
    topo = parse_topology((EXAMPLES / "topologies" / "core4.yaml").read_bytes())
    plan = plan_facility(topo, "fed").device("psn-mx")
    ifname = plan.port("xe-2/0/0").ifname
    down = Observed(
        up={p.ifname: p.underlay is not None and not p.underlay.group for p in plan.ports}
    )
    # Enabled by hand: admin-up (without carrier), as a real device would be.
    ip, _ = reconcile(plan, DeviceConfig(port_enabled={"xe-2/0/0": True}), down)
    assert ip == [f"link set dev {ifname} up"]
    ip, _ = reconcile(plan, DeviceConfig(port_enabled={"xe-2/0/0": False}), down)
    assert ip == []
