"""Topology files: the YAML format of the physical facility, parsed and checked.

Pure: no database. `parse_topology` returns a validated `Topology` or raises
`InvalidInput` listing EVERY problem with its path in the file, e.g.
`links[3].b: port 'ge-0/0/9' not found on device 'mil-mx'`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from federica import documents
from federica.errors import FieldError, InvalidInput
from federica.substrate.kinds import VLAN_MAX, VLAN_MIN, DeviceKind, PopRole, PortKind

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
PORT_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:-]{0,63}$"
DRIVER_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
FINGERPRINT_PATTERN = r"^SHA256:[A-Za-z0-9+/]{43}=?$"
VLAN_RANGE = re.compile(r"^\s*(\d+)\s*(?:-\s*(\d+)\s*)?$")
MAX_FILE_BYTES = 10 * 1024 * 1024

Name = Annotated[str, Field(pattern=NAME_PATTERN)]
PortName = Annotated[str, Field(pattern=PORT_NAME_PATTERN)]
Driver = Annotated[str, Field(pattern=DRIVER_PATTERN)]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=False)


class Location(Spec):
    lat: float
    lon: float


class PopSpec(Spec):
    name: Name
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")]
    role: PopRole
    site: str = ""
    location: Location


class Management(Spec):
    host: Annotated[str, Field(min_length=1, max_length=255)]
    port: int = 830


class PortSpec(Spec):
    name: PortName
    speed_mbps: int
    kind: PortKind = PortKind.INTERNAL
    description: str = ""
    # Border ports only: the peer facility faced and the VLAN range agreed with it.
    peer: Name | None = None
    vlans: str | None = None
    # Border ports only: may this port carry a circuit's border tag while the rest of the
    # circuit here uses another (the device rewrites the tag at the border)?
    translate: bool | None = None


class DeviceSpec(Spec):
    name: Name
    pop: Name
    kind: DeviceKind
    model: str = ""
    driver: Driver
    management: Management
    host_key: Annotated[str, Field(pattern=FINGERPRINT_PATTERN)] | None = None
    credentials: Name = "default"
    vlan_translation: bool = False
    ports: list[PortSpec] = Field(default_factory=list)


class PortRef(Spec):
    device: Name
    port: PortName

    def __str__(self) -> str:
        return f"{self.device}:{self.port}"


class LinkSpec(Spec):
    name: Name
    a: PortRef
    b: PortRef
    capacity_mbps: int
    vlans: str


class HostSpec(Spec):
    name: Name
    pop: Name
    uplink: PortRef
    cpu_cores: int
    ram_mb: int
    driver: Driver = "netns"


class PeerSpec(Spec):
    name: Name
    description: str = ""


class Topology(Spec):
    peers: list[PeerSpec] = Field(default_factory=list)
    pops: list[PopSpec] = Field(default_factory=list)
    devices: list[DeviceSpec] = Field(default_factory=list)
    links: list[LinkSpec] = Field(default_factory=list)
    hosts: list[HostSpec] = Field(default_factory=list)


SECTIONS: dict[str, type[Spec]] = {
    "peers": PeerSpec,
    "pops": PopSpec,
    "devices": DeviceSpec,
    "links": LinkSpec,
    "hosts": HostSpec,
}


def parse_vlan_range(text: str) -> tuple[int, int] | None:
    """'100-3999' or '42' → (min, max); None if not of that form."""
    m = VLAN_RANGE.match(text)
    if not m:
        return None
    lo = int(m.group(1))
    hi = int(m.group(2)) if m.group(2) else lo
    return lo, hi


def format_vlan_range(lo: int, hi: int) -> str:
    return str(lo) if lo == hi else f"{lo}-{hi}"


def load_yaml(text: str | bytes) -> Any:
    return documents.load_yaml(text, limit=MAX_FILE_BYTES)


def parse_topology(text: str | bytes) -> Topology:
    return validate_topology(load_yaml(text))


def validate_topology(data: Any) -> Topology:
    checker = _Checker()
    topo = checker.run(data)
    if checker.errors:
        raise InvalidInput(checker.errors, detail=f"{len(checker.errors)} problem(s) in topology")
    return topo


S = TypeVar("S", bound=Spec)


def _loc(prefix: str, loc: Sequence[int | str]) -> str:
    out = prefix
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


class _Checker:
    """Collects every problem; items that fail structurally are still counted as named."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []
        # Names seen in structurally broken items: suppress follow-on "not found" noise.
        self.broken_names: dict[str, set[str]] = defaultdict(set)

    def err(self, path: str, message: str) -> None:
        self.errors.append(FieldError(path, message))

    def run(self, data: Any) -> Topology:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            self.err("", f"the file must be a mapping with sections {', '.join(SECTIONS)}")
            return Topology()
        for key in data:
            if key not in SECTIONS:
                self.err(str(key), f"unknown section; expected one of {', '.join(SECTIONS)}")
        parsed: dict[str, list[Any]] = {}
        for section, spec in SECTIONS.items():
            parsed[section] = self._section(section, data.get(section), spec)
        topo = Topology.model_validate({k: [item for _, item in v] for k, v in parsed.items()})
        self._semantics(parsed)
        return topo

    def _section(self, section: str, raw: Any, spec: type[S]) -> list[tuple[int, S]]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            self.err(section, "must be a list")
            return []
        adapter = TypeAdapter(spec)
        items: list[tuple[int, S]] = []
        for i, entry in enumerate(raw):
            try:
                items.append((i, adapter.validate_python(entry)))
            except ValidationError as exc:
                for e in exc.errors():
                    self.err(_loc(f"{section}[{i}]", e["loc"]), _message(e))
                if isinstance(entry, Mapping) and isinstance(entry.get("name"), str):
                    self.broken_names[section].add(entry["name"])
        return items

    def _unique(self, section: str, items: Iterable[tuple[int, Spec]]) -> dict[str, int]:
        first: dict[str, int] = {}
        for i, item in items:
            name = item.name  # type: ignore[attr-defined]
            if name in first:
                self.err(
                    f"{section}[{i}].name",
                    f"duplicate name {name!r} (first at {section}[{first[name]}])",
                )
            else:
                first[name] = i
        return first

    def _known(
        self, section: str, names: Mapping[str, int], name: str, path: str, what: str
    ) -> bool:
        if name in names:
            return True
        if name not in self.broken_names[section]:
            self.err(path, f"{what} {name!r} not found")
        return False

    def _range(self, path: str, text: str) -> tuple[int, int] | None:
        parsed = parse_vlan_range(text)
        if parsed is None:
            self.err(path, f"{text!r} is not a VLAN range like '100-999'")
            return None
        lo, hi = parsed
        if not (VLAN_MIN <= lo <= VLAN_MAX and VLAN_MIN <= hi <= VLAN_MAX):
            self.err(path, f"VLAN range {text!r} is outside {VLAN_MIN}..{VLAN_MAX}")
            return None
        if lo > hi:
            self.err(path, f"VLAN range {text!r} is empty (start above end)")
            return None
        return parsed

    def _semantics(self, parsed: Mapping[str, list[Any]]) -> None:
        peers = self._unique("peers", parsed["peers"])
        pops = self._unique("pops", parsed["pops"])
        devices = self._unique("devices", parsed["devices"])
        self._unique("links", parsed["links"])
        hosts = self._unique("hosts", parsed["hosts"])
        # Devices and hosts are both nodes of the facility (and namespaces when emulated).
        for name, i in hosts.items():
            if name in devices:
                self.err(
                    f"hosts[{i}].name",
                    f"name {name!r} is already used by a device (devices[{devices[name]}])",
                )

        for i, pop in parsed["pops"]:
            if not -90 <= pop.location.lat <= 90:
                self.err(f"pops[{i}].location.lat", f"{pop.location.lat} is not a latitude")
            if not -180 <= pop.location.lon <= 180:
                self.err(f"pops[{i}].location.lon", f"{pop.location.lon} is not a longitude")

        ports: dict[tuple[str, str], PortSpec] = {}
        device_pop: dict[str, str] = {}
        for i, dev in parsed["devices"]:
            base = f"devices[{i}]"
            self._known("pops", pops, dev.pop, f"{base}.pop", "PoP")
            device_pop[dev.name] = dev.pop
            if not 1 <= dev.management.port <= 65535:
                self.err(f"{base}.management.port", f"{dev.management.port} is not a TCP port")
            seen: dict[str, int] = {}
            for j, port in enumerate(dev.ports):
                self._port(f"{base}.ports[{j}]", port, peers)
                if port.translate and not dev.vlan_translation:
                    self.err(
                        f"{base}.ports[{j}].translate",
                        f"device {dev.name!r} cannot translate VLAN tags (vlan_translation: false)",
                    )
                if port.name in seen:
                    self.err(
                        f"{base}.ports[{j}].name",
                        f"duplicate port {port.name!r} on device {dev.name!r}",
                    )
                else:
                    seen[port.name] = j
                ports.setdefault((dev.name, port.name), port)

        users: dict[tuple[str, str], str] = {}

        def use_port(path: str, ref: PortRef, user: str, want: PortKind) -> PortSpec | None:
            if not self._known("devices", devices, ref.device, f"{path}.device", "device"):
                return None
            port = ports.get((ref.device, ref.port))
            if port is None:
                self.err(path, f"port {ref.port!r} not found on device {ref.device!r}")
                return None
            key = (ref.device, ref.port)
            if key in users:
                self.err(path, f"port {ref} is already used by {users[key]}")
            else:
                users[key] = user
            if port.kind is not want:
                self.err(
                    path, f"port {ref} is a {port.kind.value} port; {want.value} expected here"
                )
            return port

        for i, link in parsed["links"]:
            base = f"links[{i}]"
            if link.a == link.b:
                self.err(f"{base}.b", f"both ends are port {link.a}")
            ends = [
                use_port(
                    f"{base}.{side}", ref, f"link {link.name!r} ({base}.{side})", PortKind.INTERNAL
                )
                for side, ref in (("a", link.a), ("b", link.b))
            ]
            if link.capacity_mbps <= 0:
                self.err(
                    f"{base}.capacity_mbps", f"capacity must be positive, got {link.capacity_mbps}"
                )
            else:
                for side, port in zip(("a", "b"), ends, strict=True):
                    if port is not None and link.capacity_mbps > port.speed_mbps:
                        self.err(
                            f"{base}.capacity_mbps",
                            f"{link.capacity_mbps} Mb/s exceeds the {port.speed_mbps} Mb/s "
                            f"of port {getattr(link, side)}",
                        )
            self._range(f"{base}.vlans", link.vlans)

        for i, host in parsed["hosts"]:
            base = f"hosts[{i}]"
            self._known("pops", pops, host.pop, f"{base}.pop", "PoP")
            port = use_port(
                f"{base}.uplink", host.uplink, f"host {host.name!r} ({base}.uplink)", PortKind.EDGE
            )
            uplink_pop = device_pop.get(host.uplink.device)
            if port is not None and uplink_pop is not None and uplink_pop != host.pop:
                self.err(
                    f"{base}.uplink",
                    f"device {host.uplink.device!r} is at PoP "
                    f"{uplink_pop!r}, not at the host's PoP {host.pop!r}",
                )
            if host.cpu_cores <= 0:
                self.err(f"{base}.cpu_cores", f"must be positive, got {host.cpu_cores}")
            if host.ram_mb <= 0:
                self.err(f"{base}.ram_mb", f"must be positive, got {host.ram_mb}")

    def _port(self, path: str, port: PortSpec, peers: Mapping[str, int]) -> None:
        if port.speed_mbps <= 0:
            self.err(f"{path}.speed_mbps", f"must be positive, got {port.speed_mbps}")
        if port.kind is PortKind.BORDER:
            if port.peer is None:
                self.err(f"{path}.peer", "a border port names the peer facility it faces")
            else:
                self._known("peers", peers, port.peer, f"{path}.peer", "peer facility")
            if port.vlans is None:
                self.err(f"{path}.vlans", "a border port needs the VLAN range agreed with its peer")
            else:
                self._range(f"{path}.vlans", port.vlans)
        else:
            for field in ("peer", "vlans", "translate"):
                if getattr(port, field) is not None:
                    self.err(f"{path}.{field}", f"only border ports have '{field}'")


def _message(error: Mapping[str, Any]) -> str:
    msg = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if error["type"] == "string_pattern_mismatch":
        return f"{error['input']!r} is not a valid name ({msg[0].lower()}{msg[1:]})"
    return msg[0].lower() + msg[1:]
