"""What is free on the substrate over a window: per link and per V-node, the least free
at any instant of it, and what maintenance blocks. For the portal's substrate page."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from federica.slices.calendar import Interval
from federica.slices.embed import TagPool
from federica.slices.index import index_for


@dataclass(frozen=True)
class LinkFree:
    name: str
    a_device: str
    b_device: str
    a_pop: str
    b_pop: str
    capacity_mbps: int
    free_mbps: int  # 0 while under maintenance
    vlans_free: int
    blocked: str  # the maintenance reason, or ""


@dataclass(frozen=True)
class HostFree:
    name: str
    pop: str
    cpu: int
    cpu_free: int
    ram_mb: int
    ram_free_mb: int
    blocked: str


@dataclass(frozen=True)
class Availability:
    window: Interval
    links: list[LinkFree]
    hosts: list[HostFree]
    blocked: dict[str, str]  # "link MIL-PRG" -> reason


def over(session: Session, window: Interval) -> Availability:
    index = index_for(session)
    sub = index.refresh(session, window.start)
    view = index.view(window)
    blocked = index.blocked(window)
    free_links = {lk.name: lk for lk in view.links}
    links = []
    for lk in sub.links:
        cap = free_links.get(lk.name)
        links.append(
            LinkFree(
                lk.name,
                lk.a_device,
                lk.b_device,
                sub.device_pop.get(lk.a_device, ""),
                sub.device_pop.get(lk.b_device, ""),
                lk.capacity,
                cap.bw_free if cap else 0,
                _count(cap.vlans_free) if cap else 0,
                "" if cap else _why(blocked, lk.name, lk.a_device, lk.b_device, sub.device_pop),
            )
        )
    hosts = []
    for h in sub.hosts:
        hc = view.hosts.get(h.name)
        hosts.append(
            HostFree(
                h.name,
                h.pop,
                h.cpu,
                hc.cpu_free if hc else 0,
                h.ram_mb,
                hc.ram_free_mb if hc else 0,
                "" if hc else _why(blocked, h.name, h.device, h.device, sub.device_pop, "host"),
            )
        )
    return Availability(window, links, hosts, blocked)


def _count(pool: TagPool) -> int:
    return pool.hi - pool.lo + 1 - sum(1 for t in pool.taken if pool.lo <= t <= pool.hi)


def _why(
    blocked: dict[str, str],
    name: str,
    a: str,
    b: str,
    pops: dict[str, str],
    kind: str = "link",
) -> str:
    for key in (f"{kind} {name}", f"device {a}", f"device {b}", f"pop {pops.get(a)}",
                f"pop {pops.get(b)}"):  # fmt: skip
        if key in blocked:
            return f"{key}: {blocked[key]}"
    return "under maintenance"
