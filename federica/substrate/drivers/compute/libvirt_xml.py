"""Pure: libvirt domain and volume XML for a node spec, and reading a node back from its
domain XML. No libvirt import, so it is tested (and golden-checked) without libvirt."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import asdict, dataclass

from lxml import etree

from federica.substrate.drivers.compute.base import InterfaceSpec, NodeSpec

META_NS = "https://federica.example/libvirt/1"
UUID_NS = uuid.UUID("5f0d6a8e-4b1c-4f43-9a55-0f3c2f1d7e11")


@dataclass(frozen=True)
class Networking:
    """How a node's interface reaches its circuit's VLAN on the V-node.

    `ovs`: one Open vSwitch bridge on the uplink trunk, the port tagged with the VLAN.
    `bridge`: a Linux bridge per VLAN, named by `bridge_template` (e.g. "br{vlan}"), that
    the V-node's operator bridges onto the uplink's VLAN sub-interface."""

    mode: str = "ovs"
    bridge: str = "br-uplink"
    bridge_template: str = "br{vlan}"
    internal_template: str = "brs{segment}"  # a circuit that stays on this V-node


def mac_of(node_id: str, ifname: str) -> str:
    """A stable locally administered MAC (52:54:00 is QEMU's prefix)."""
    h = hashlib.sha256(f"{node_id}/{ifname}".encode()).digest()
    return "52:54:00:" + ":".join(f"{b:02x}" for b in h[:3])


def domain_uuid(host: str, node_id: str) -> str:
    return str(uuid.uuid5(UUID_NS, f"{host}/{node_id}"))


def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
    el = etree.SubElement(parent, tag, attrs)
    if text is not None:
        el.text = text
    return el


def _interface(devices: etree._Element, spec: NodeSpec, i: InterfaceSpec, net: Networking) -> None:
    segment = hashlib.sha1(i.segment.encode()).hexdigest()[:8]  # noqa: S324
    if i.vlan and net.mode == "ovs":
        iface = _sub(devices, "interface", type="bridge")
        _sub(iface, "source", bridge=net.bridge)
        _sub(iface, "virtualport", type="openvswitch")
        vlan = _sub(iface, "vlan")
        _sub(vlan, "tag", id=str(i.vlan))
    else:
        name = (
            net.bridge_template.format(vlan=i.vlan)
            if i.vlan
            else net.internal_template.format(segment=segment)
        )
        iface = _sub(devices, "interface", type="bridge")
        _sub(iface, "source", bridge=name)
    _sub(iface, "mac", address=mac_of(spec.id, i.name))
    _sub(iface, "model", type="virtio")
    _sub(iface, "alias", name=f"ua-{i.name}")


def domain_xml(
    spec: NodeSpec, host: str, disk_path: str, *, domain_type: str, net: Networking
) -> str:
    dom = etree.Element("domain", type=domain_type)
    _sub(dom, "name", spec.id)
    _sub(dom, "uuid", domain_uuid(host, spec.id))
    _sub(dom, "title", f"{spec.slice}/{spec.name}")
    meta = _sub(dom, "metadata")
    node = etree.SubElement(meta, f"{{{META_NS}}}node", nsmap={"federica": META_NS})
    node.text = json.dumps(asdict(spec), sort_keys=True)
    _sub(dom, "memory", str(spec.ram_mb), unit="MiB")
    _sub(dom, "vcpu", str(spec.vcpu))
    os_ = _sub(dom, "os")
    _sub(os_, "type", "hvm", arch="x86_64")
    _sub(os_, "boot", dev="hd")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type="qcow2")
    _sub(disk, "source", file=disk_path)
    _sub(disk, "target", dev="vda", bus="virtio")
    for i in spec.interfaces:
        _interface(devices, spec, i, net)
    serial = _sub(devices, "serial", type="pty")
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="pty")
    _sub(console, "target", type="serial", port="0")
    return etree.tostring(dom, pretty_print=True).decode()


def volume_xml(name: str, capacity_mb: int, backing_path: str) -> str:
    """A copy-on-write disk over the image's base volume."""
    vol = etree.Element("volume")
    _sub(vol, "name", name)
    _sub(vol, "capacity", str(capacity_mb), unit="MiB")
    target = _sub(vol, "target")
    _sub(target, "format", type="qcow2")
    backing = _sub(vol, "backingStore")
    _sub(backing, "path", backing_path)
    _sub(backing, "format", type="qcow2")
    return etree.tostring(vol, pretty_print=True).decode()


def spec_from_domain(xml: str) -> NodeSpec | None:
    """The spec federica stored in the domain's metadata (None: not one of ours)."""
    root = etree.fromstring(xml.encode())
    found = root.find(f"metadata/{{{META_NS}}}node")
    if found is None or not found.text:
        return None
    data = json.loads(found.text)
    data["interfaces"] = tuple(InterfaceSpec(**i) for i in data["interfaces"])
    data["ssh_keys"] = tuple(data["ssh_keys"])
    return NodeSpec(**data)
