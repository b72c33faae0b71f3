"""The libvirt compute driver: its domain XML (pure), and the shared conformance suite
against libvirt's built-in test driver (test:///default, no daemon, no hypervisor)."""

from __future__ import annotations

import pytest
from lxml import etree

from federica.substrate.drivers.compute import libvirt as libvirt_driver
from federica.substrate.drivers.compute.base import ComputeError, InterfaceSpec, NodeSpec
from federica.substrate.drivers.compute.libvirt_xml import (
    Networking,
    domain_xml,
    mac_of,
    spec_from_domain,
)
from tests.compute_conformance import ComputeConformance, Harness

SPEC = NodeSpec(
    "s7-r1",
    "lab",
    "r1",
    "router",
    2,
    2048,
    "frr",
    (
        InterfaceSpec("eth1", "c1", 120, "fed7-c1", "10.0.1.1/24"),
        InterfaceSpec("eth2", "inside", 0, "fed7-inside", "10.0.2.1/24"),
    ),
    ("ssh-ed25519 AAAA... a@b",),
)


def test_domain_xml_puts_each_interface_on_its_circuit_vlan() -> None:
    xml = domain_xml(SPEC, "prg-v1", "/pool/s7-r1.qcow2", domain_type="kvm", net=Networking())
    dom = etree.fromstring(xml.encode())
    assert dom.get("type") == "kvm" and dom.findtext("name") == "s7-r1"
    assert dom.findtext("vcpu") == "2" and dom.find("memory").text == "2048"  # type: ignore[union-attr]
    ovs, inside = dom.findall("devices/interface")
    assert ovs.find("source").get("bridge") == "br-uplink"  # type: ignore[union-attr]
    assert ovs.find("virtualport").get("type") == "openvswitch"  # type: ignore[union-attr]
    assert ovs.find("vlan/tag").get("id") == "120"  # type: ignore[union-attr]
    assert ovs.find("mac").get("address") == mac_of("s7-r1", "eth1")  # type: ignore[union-attr]
    # A circuit inside the V-node: a bridge of its own, no tag.
    assert inside.find("vlan") is None
    assert inside.find("source").get("bridge").startswith("brs")  # type: ignore[union-attr]
    assert dom.find("devices/disk/source").get("file") == "/pool/s7-r1.qcow2"  # type: ignore[union-attr]
    assert spec_from_domain(xml) == SPEC  # the spec rides along in the metadata


def test_linux_bridge_mode_names_a_bridge_per_vlan() -> None:
    net = Networking("bridge", bridge_template="vl{vlan}")
    dom = etree.fromstring(domain_xml(SPEC, "h", "/d", domain_type="kvm", net=net).encode())
    first = dom.findall("devices/interface")[0]
    assert first.find("source").get("bridge") == "vl120"  # type: ignore[union-attr]
    assert first.find("virtualport") is None


def test_macs_are_stable_and_distinct() -> None:
    assert mac_of("s1-a", "eth1") == mac_of("s1-a", "eth1") != mac_of("s1-a", "eth2")
    assert mac_of("s1-a", "eth1").startswith("52:54:00:")


def test_someone_elses_domain_is_not_ours() -> None:
    assert spec_from_domain("<domain type='kvm'><name>web</name></domain>") is None


needs_libvirt = pytest.mark.skipif(
    not libvirt_driver.available(),
    reason="the libvirt Python binding is not installed (make setup-test installs it)",
)


@pytest.fixture
def harness() -> Harness:
    if not libvirt_driver.available():
        pytest.skip("the libvirt Python binding is not installed (make setup-test installs it)")
    import libvirt

    conn = libvirt.open("test:///default")  # one shared in-memory host per process
    pool = conn.storagePoolLookupByName("default-pool")
    for image in ("debian", "frr", "bird"):
        if f"{image}.qcow2" not in pool.listVolumes():
            pool.createXML(
                f"<volume><name>{image}.qcow2</name><capacity unit='MiB'>64</capacity>"
                "<target><format type='qcow2'/></target></volume>",
                0,
            )

    def open_driver() -> libvirt_driver.LibvirtCompute:
        return libvirt_driver.LibvirtCompute(
            "test-v1", "test:///default", domain_type="test", pool="default-pool"
        )

    def residue(node: str) -> list[str]:
        left = [d.name() for d in conn.listAllDomains(0) if d.name() == node]
        left += [v for v in pool.listVolumes() if v == f"{node}.qcow2"]
        return left

    return Harness(open_driver=open_driver, residue=residue, runs_commands=False)


@needs_libvirt
class TestLibvirtCompute(ComputeConformance):
    pass


@needs_libvirt
def test_domains_that_are_not_ours_are_left_alone(harness: Harness) -> None:
    d = harness.open_driver()
    assert "test" not in d.nodes()  # the test driver's own sample domain
    with pytest.raises(ComputeError, match="no such node"):
        d.boot("test")


@needs_libvirt
def test_unreachable_libvirt_is_a_compute_error_naming_the_uri() -> None:
    d = libvirt_driver.LibvirtCompute("far-v1", "test:///nonexistent/path.xml")
    with pytest.raises(ComputeError, match="cannot reach libvirt at test:///nonexistent"):
        d.nodes()


def test_an_unknown_networking_mode_is_named() -> None:
    from federica.config import Settings
    from federica.substrate.drivers.compute import registry
    from federica.substrate.drivers.compute.fake import FakeLab

    drivers = registry.compute_drivers(FakeLab())
    with pytest.raises(ComputeError, match="FEDERICA_LIBVIRT_NETWORKING: expected ovs or bridge"):
        registry.create(drivers, "libvirt", "v1", Settings(libvirt_networking="vlan"))
