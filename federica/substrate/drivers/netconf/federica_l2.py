"""XML binding of the emulated devices' model: ietf-interfaces + federica-l2.

Used by the `ietf` driver to write configuration and by the emulator's device agent to
read it; netconfd validates it against the YANG modules in substrate/emulator/yang/.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from lxml import etree

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"
FL2 = "urn:federica:yang:federica-l2"


@dataclass(frozen=True)
class Attachment:
    port: str
    vlan: int


@dataclass(frozen=True)
class CrossConnect:
    name: str
    attachments: tuple[Attachment, ...]
    owner: str = ""
    enabled: bool = True
    bandwidth_mbps: int | None = None


@dataclass(frozen=True)
class DeviceConfig:
    """What the running datastore says about ports and L2 cross-connects."""

    port_enabled: Mapping[str, bool] = field(default_factory=dict)
    cross_connects: Mapping[str, CrossConnect] = field(default_factory=dict)


def _text(el: etree._Element | None, default: str = "") -> str:
    return (el.text or "").strip() if el is not None else default


def parse_config(xml: str | bytes | etree._Element) -> DeviceConfig:
    """Parse a <data>/<config> element (get-config reply) into a DeviceConfig."""
    root = (
        etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
        if not isinstance(xml, etree._Element)
        else xml
    )
    ports: dict[str, bool] = {}
    for itf in root.iter(f"{{{IF}}}interface"):
        name = _text(itf.find(f"{{{IF}}}name"))
        ports[name] = _text(itf.find(f"{{{IF}}}enabled"), "true") != "false"
    xcs: dict[str, dict[str, object]] = {}
    members: dict[str, list[Attachment]] = {}
    for xc in root.iter(f"{{{FL2}}}cross-connect"):
        parent = xc.getparent()
        if parent is None or parent.tag != f"{{{FL2}}}l2":
            continue  # the leafref leaf inside <attachment> has the same name
        name = _text(xc.find(f"{{{FL2}}}name"))
        bw = _text(xc.find(f"{{{FL2}}}bandwidth-mbps"))
        xcs[name] = {
            "owner": _text(xc.find(f"{{{FL2}}}owner")),
            "enabled": _text(xc.find(f"{{{FL2}}}enabled"), "true") != "false",
            "bandwidth_mbps": int(bw) if bw else None,
        }
    for att in root.iter(f"{{{FL2}}}attachment"):
        members.setdefault(_text(att.find(f"{{{FL2}}}cross-connect")), []).append(
            Attachment(
                _text(att.find(f"{{{FL2}}}interface")), int(_text(att.find(f"{{{FL2}}}vlan")))
            )
        )
    return DeviceConfig(
        port_enabled=ports,
        cross_connects={
            name: CrossConnect(
                name=name,
                attachments=tuple(sorted(members.get(name, []), key=lambda a: (a.port, a.vlan))),
                owner=str(v["owner"]),
                enabled=bool(v["enabled"]),
                bandwidth_mbps=v["bandwidth_mbps"],  # type: ignore[arg-type]
            )
            for name, v in xcs.items()
        },
    )


def _sub(
    parent: etree._Element, tag: str, text: str | None = None, **attrib: str
) -> etree._Element:
    el = etree.SubElement(parent, tag, attrib)
    if text is not None:
        el.text = text
    return el


def config_element() -> etree._Element:
    return etree.Element(f"{{{NC}}}config", nsmap={None: NC})  # type: ignore[dict-item]


def interfaces_config(ports: Mapping[str, bool]) -> etree._Element:
    """<config> with every port listed (as the emulator's startup configuration)."""
    cfg = config_element()
    itfs = _sub(cfg, f"{{{IF}}}interfaces")
    for name, enabled in ports.items():
        itf = _sub(itfs, f"{{{IF}}}interface")
        _sub(itf, f"{{{IF}}}name", name)
        t = etree.SubElement(itf, f"{{{IF}}}type", nsmap={"ianaift": IANAIFT})
        t.text = "ianaift:ethernetCsmacd"
        _sub(itf, f"{{{IF}}}enabled", "true" if enabled else "false")
    return cfg


def cross_connects_config(
    add: Iterable[CrossConnect] = (), remove: Iterable[CrossConnect] = ()
) -> etree._Element:
    """<config> that creates/replaces `add` and deletes `remove` (with their attachments)."""
    cfg = config_element()
    l2 = _sub(cfg, f"{{{FL2}}}l2")
    op = f"{{{NC}}}operation"
    for xc in remove:
        for a in xc.attachments:
            att = _sub(l2, f"{{{FL2}}}attachment", **{op: "remove"})
            _sub(att, f"{{{FL2}}}interface", a.port)
            _sub(att, f"{{{FL2}}}vlan", str(a.vlan))
        node = _sub(l2, f"{{{FL2}}}cross-connect", **{op: "remove"})
        _sub(node, f"{{{FL2}}}name", xc.name)
    for xc in add:
        node = _sub(l2, f"{{{FL2}}}cross-connect", **{op: "replace"})
        _sub(node, f"{{{FL2}}}name", xc.name)
        if xc.owner:
            _sub(node, f"{{{FL2}}}owner", xc.owner)
        _sub(node, f"{{{FL2}}}enabled", "true" if xc.enabled else "false")
        if xc.bandwidth_mbps is not None:
            _sub(node, f"{{{FL2}}}bandwidth-mbps", str(xc.bandwidth_mbps))
        for a in xc.attachments:
            att = _sub(l2, f"{{{FL2}}}attachment", **{op: "replace"})
            _sub(att, f"{{{FL2}}}interface", a.port)
            _sub(att, f"{{{FL2}}}vlan", str(a.vlan))
            _sub(att, f"{{{FL2}}}cross-connect", xc.name)
    return cfg


def to_xml(el: etree._Element) -> str:
    return str(etree.tostring(el, encoding="unicode"))
