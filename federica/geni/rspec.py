"""GENI RSpec v3: a request RSpec read into a slice request, advertisement and manifest
RSpecs written, each checked against the GENI v3 XML Schemas vendored in schemas/.

The request schema is GENI v3's own (schemas/geni-v3). For advertisements and manifests
no GENI v3 copy survives, but GENI v3 is ProtoGENI v2 under a new namespace (see
schemas/README.md): the PG v2 files (schemas/pgv2) are loaded with their namespace
renamed in memory. Nothing is ever fetched over the network.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree

from federica.geni import urns
from federica.geni.codes import Code, GeniError

NS = "http://www.geni.net/resources/rspec/3"
PG2 = "http://www.protogeni.net/resources/rspec/2"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
SHARED_VLAN = "http://www.protogeni.net/resources/rspec/ext/shared-vlan/1"
SCHEMAS = Path(__file__).parent / "schemas"
MAX_RSPEC_BYTES = 1_000_000
NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")
SLIVER_TYPES = {"router": "router", "host": "host", "default-vm": "host"}
DEFAULT_MBPS = 100
MAX_MBPS = 100_000

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)


def _q(tag: str) -> str:
    return f"{{{NS}}}{tag}"


class _Renamed(etree.Resolver):
    """Serves the PG v2 schema files (the relative includes too) as GENI v3."""

    def resolve(self, system_url: str, public_id: str, context: Any = None) -> Any:
        path = SCHEMAS / "pgv2" / Path(system_url).name
        if not path.is_file():
            return None
        return self.resolve_string(path.read_text().replace(PG2, NS), context)  # type: ignore[call-arg]


@functools.cache
def schema(kind: str) -> etree.XMLSchema:
    """The XML Schema of an rspec@type: request, advertisement or manifest."""
    if kind == "request":
        return etree.XMLSchema(etree.parse(str(SCHEMAS / "geni-v3" / "request.xsd"), _PARSER))
    top = {"advertisement": "ad.xsd", "manifest": "manifest.xsd"}[kind]
    parser = etree.XMLParser(resolve_entities=False, no_network=True)
    parser.resolvers.add(_Renamed())
    doc = etree.parse(str(SCHEMAS / "pgv2" / top), parser)
    return etree.XMLSchema(
        etree.fromstring(etree.tostring(doc).replace(PG2.encode(), NS.encode()), parser)
    )


def problems(doc: etree._Element, kind: str) -> list[str]:
    """Why `doc` is not a valid `kind` RSpec (empty: it is)."""
    s = schema(kind)
    if s.validate(doc):
        return []
    errors: Any = s.error_log
    return [f"line {e.line}: {e.message}" for e in errors][:10]


# -- request ---------------------------------------------------------------------------


@dataclass
class Parsed:
    """A request RSpec as a slice request document (without window and name)."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    circuits: list[dict[str, Any]] = field(default_factory=list)
    vlans: dict[str, int] = field(default_factory=dict)  # circuit -> the tag asked for


