"""The netns compute driver on a V-node of the real emulated facility: the shared
conformance suite, and what only a real namespace can show (packets, daemons, limits)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from federica.substrate.drivers.compute.base import InterfaceSpec, NodeSpec, NodeState
from federica.substrate.drivers.compute.netns import (
    NetnsCompute,
    bridge_name,
    for_emulated_host,
    namespace_of,
)
from federica.substrate.emulator import iproute
from tests.compute_conformance import ComputeConformance, Harness, run
from tests.integration.conftest import Facility, needs_root

pytestmark = [pytest.mark.integration, needs_root]
HOST = "prg-v1"


def residue(driver: NetnsCompute, node: str) -> list[str]:
    left = []
    ns = namespace_of(driver.plan, node)
    if ns in iproute.namespaces():
        left.append(f"namespace {ns}")
    if (driver.dir / node).exists():
        left.append(f"directory {driver.dir / node}")
    if driver.cgroups.exists(node):
        left.append(f"cgroup of {node}")
    host_links = {link["ifname"] for link in iproute.links(driver.plan.namespace)}
    extra = sorted(n for n in host_links if n.startswith(("bi", "bv", "n")))
    left += [f"link {n} in {driver.plan.namespace}" for n in extra]
    procs = subprocess.run(["pgrep", "-f", str(driver.dir / node) + "/"], capture_output=True)
    left += [f"process {p}" for p in procs.stdout.decode().split()]
    return left


@pytest.fixture
def harness(emulated_core4: Facility) -> Harness:
    def open_driver() -> NetnsCompute:
        return for_emulated_host(HOST, emulated_core4.settings)

    return Harness(open_driver=open_driver, residue=lambda n: residue(open_driver(), n))


class TestNetnsCompute(ComputeConformance):
    pass


def _node(node_id: str, image: str, *ifaces: InterfaceSpec) -> NodeSpec:
    kind = "router" if image in ("frr", "bird") else "host"
    return NodeSpec(node_id, "t", node_id, kind, 1, 256, image, ifaces)


def test_two_nodes_on_one_v_node_talk_over_an_internal_circuit(harness: Harness) -> None:
    d = harness.open_driver()
    assert isinstance(d, NetnsCompute)
    a = _node("nt-a", "debian", InterfaceSpec("eth1", "lan", 0, "fed0-lan", "10.0.1.1/24"))
    b = _node("nt-b", "debian", InterfaceSpec("eth1", "lan", 0, "fed0-lan", "10.0.1.2/24"))
    c = _node("nt-c", "debian", InterfaceSpec("eth1", "other", 0, "fed1-lan", "10.0.1.3/24"))
    for spec in (a, b, c):
        d.define(spec)
        d.boot(spec.id)
    try:
        ping = [*d.console(a.id), "ping", "-c", "1", "-W", "2"]
        assert subprocess.run([*ping, "10.0.1.2"], capture_output=True).returncode == 0
        # Same addresses, another circuit (another slice): not reachable.
        assert subprocess.run([*ping, "10.0.1.3"], capture_output=True).returncode != 0
    finally:
        for spec in (a, b, c):
            d.destroy(spec.id)
    for spec in (a, b, c):
        assert harness.residue(spec.id) == []
    host_links = {link["ifname"] for link in iproute.links(d.plan.namespace)}
    assert bridge_name(a.interfaces[0]) not in host_links


def _killing_a_daemon_fails_the_node(d: NetnsCompute, node_id: str, daemon: str) -> bool:
    """A daemon that dies makes the node FAILED, not silently RUNNING."""
    pid = int(Path(d.dir / node_id / f"{daemon}.pid").read_text())
    subprocess.run(["kill", "-9", str(pid)], check=True)
    deadline = time.monotonic() + 5
    while d.status(node_id) is not NodeState.FAILED and time.monotonic() < deadline:
        time.sleep(0.05)
    return d.status(node_id) is NodeState.FAILED


def test_router_runs_frr_in_its_namespace_with_its_limits(harness: Harness) -> None:
    d = harness.open_driver()
    assert isinstance(d, NetnsCompute)
    spec = _node("nt-r", "frr", InterfaceSpec("eth1", "x", 0, "fed0-x", "10.0.2.1/24"))
    d.define(spec)
    try:
        d.boot(spec.id)
        assert d.status(spec.id) is NodeState.RUNNING
        out = subprocess.run(
            [*d.console(spec.id), "vtysh", "-c", "show interface brief"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert "eth1" in out and "10.0.2.1/24" in out
        forwarding = subprocess.run(
            [*d.console(spec.id), "cat", "/proc/sys/net/ipv4/ip_forward"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert forwarding.strip() == "1"
        if d.cgroups.version:
            assert "1 CPU, 256 MiB" in (d.dir / spec.id / "limits").read_text()
            assert len(d.cgroups.pids(spec.id)) >= 5  # the daemons live in the node's cgroup
        assert _killing_a_daemon_fails_the_node(d, spec.id, "bgpd")
    finally:
        d.destroy(spec.id)
    assert harness.residue(spec.id) == []


def test_router_runs_bird_in_its_namespace_and_birdc_reaches_it(harness: Harness) -> None:
    d = harness.open_driver()
    assert isinstance(d, NetnsCompute)
    spec = _node("nt-b2", "bird", InterfaceSpec("eth1", "x", 0, "fed0-y", "10.0.3.1/24"))
    d.define(spec)
    try:
        d.boot(spec.id)
        assert d.status(spec.id) is NodeState.RUNNING
        birdc = [*d.console(spec.id), "birdc"]
        status = run([*birdc, "show", "status"])
        assert "BIRD 2" in status and "Router ID is 10.0.3.1" in status
        # Un-configured but ready for the researcher's own: the device protocol sees eth1.
        assert "eth1" in run([*birdc, "show", "interfaces"])
        assert run([*d.console(spec.id), "cat", "/proc/sys/net/ipv4/ip_forward"]).strip() == "1"
        if d.cgroups.version:
            assert d.cgroups.pids(spec.id)  # the daemon lives in the node's cgroup
        assert _killing_a_daemon_fails_the_node(d, spec.id, "bird")
    finally:
        d.destroy(spec.id)
    assert harness.residue(spec.id) == []


def test_a_define_cut_short_by_a_crash_is_seen_and_cleaned(harness: Harness) -> None:
    d = harness.open_driver()
    assert isinstance(d, NetnsCompute)
    # What a worker killed between making the node's directory and writing its spec leaves.
    (d.dir / "nt-crash").mkdir(parents=True)
    iproute.ip("netns", "add", namespace_of(d.plan, "nt-crash"))
    assert d.status("nt-crash") is NodeState.FAILED
    assert "nt-crash" in d.nodes()
    d.destroy("nt-crash")
    assert d.status("nt-crash") is NodeState.ABSENT
    assert harness.residue("nt-crash") == []
