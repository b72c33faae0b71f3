"""Make a device namespace's data plane match its committed configuration.

`reconcile` is pure: (device plan, configuration, observed state) → ip/tc batch lines.
`observe` and `apply` do the I/O. Idempotent: a second pass with nothing changed emits
nothing. A cross-connect is a Linux bridge; each attachment (port, VLAN) a VXLAN device
with VNI = VLAN over the port's veth (see plan.py); bandwidth is a tbf on each attachment's
egress; `enabled: false` takes the attachments down but keeps them.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from federica.substrate.drivers.base import DeviceConfig
from federica.substrate.emulator import iproute
from federica.substrate.emulator.plan import DevicePlan, vlan_ifname, vxlan_add

log = logging.getLogger(__name__)
BRIDGE_PREFIX = "xc"


def bridge_ifname(cross_connect: str) -> str:
    return BRIDGE_PREFIX + hashlib.sha1(cross_connect.encode()).hexdigest()[:12]  # noqa: S324


def tbf_line(dev: str, mbps: int) -> str:
    # Burst: at least 4 ms of traffic and a few full frames, or tbf cannot reach the rate.
    burst = max(mbps * 1_000_000 // 8 // 250, 15_000)
    return f"qdisc replace dev {dev} root tbf rate {mbps}mbit burst {burst} latency 50ms"


@dataclass
class Observed:
    up: dict[str, bool] = field(default_factory=dict)  # every link: admin up?
    vxlans: dict[str, str | None] = field(default_factory=dict)  # ifname -> master
    bridges: set[str] = field(default_factory=set)
    tbf_mbps: dict[str, int] = field(default_factory=dict)


def observe(ns: str) -> Observed:
    obs = Observed()
    for link in iproute.links(ns):
        name = link["ifname"]
        obs.up[name] = "UP" in link.get("flags", [])
        kind = link.get("linkinfo", {}).get("info_kind")
        if kind == "vxlan":
            obs.vxlans[name] = link.get("master")
        elif kind == "bridge" and name.startswith(BRIDGE_PREFIX):
            obs.bridges.add(name)
    for q in iproute.qdiscs(ns):
        if q.get("kind") == "tbf" and q.get("root"):
            obs.tbf_mbps[q["dev"]] = int(q["options"]["rate"]) * 8 // 1_000_000
    return obs


@dataclass(frozen=True)
class Wanted:
    master: str
    up: bool
    vni: int
    port_ifname: str
    mbps: int | None


def reconcile(plan: DevicePlan, cfg: DeviceConfig, obs: Observed) -> tuple[list[str], list[str]]:
    ip: list[str] = []
    tc: list[str] = []
    by_port = {p.name: p for p in plan.ports}

    wanted_bridges: dict[str, str] = {}
    wanted: dict[str, Wanted] = {}
    for xc in cfg.segments.values():
        br = bridge_ifname(xc.name)
        wanted_bridges[br] = xc.name
        for att in xc.attachments:
            port = by_port.get(att.port)
            if port is None or port.underlay is None:
                log.warning(
                    "%s: %s uses port %s, which has nothing plugged in; skipped",
                    plan.name,
                    xc.name,
                    att.port,
                )
                continue
            wanted[vlan_ifname(port.ifname, att.vlan)] = Wanted(
                br, xc.enabled, att.vlan, port.ifname, xc.bandwidth_mbps
            )

    for dev in sorted(set(obs.vxlans) - set(wanted)):
        ip.append(f"link delete dev {dev}")
    for br in sorted(obs.bridges - set(wanted_bridges)):
        ip.append(f"link delete dev {br}")

    # Every port, plugged or not, is as its configuration says: an unplugged one enabled
    # by hand is admin-up without carrier, as on a real device.
    for port in plan.ports:
        enabled = cfg.port_enabled.get(port.name, True)
        if obs.up.get(port.ifname) != enabled:
            ip.append(f"link set dev {port.ifname} {'up' if enabled else 'down'}")

    for br, xc_name in sorted(wanted_bridges.items()):
        if br not in obs.bridges:
            ip.append(f"link add name {br} type bridge")
            ip.append(f"link set dev {br} alias xc:{xc_name}")
        if not obs.up.get(br):
            ip.append(f"link set dev {br} up")

    for dev, w in sorted(wanted.items()):
        port = next(p for p in plan.ports if p.ifname == w.port_ifname)
        assert port.underlay is not None
        u = port.underlay
        if dev not in obs.vxlans:
            ip.append(vxlan_add(dev, w.vni, u, port.ifname))
        if obs.vxlans.get(dev) != w.master:
            ip.append(f"link set dev {dev} master {w.master}")
        if obs.up.get(dev, False) != w.up:
            ip.append(f"link set dev {dev} {'up' if w.up else 'down'}")
        have = obs.tbf_mbps.get(dev)
        if w.mbps is not None and have != w.mbps:
            tc.append(tbf_line(dev, w.mbps))
        elif w.mbps is None and have is not None and dev in obs.vxlans:
            tc.append(f"qdisc delete dev {dev} root")
    return ip, tc


def apply(plan: DevicePlan, cfg: DeviceConfig) -> int:
    """Bring the namespace in line with `cfg`; returns how many commands it ran."""
    t0 = time.perf_counter()
    ip, tc = reconcile(plan, cfg, observe(plan.namespace))
    iproute.ip_batch(ip, ns=plan.namespace)
    iproute.tc_batch(tc, ns=plan.namespace)
    if ip or tc:
        log.info(
            "%s: applied %d ip and %d tc commands in %.1f ms",
            plan.name,
            len(ip),
            len(tc),
            (time.perf_counter() - t0) * 1000,
        )
    return len(ip) + len(tc)


def summary(obs: Observed) -> dict[str, Any]:
    return {"bridges": sorted(obs.bridges), "vxlans": dict(sorted(obs.vxlans.items()))}