def parse_request(
    text: str, *, am_urn: str, authority: str, host_pops: Mapping[str, str]
) -> Parsed:
    """BADARGS for what is malformed; SEARCHFAILED for a component (manager) that is not
    here."""
    if not isinstance(text, str) or not text.strip():
        raise GeniError(Code.BADARGS, "rspec: a request RSpec (XML text) is required")
    if len(text.encode()) > MAX_RSPEC_BYTES:
        raise GeniError(Code.TOOBIG, "rspec: larger than 1 MB")
    try:
        doc = etree.fromstring(text.encode(), parser=_PARSER)
    except etree.XMLSyntaxError as exc:
        raise GeniError(Code.BADARGS, f"rspec: not well-formed XML ({exc})") from None
    if doc.tag != _q("rspec") or doc.get("type") != "request":
        raise GeniError(
            Code.BADARGS, f'rspec: not a GENI v3 request (<rspec type="request" xmlns="{NS}">)'
        )
    found = problems(doc, "request")
    if found:
        raise GeniError(Code.BADARGS, "rspec: not a valid GENI v3 request: " + "; ".join(found))
    out = Parsed()
    iface_node: dict[str, str] = {}
    for node in doc.iterfind(_q("node")):
        name = _name(node.get("client_id", ""), "node")
        _ours(node.get("component_manager_id"), am_urn, f"node {name}")
        entry: dict[str, Any] = {"name": name}
        cid = node.get("component_id")
        if cid:
            urn = urns.parse(cid, "node")
            if urn is None or urn.authority != authority or urn.name not in host_pops:
                raise GeniError(Code.SEARCHFAILED, f"node {name}: no component {cid} here")
            entry["pop"] = host_pops[urn.name]
        if node.get("exclusive", "false").lower() in ("true", "1"):
            raise GeniError(
                Code.UNSUPPORTED,
                f"node {name}: exclusive nodes are not offered here (virtual nodes only; "
                'use exclusive="false")',
            )
        sliver = node.find(_q("sliver_type"))
        if sliver is not None:
            kind = SLIVER_TYPES.get(sliver.get("name", ""))
            if kind is None:
                raise GeniError(
                    Code.BADARGS,
                    f"node {name}: sliver_type {sliver.get('name', '')[:40]!r} is not offered; "
                    f"offered: {', '.join(SLIVER_TYPES)}",
                )
            entry["kind"] = kind
            image = sliver.find(_q("disk_image"))
            if image is not None and image.get("name"):
                entry["image"] = image.get("name", "").rsplit("+", 1)[-1][:64]
        for iface in node.iterfind(_q("interface")):
            iid = iface.get("client_id", "")
            if iid in iface_node:
                raise GeniError(Code.BADARGS, f"interface {iid[:64]!r} is declared twice")
            iface_node[iid] = name
        out.nodes.append(entry)
    if not out.nodes:
        raise GeniError(Code.BADARGS, "rspec: the request has no node")
    for link in doc.iterfind(_q("link")):
        name = _name(link.get("client_id", ""), "link")
        for cm in link.iterfind(_q("component_manager")):
            _ours(cm.get("name"), am_urn, f"link {name}")
        ends: list[str] = []
        for ref in link.iterfind(_q("interface_ref")):
            iid = ref.get("client_id", "")
            if iid not in iface_node:
                raise GeniError(Code.BADARGS, f"link {name}: no interface {iid[:64]!r} on a node")
            ends.append(iface_node[iid])
        kbps = [_capacity(p.get("capacity"), name) for p in link.iterfind(_q("property"))]
        mbps = max((math.ceil(k / 1000) for k in kbps if k is not None), default=DEFAULT_MBPS)
        if mbps > MAX_MBPS:
            raise GeniError(
                Code.INSUFFICIENT_BANDWIDTH,
                f"link {name}: {mbps} Mb/s is more than any link carries",
            )
        out.circuits.append({"name": name, "endpoints": ends, "bandwidth_mbps": max(1, mbps)})
        shared = link.find(f"{{{SHARED_VLAN}}}link_shared_vlan")
        if shared is not None and shared.get("vlantag"):
            tag = shared.get("vlantag", "")
            if not tag.isdigit() or not 1 <= int(tag) <= 4094:
                raise GeniError(Code.BADARGS, f"link {name}: vlantag {tag[:10]!r} is not 1..4094")
            out.vlans[name] = int(tag)
    return out


def _name(text: str, what: str) -> str:
    if not NAME.match(text):
        raise GeniError(
            Code.BADARGS,
            f"{what} client_id {text[:40]!r}: here a name is lower-case letters, digits and "
            "'-', starting with a letter, at most 32",
        )
    return text


def _ours(cm: str | None, am_urn: str, what: str) -> None:
    if cm and cm != am_urn:
        raise GeniError(
            Code.SEARCHFAILED,
            f"{what}: component manager {cm[:120]} is not this aggregate ({am_urn})",
        )


def _capacity(text: str | None, link: str) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit():
        raise GeniError(Code.BADARGS, f"link {link}: capacity {text[:20]!r} is not kb/s")
    return int(text)


# -- advertisement and manifest --------------------------------------------------------


def _root(kind: str, now: dt.datetime, expires: dt.datetime | None = None) -> etree._Element:
    xsd = {"advertisement": "ad.xsd", "manifest": "manifest.xsd"}[kind]
    root = etree.Element(_q("rspec"), nsmap={None: NS, "xsi": XSI})  # type: ignore[dict-item]
    root.set(f"{{{XSI}}}schemaLocation", f"{NS} {NS}/{xsd}")
    root.set("type", kind)
    root.set("generated", _stamp(now))
    root.set("generated_by", "federica")
    if expires is not None:
        root.set("expires", _stamp(expires))
    return root


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class AdHost:
    name: str
    pop: str
    country: str
    latitude: float
    longitude: float
    available: bool


@dataclass(frozen=True)
class AdLink:
    name: str
    a: str  # device:port
    b: str
    free_kbps: int


