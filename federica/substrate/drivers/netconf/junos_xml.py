"""Junos XML for federica's segments: build the configuration, parse it back. Pure.

Each segment lives in its own configuration group `federica-<segment>`, applied with
`apply-groups`, so removal is exact (delete the group and its apply-groups entry) and an
operator sees at a glance what federica owns. Routers (MX, `style="mx"`) bridge logical
units in a bridge domain with `vlan-id none`, which lets units with different tags meet
(VLAN translation); switches (EX, `style="ex"`) use a VLAN whose members share one tag.
Bandwidth is a policer on each unit. Port admin state is `disable` on the physical
interface, outside any group.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from lxml import etree

from federica.substrate.drivers.base import Attachment, DeviceConfig, Segment
from federica.substrate.drivers.netconf.common import sub as _sub

Style = Literal["mx", "ex"]
GROUP_PREFIX = "federica-"
E = etree.Element


def group_name(segment: str) -> str:
    return GROUP_PREFIX + segment


def _unit(a: Attachment, style: Style) -> str:
    # EX: one logical unit 0 per port (trunk); MX: one unit per VLAN, named after it.
    return f"{a.port}.{a.vlan if style == 'mx' else 0}"


def segment_group(seg: Segment, style: Style) -> etree._Element:
    g = E("groups", replace="replace")
    _sub(g, "name", group_name(seg.name))
    ifs = _sub(g, "interfaces")
    for a in seg.attachments:
        itf = _sub(ifs, "interface")
        _sub(itf, "name", a.port)
        if style == "mx":
            _sub(itf, "flexible-vlan-tagging")
            _sub(itf, "encapsulation", "flexible-ethernet-services")
        unit = _sub(itf, "unit")
        _sub(unit, "name", str(a.vlan) if style == "mx" else "0")
        _sub(
            unit,
            "description",
            f"federica {seg.name}" + (f" owner {seg.owner}" if seg.owner else ""),
        )
        if not seg.enabled:
            _sub(unit, "disable")
        if style == "mx":
            # Service-provider style: the unit bridges its own tag; no family needed.
            _sub(unit, "encapsulation", "vlan-bridge")
            _sub(unit, "vlan-id", str(a.vlan))
            if seg.bandwidth_mbps is not None:
                _sub(_sub(unit, "layer2-policer"), "input-policer", group_name(seg.name))
        else:
            fam = _sub(_sub(unit, "family"), "ethernet-switching")
            _sub(fam, "interface-mode", "trunk")
            _sub(_sub(fam, "vlan"), "members", group_name(seg.name))
            if seg.bandwidth_mbps is not None:
                _sub(_sub(fam, "filter"), "input", group_name(seg.name))
    if seg.bandwidth_mbps is not None:
        fw = _sub(g, "firewall")
        pol = _sub(fw, "policer")
        _sub(pol, "name", group_name(seg.name))
        lim = _sub(pol, "if-exceeding")
        _sub(lim, "bandwidth-limit", f"{seg.bandwidth_mbps}m")
        _sub(lim, "burst-size-limit", f"{max(seg.bandwidth_mbps * 125 // 10, 15)}k")
        _sub(_sub(pol, "then"), "discard")
        if style == "ex":  # EX polices through a firewall filter that names the policer
            flt = _sub(_sub(fw, "family"), "ethernet-switching")
            f = _sub(flt, "filter")
            _sub(f, "name", group_name(seg.name))
            term = _sub(f, "term")
            _sub(term, "name", "police")
            _sub(_sub(term, "then"), "policer", group_name(seg.name))
    if style == "mx":
        dom = _sub(_sub(g, "bridge-domains"), "domain")
        _sub(dom, "name", group_name(seg.name))
        _sub(dom, "vlan-id", "none")
        for a in seg.attachments:
            _sub(_sub(dom, "interface"), "name", _unit(a, style))
    else:
        vlan = _sub(_sub(g, "vlans"), "vlan")
        _sub(vlan, "name", group_name(seg.name))
        _sub(vlan, "vlan-id", str(seg.attachments[0].vlan) if seg.attachments else "1")
    return g


def change_configuration(
    add: Iterable[Segment], remove: Iterable[str], ports: Iterable[tuple[str, bool]], style: Style
) -> etree._Element:
    """<configuration> for <load-configuration action="replace">: elements marked
    replace="replace" or delete="delete" are replaced or deleted, the rest merged."""
    cfg = E("configuration")
    for name in remove:
        g = _sub(cfg, "groups", delete="delete")
        _sub(g, "name", group_name(name))
        _sub(cfg, "apply-groups", group_name(name), delete="delete")
    for seg in add:
        cfg.append(segment_group(seg, style))
        _sub(cfg, "apply-groups", group_name(seg.name))
    port_list = list(ports)
    if port_list:
        ifs = _sub(cfg, "interfaces")
        for port, enabled in port_list:
            itf = _sub(ifs, "interface")
            _sub(itf, "name", port)
            if enabled:
                _sub(itf, "disable", delete="delete")
            else:
                _sub(itf, "disable")
    return cfg


def parse_configuration(root: etree._Element) -> DeviceConfig:
    """Segments (from federica groups) and port admin state from a <configuration>."""
    cfg = root if root.tag == "configuration" else root.find(".//configuration")
    if cfg is None:
        return DeviceConfig()
    applied = {el.text for el in cfg.findall("apply-groups")}
    segments: dict[str, Segment] = {}
    for g in cfg.findall("groups"):
        gname = g.findtext("name") or ""
        if not gname.startswith(GROUP_PREFIX) or gname not in applied:
            continue
        name = gname[len(GROUP_PREFIX) :]
        atts: list[Attachment] = []
        owner, enabled = "", True
        for itf in g.findall("interfaces/interface"):
            for unit in itf.findall("unit"):
                vlan = unit.findtext("vlan-id")
                if vlan is None:  # EX: the tag is the VLAN's
                    vlan = g.findtext("vlans/vlan/vlan-id") or "0"
                atts.append(Attachment(itf.findtext("name") or "", int(vlan)))
                desc = unit.findtext("description") or ""
                if " owner " in desc:
                    owner = desc.split(" owner ", 1)[1]
                if unit.find("disable") is not None:
                    enabled = False
        limit = g.findtext("firewall/policer/if-exceeding/bandwidth-limit")
        bw = int(limit.rstrip("m")) if limit else None
        segments[name] = Segment(name, tuple(atts), owner=owner, enabled=enabled, bandwidth_mbps=bw)
    ports = {
        itf.findtext("name") or "": itf.find("disable") is None
        for itf in cfg.findall("interfaces/interface")
    }
    return DeviceConfig(port_enabled=ports, segments=segments)


def get_configuration(database: Literal["committed", "candidate"]) -> etree._Element:
    rpc = E("get-configuration", database=database, format="xml")
    cfg = _sub(rpc, "configuration")
    for tag in ("groups", "apply-groups", "interfaces"):
        _sub(cfg, tag)
    return rpc


def load_configuration(configuration: etree._Element) -> etree._Element:
    rpc = E("load-configuration", action="replace", format="xml")
    rpc.append(configuration)
    return rpc


def commit_check() -> etree._Element:
    rpc = E("commit-configuration")
    _sub(rpc, "check")
    return rpc


def compare_rollback() -> etree._Element:
    return E("get-configuration", compare="rollback", rollback="0", format="text")


def rollback(n: int) -> etree._Element:
    return E("load-configuration", rollback=str(n))


def interface_information() -> etree._Element:
    rpc = E("get-interface-information")
    _sub(rpc, "terse")
    return rpc
