"""XML binding of the emulated devices' model: ietf-interfaces + federica-l2.

Used by the `ietf` driver to write configuration and by the emulator's device agent to
read it; netconfd validates it against the YANG modules in substrate/emulator/yang/.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lxml import etree

from federica.substrate.drivers.base import Attachment, Change, DeviceConfig, Segment
from federica.substrate.drivers.netconf.common import sub as _sub

NC = "urn:ietf:params:xml:ns:netconf:base:1.0"
IF = "urn:ietf:params:xml:ns:yang:ietf-interfaces"
IANAIFT = "urn:ietf:params:xml:ns:yang:iana-if-type"
FL2 = "urn:federica:yang:federica-l2"
OPERATION = f"{{{NC}}}operation"

# get-config filter: only what the driver manages.
FILTER = (
    f'<filter xmlns="{NC}" type="subtree"><interfaces xmlns="{IF}"/><l2 xmlns="{FL2}"/></filter>'
)


def _text(el: etree._Element | None, default: str = "") -> str:
    return (el.text or "").strip() if el is not None else default


def parse_config(xml: str | bytes | etree._Element) -> DeviceConfig:
    """Parse a <data>/<config> element (get-config reply) into a DeviceConfig."""
    if isinstance(xml, etree._Element):
        root = xml
    else:
        root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    ports: dict[str, bool] = {}
    for itf in root.iter(f"{{{IF}}}interface"):
        ports[_text(itf.find(f"{{{IF}}}name"))] = (
            _text(itf.find(f"{{{IF}}}enabled"), "true") != "false"
        )
    heads: dict[str, tuple[str, bool, int | None]] = {}
    for xc in root.iter(f"{{{FL2}}}cross-connect"):
        parent = xc.getparent()
        if parent is None or parent.tag != f"{{{FL2}}}l2":
            continue  # the leafref leaf inside <attachment> has the same name
        bw = _text(xc.find(f"{{{FL2}}}bandwidth-mbps"))
        heads[_text(xc.find(f"{{{FL2}}}name"))] = (
            _text(xc.find(f"{{{FL2}}}owner")),
            _text(xc.find(f"{{{FL2}}}enabled"), "true") != "false",
            int(bw) if bw else None,
        )
    members: dict[str, list[Attachment]] = {}
    for att in root.iter(f"{{{FL2}}}attachment"):
        members.setdefault(_text(att.find(f"{{{FL2}}}cross-connect")), []).append(
            Attachment(
                _text(att.find(f"{{{FL2}}}interface")), int(_text(att.find(f"{{{FL2}}}vlan")))
            )
        )
    return DeviceConfig(
        port_enabled=ports,
        segments={
            name: Segment(
                name, tuple(members.get(name, [])), owner=owner, enabled=enabled, bandwidth_mbps=bw
            )
            for name, (owner, enabled, bw) in heads.items()
        },
    )


def config_element() -> etree._Element:
    return etree.Element(f"{{{NC}}}config", nsmap={None: NC})  # type: ignore[dict-item]


def interfaces_config(ports: Mapping[str, bool]) -> etree._Element:
    """<config> listing every port (the emulator's startup configuration)."""
    cfg = config_element()
    itfs = _sub(cfg, f"{{{IF}}}interfaces")
    for name, enabled in ports.items():
        itf = _sub(itfs, f"{{{IF}}}interface")
        _sub(itf, f"{{{IF}}}name", name)
        t = etree.SubElement(itf, f"{{{IF}}}type", nsmap={"ianaift": IANAIFT})
        t.text = "ianaift:ethernetCsmacd"
        _sub(itf, f"{{{IF}}}enabled", "true" if enabled else "false")
    return cfg


def _remove_attachment(l2: etree._Element, a: Attachment) -> None:
    att = _sub(l2, f"{{{FL2}}}attachment", **{OPERATION: "remove"})
    _sub(att, f"{{{FL2}}}interface", a.port)
    _sub(att, f"{{{FL2}}}vlan", str(a.vlan))


def change_config(
    change: Change, current: DeviceConfig, *, current_is_complete: bool = True
) -> etree._Element | None:
    """The <config> for edit-config that makes `current` (the candidate) reflect `change`;
    None when there is nothing to do. Uses `remove`, so it is idempotent."""
    cfg = config_element()
    l2 = etree.Element(f"{{{FL2}}}l2", nsmap={None: FL2})  # type: ignore[dict-item]
    for name in change.remove:
        seg = current.segments.get(name)
        if seg is None:
            continue
        for a in seg.attachments:
            _remove_attachment(l2, a)
        node = _sub(l2, f"{{{FL2}}}cross-connect", **{OPERATION: "remove"})
        _sub(node, f"{{{FL2}}}name", name)
    for seg in change.add:
        old = current.segments.get(seg.name)
        if old == seg:
            continue
        for a in old.attachments if old else ():
            if a not in seg.attachments:
                _remove_attachment(l2, a)
        node = _sub(l2, f"{{{FL2}}}cross-connect", **{OPERATION: "replace"})
        _sub(node, f"{{{FL2}}}name", seg.name)
        if seg.owner:
            _sub(node, f"{{{FL2}}}owner", seg.owner)
        _sub(node, f"{{{FL2}}}enabled", "true" if seg.enabled else "false")
        if seg.bandwidth_mbps is not None:
            _sub(node, f"{{{FL2}}}bandwidth-mbps", str(seg.bandwidth_mbps))
        for a in seg.attachments:
            if old is not None and a in old.attachments:
                continue
            # "create": the device refuses a (port, VLAN) that another segment already holds.
            att = _sub(l2, f"{{{FL2}}}attachment", **{OPERATION: "create"})
            _sub(att, f"{{{FL2}}}interface", a.port)
            _sub(att, f"{{{FL2}}}vlan", str(a.vlan))
            _sub(att, f"{{{FL2}}}cross-connect", seg.name)
    added = {s.name for s in change.add}
    for name, enabled in change.segment_state:
        seg = current.segments.get(name)
        if name in added or seg is None or seg.enabled == enabled:
            continue
        node = _sub(l2, f"{{{FL2}}}cross-connect")
        _sub(node, f"{{{FL2}}}name", name)
        _sub(node, f"{{{FL2}}}enabled", "true" if enabled else "false")
    remaining = (set(current.segments) - set(change.remove)) | added
    if current_is_complete and not remaining and current.segments:
        # The last segment goes: remove the container too, so the device is as before.
        cfg.append(etree.Element(f"{{{FL2}}}l2", {OPERATION: "remove"}, nsmap={None: FL2}))  # type: ignore[dict-item]
    elif len(l2):
        cfg.append(l2)
    ports = [
        (p, e)
        for p, e in change.port_state
        if current.port_enabled.get(p, True) != e or p not in current.port_enabled
    ]
    if ports:
        itfs = etree.SubElement(cfg, f"{{{IF}}}interfaces", nsmap={None: IF})  # type: ignore[dict-item]
        for port, enabled in ports:
            itf = _sub(itfs, f"{{{IF}}}interface")
            _sub(itf, f"{{{IF}}}name", port)
            _sub(itf, f"{{{IF}}}enabled", "true" if enabled else "false")
    return cfg if len(cfg) else None


def to_xml(el: etree._Element) -> str:
    return str(etree.tostring(el, encoding="unicode"))


def segments_config(add: Sequence[Segment] = (), remove: Sequence[Segment] = ()) -> etree._Element:
    """<config> adding `add` and removing `remove` (given whole), for callers that know the
    segments and have no candidate to read (tests, benchmarks)."""
    el = change_config(
        Change(add=tuple(add), remove=tuple(s.name for s in remove)),
        DeviceConfig(segments={s.name: s for s in remove}),
        current_is_complete=False,  # other segments may exist: never drop the container
    )
    return el if el is not None else config_element()