def advertisement(
    *,
    am_urn: str,
    authority: str,
    hosts: Sequence[AdHost],
    links: Sequence[AdLink],
    now: dt.datetime,
) -> bytes:
    root = _root("advertisement", now)
    for h in hosts:
        node = etree.SubElement(
            root,
            _q("node"),
            component_id=urns.make(authority, "node", h.name),
            component_manager_id=am_urn,
            component_name=h.name,
            exclusive="false",
        )
        for sliver, image in (("router", "frr"), ("host", "debian")):
            st = etree.SubElement(node, _q("sliver_type"), name=sliver)
            etree.SubElement(st, _q("disk_image"), name=image)
        etree.SubElement(
            node,
            _q("location"),
            country=h.country or "XX",
            latitude=f"{h.latitude:.4f}",
            longitude=f"{h.longitude:.4f}",
        )
        etree.SubElement(node, _q("available"), now="true" if h.available else "false")
    for lk in links:
        link = etree.SubElement(
            root,
            _q("link"),
            component_id=urns.make(authority, "link", lk.name),
            component_name=lk.name,
        )
        etree.SubElement(link, _q("component_manager"), name=am_urn)
        a, b = (urns.make(authority, "interface", p.replace(":", "-")) for p in (lk.a, lk.b))
        etree.SubElement(link, _q("interface_ref"), component_id=a)
        etree.SubElement(link, _q("interface_ref"), component_id=b)
        for src, dst in ((a, b), (b, a)):
            etree.SubElement(
                link, _q("property"), source_id=src, dest_id=dst, capacity=str(lk.free_kbps)
            )
        etree.SubElement(link, _q("link_type"), name="lan")
    return _checked(root, "advertisement")


@dataclass(frozen=True)
class ManifestNode:
    name: str
    host: str
    kind: str
    image: str
    sliver_urn: str
    interfaces: Sequence[tuple[str, str]]  # (interface name, address/prefix)


@dataclass(frozen=True)
class ManifestLink:
    name: str
    sliver_urn: str
    vlan: int
    mbps: int
    interfaces: Sequence[str]  # node:interface


@dataclass(frozen=True)
class Login:
    hostname: str
    port: int
    username: str


def manifest(
    *,
    am_urn: str,
    authority: str,
    nodes: Sequence[ManifestNode],
    links: Sequence[ManifestLink],
    login: Login | None,
    expires: dt.datetime,
    now: dt.datetime,
) -> bytes:
    root = _root("manifest", now, expires)
    for n in nodes:
        node = etree.SubElement(
            root,
            _q("node"),
            client_id=n.name,
            component_id=urns.make(authority, "node", n.host),
            component_manager_id=am_urn,
            sliver_id=n.sliver_urn,
            exclusive="false",
        )
        st = etree.SubElement(node, _q("sliver_type"), name=n.kind)
        etree.SubElement(st, _q("disk_image"), name=n.image)
        for ifname, cidr in n.interfaces:
            iface = etree.SubElement(node, _q("interface"), client_id=f"{n.name}:{ifname}")
            address, prefix = cidr.split("/")
            etree.SubElement(
                iface, _q("ip"), address=address, netmask=_netmask(int(prefix)), type="ipv4"
            )
        if login is not None:
            services = etree.SubElement(node, _q("services"))
            # The gateway takes the node's name as its command (see substrate/gateway.py).
            etree.SubElement(
                services,
                _q("login"),
                authentication="ssh-keys",
                hostname=login.hostname,
                port=str(login.port),
                username=login.username,
            )
    for lk in links:
        link = etree.SubElement(
            root, _q("link"), client_id=lk.name, sliver_id=lk.sliver_urn, vlantag=str(lk.vlan)
        )
        etree.SubElement(link, _q("component_manager"), name=am_urn)
        for ref in lk.interfaces:
            etree.SubElement(link, _q("interface_ref"), client_id=ref)
        for src in lk.interfaces:
            for dst in lk.interfaces:
                if src != dst:
                    etree.SubElement(
                        link,
                        _q("property"),
                        source_id=src,
                        dest_id=dst,
                        capacity=str(lk.mbps * 1000),
                    )
    return _checked(root, "manifest")


def _netmask(prefix: int) -> str:
    bits = (0xFFFFFFFF << (32 - prefix)) & 0xFFFFFFFF
    return ".".join(str((bits >> s) & 0xFF) for s in (24, 16, 8, 0))


def _checked(root: etree._Element, kind: str) -> bytes:
    # What the aggregate says must pass the schema it names; a failure is our bug.
    found = problems(root, kind)
    if found:
        raise GeniError(Code.SERVERERROR, f"the {kind} RSpec made here is invalid: {found}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
