"""An in-memory calendar of the substrate, kept in step with the database.

Booking must answer in milliseconds with hundreds of slices booked, so each process keeps
the reservations that are not over yet, per resource, and the substrate's static shape
(links, V-nodes, precomputed routes). Both carry the revision they were loaded at (see
revision.py); `refresh` reloads only the slices whose reservations changed since. A
writer first bumps the calendar revision (which serialises writers), then refreshes: from
then on the index is exactly what is committed, so checking against it is authoritative.
"""

from __future__ import annotations

import bisect
import datetime as dt
import threading
from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import event, select
from sqlalchemy.orm import Session, sessionmaker

from federica import revision
from federica.slices.calendar import Interval
from federica.slices.embed import HostCap, LinkCap, RouteCache, SubstrateView, TagPool
from federica.slices.models import MaintenanceTarget, MaintenanceWindow, Reservation, Slice
from federica.slices.models import ReservationKind as K
from federica.substrate.models import (
    BorderPort,
    ComputeHost,
    Device,
    Link,
    PeerFacility,
    Pop,
    Port,
)

PRUNE_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class Held:
    """One reservation, as the index keeps it."""

    slice_id: int
    kind: K
    resource: tuple[str, int]  # ("link"|"port"|"host", id)
    vlan: int | None
    amount: int  # Mb/s, or vCPU for compute
    ram_mb: int
    start: dt.datetime
    end: dt.datetime


class Timeline:
    """One resource's reservations sorted by start, so a window reads only those that can
    overlap it (start before the window's end, and after its start minus the longest
    reservation) instead of every reservation of the resource."""

    __slots__ = ("items", "longest", "starts")

    def __init__(self) -> None:
        self.starts: list[dt.datetime] = []
        self.items: list[Held] = []
        self.longest = dt.timedelta(0)  # never shrinks: a wider scan is still correct

    def add(self, h: Held) -> None:
        i = bisect.bisect_right(self.starts, h.start)
        self.starts.insert(i, h.start)
        self.items.insert(i, h)
        self.longest = max(self.longest, h.end - h.start)

    def remove(self, slice_id: int) -> None:
        keep = [h for h in self.items if h.slice_id != slice_id]
        if len(keep) != len(self.items):
            self.items = keep
            self.starts = [h.start for h in keep]

    def __bool__(self) -> bool:
        return bool(self.items)

    def overlapping(
        self, start: dt.datetime, end: dt.datetime, exclude: int | None = None
    ) -> list[Held]:
        lo = bisect.bisect_right(self.starts, start - self.longest)
        hi = bisect.bisect_left(self.starts, end)
        return [h for h in self.items[lo:hi] if h.end > start and h.slice_id != exclude]


@dataclass(frozen=True)
class LinkInfo:
    id: int
    name: str
    a_device: str
    a_port: str
    b_device: str
    b_port: str
    capacity: int
    vlan_min: int
    vlan_max: int


@dataclass(frozen=True)
class HostInfo:
    id: int
    name: str
    pop: str
    device: str
    port: str
    port_id: int
    cpu: int
    ram_mb: int
    speed: int
    driver: str


@dataclass(frozen=True, slots=True)
class BorderInfo:
    """A port facing a peer facility (inter-domain circuits end there)."""

    port_id: int
    device: str
    port: str
    pop: str
    speed: int
    vlan_min: int
    vlan_max: int
    peer: str
    translate: bool


@dataclass
class Substrate:
    """The static shape of the facility at one substrate revision."""

    rev: int
    pops: frozenset[str]
    links: list[LinkInfo]
    hosts: list[HostInfo]
    device_pop: dict[str, str]
    translating: frozenset[str]
    routes: RouteCache
    borders: dict[tuple[str, str], BorderInfo] = field(default_factory=dict)
    link_ids: dict[str, int] = field(init=False)
    host_ids: dict[str, int] = field(init=False)
    port_ids: dict[tuple[str, str], int] = field(init=False)

    def __post_init__(self) -> None:
        self.link_ids = {lk.name: lk.id for lk in self.links}
        self.host_ids = {h.name: h.id for h in self.hosts}
        self.port_ids = {(h.device, h.port): h.port_id for h in self.hosts}

    def capacity(self, resource: tuple[str, int], *, ram: bool = False) -> int:
        kind, rid = resource
        if kind == "link":
            return next(lk.capacity for lk in self.links if lk.id == rid)
        if kind == "port":
            speed = next((h.speed for h in self.hosts if h.port_id == rid), None)
            if speed is None:
                speed = next((b.speed for b in self.borders.values() if b.port_id == rid), 0)
            return speed
        host = next(h for h in self.hosts if h.id == rid)
        return host.ram_mb if ram else host.cpu

    def label(self, resource: tuple[str, int]) -> str:
        kind, rid = resource
        if kind == "link":
            return "link " + next(lk.name for lk in self.links if lk.id == rid)
        if kind == "host":
            return "V-node " + next(h.name for h in self.hosts if h.id == rid)
        name = next((f"{d}:{p}" for (d, p), pid in self.port_ids.items() if pid == rid), str(rid))
        return f"port {name}"

    def resources_of(self, kind: str, target: str) -> set[tuple[str, int]]:
        """Every calendar resource a PoP, device, link or V-node (by name) covers."""
        out: set[tuple[str, int]] = set()
        for lk in self.links:
            ends = (lk.a_device, lk.b_device)
            pops = {self.device_pop.get(d) for d in ends}
            if (
                (kind == "link" and lk.name == target)
                or (kind == "device" and target in ends)
                or (kind == "pop" and target in pops)
            ):
                out.add(("link", lk.id))
        for h in self.hosts:
            if (
                (kind == "host" and h.name == target)
                or (kind == "device" and h.device == target)
                or (kind == "pop" and h.pop == target)
            ):
                out |= {("host", h.id), ("port", h.port_id)}
        return out

    def exists(self, kind: str, target: str) -> bool:
        names = {
            "pop": self.pops,
            "device": set(self.device_pop),
            "link": set(self.link_ids),
            "host": set(self.host_ids),
        }
        return target in names.get(kind, set())

    @classmethod
    def load(cls, session: Session, rev: int) -> Substrate:
        devices = {
            d.name: (pop, d.vlan_translation)
            for d, pop in session.execute(select(Device, Pop.name).join(Pop))
        }
        ports = {
            p.id: (dev, p.name, p.speed_mbps)
            for p, dev in session.execute(select(Port, Device.name).join(Device))
        }
        links = [
            LinkInfo(
                lk.id,
                lk.name,
                ports[lk.port_a_id][0],
                ports[lk.port_a_id][1],
                ports[lk.port_b_id][0],
                ports[lk.port_b_id][1],
                lk.capacity_mbps,
                lk.vlan_min,
                lk.vlan_max,
            )
            for lk in session.scalars(select(Link).order_by(Link.name))
        ]
        hosts = [
            HostInfo(
                h.id,
                h.name,
                pop,
                ports[h.uplink_port_id][0],
                ports[h.uplink_port_id][1],
                h.uplink_port_id,
                h.cpu_cores,
                h.ram_mb,
                ports[h.uplink_port_id][2],
                h.driver,
            )
            for h, pop in session.execute(
                select(ComputeHost, Pop.name).join(Pop).order_by(ComputeHost.name)
            )
        ]
        substrate = cls(
            rev=rev,
            pops=frozenset(session.scalars(select(Pop.name))),
            links=links,
            hosts=hosts,
            device_pop={n: pop for n, (pop, _) in devices.items()},
            translating=frozenset(n for n, (_, tr) in devices.items() if tr),
            routes=RouteCache([(lk.name, lk.a_device, lk.b_device) for lk in links]),
        )
        for lk in links:  # link ports too, for provisioning and the per-resource calendar
            substrate.port_ids[(lk.a_device, lk.a_port)] = _port_id(ports, lk.a_device, lk.a_port)
            substrate.port_ids[(lk.b_device, lk.b_port)] = _port_id(ports, lk.b_device, lk.b_port)
        for bp, port, device, pop, peer in session.execute(
            select(BorderPort, Port, Device.name, Pop.name, PeerFacility.name)
            .join(Port, BorderPort.port_id == Port.id)
            .join(Device, Port.device_id == Device.id)
            .join(Pop, Device.pop_id == Pop.id)
            .join(PeerFacility, BorderPort.peer_id == PeerFacility.id)
        ):
            substrate.borders[(device, port.name)] = BorderInfo(
                port.id, device, port.name, pop, port.speed_mbps, bp.vlan_min, bp.vlan_max,
                peer, bp.translate,
            )  # fmt: skip
            substrate.port_ids[(device, port.name)] = port.id
        return substrate


def _port_id(ports: dict[int, tuple[str, str, int]], device: str, name: str) -> int:
    return next(pid for pid, (d, n, _) in ports.items() if d == device and n == name)


@dataclass(frozen=True)
class Maintenance:
    target_kind: MaintenanceTarget
    target: str
    interval: Interval
    reason: str


def held_from_row(
    slice_id: int,
    kind: K,
    link_id: int | None,
    port_id: int | None,
    host_id: int | None,
    vlan: int | None,
    bandwidth: int,
    vcpu: int,
    ram: int,
    start: dt.datetime,
    end: dt.datetime,
) -> Held:
    if kind in (K.LINK_VLAN, K.LINK_BANDWIDTH):
        res = ("link", int(link_id or 0))
    elif kind in (K.PORT_VLAN, K.PORT_BANDWIDTH):
        res = ("port", int(port_id or 0))
    else:
        res = ("host", int(host_id or 0))
    amount = vcpu if kind is K.COMPUTE else bandwidth
    return Held(slice_id, kind, res, vlan, amount, ram, start, end)


def held_of(r: Reservation) -> Held:
    return held_from_row(
        r.slice_id,
        r.kind,
        r.link_id,
        r.port_id,
        r.host_id,
        r.vlan,
        r.bandwidth_mbps,
        r.vcpu,
        r.ram_mb,
        r.start,
        r.end,
    )


class CalendarIndex:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.rev = -1
        self.substrate: Substrate | None = None
        self.by_slice: dict[int, list[Held]] = {}
        self.by_resource: dict[tuple[str, int], Timeline] = defaultdict(Timeline)
        self.maintenance: list[Maintenance] = []
        self._pruned_at: dt.datetime | None = None

    # -- keeping in step -------------------------------------------------------------
    def refresh(
        self,
        session: Session,
        now: dt.datetime,
        upto: int | None = None,
        substrate_rev: int | None = None,
    ) -> Substrate:
        """Load what changed since the last refresh. `upto`: the revision the caller knows
        to be committed (a writer that has just bumped passes its revision - 1), with
        `substrate_rev` if it has read that too (see revision.bump_reading).

        Database reads happen outside `self.lock`: on SQLite a session's first statement
        may wait for the database lock, and a thread holding that lock may be waiting for
        ours. Changes are applied only onto the revision they were loaded against."""
        if upto is None or substrate_rev is None:
            revs = revision.all_current(session)
            sub_rev = revs.get(revision.SUBSTRATE, 0)
            cal_rev = upto if upto is not None else revs.get(revision.CALENDAR, 0)
        else:
            sub_rev, cal_rev = substrate_rev, upto
        with self.lock:
            substrate = self.substrate
        if substrate is None or substrate.rev != sub_rev:
            substrate = Substrate.load(session, sub_rev)
            with self.lock:
                self.substrate = substrate
        while True:
            with self.lock:
                base = self.rev
            if cal_rev == base:
                break
            changed, fresh, maintenance = self._load_changes(session, base, now)
            with self.lock:
                if self.rev != base:
                    continue  # another thread moved on meanwhile: load again from there
                for sid in changed:
                    self._forget(sid)
                for sid, held in fresh.items():
                    self.add(sid, held)
                self.maintenance = maintenance
                self.rev = cal_rev
                break
        with self.lock:
            if self._pruned_at is None or now - self._pruned_at > PRUNE_EVERY:
                self._prune(now)
        return substrate

    @staticmethod
    def _load_changes(
        session: Session, base: int, now: dt.datetime
    ) -> tuple[set[int], dict[int, list[Held]], list[Maintenance]]:
        changed = set(session.scalars(select(Slice.id).where(Slice.rev > base)))
        fresh: dict[int, list[Held]] = defaultdict(list)
        if changed:
            rows = session.execute(
                select(
                    Reservation.slice_id,
                    Reservation.kind,
                    Reservation.link_id,
                    Reservation.port_id,
                    Reservation.host_id,
                    Reservation.vlan,
                    Reservation.bandwidth_mbps,
                    Reservation.vcpu,
                    Reservation.ram_mb,
                    Reservation.start,
                    Reservation.end,
                )
                .join(Slice)
                .where(Slice.rev > base, Reservation.end > now)
            )
            for row in rows:
                fresh[row[0]].append(held_from_row(*row))
        maintenance = [
            Maintenance(m.target_kind, m.target, Interval(m.start, m.end), m.reason)
            for m in session.scalars(select(MaintenanceWindow).where(MaintenanceWindow.end > now))
        ]
        return changed, fresh, maintenance

    def add(self, slice_id: int, held: list[Held]) -> None:
        with self.lock:
            self._forget(slice_id)
            if not held:
                return  # released: nothing left to keep
            self.by_slice[slice_id] = held
            for h in held:
                self.by_resource[h.resource].add(h)

    def advance(self, slice_id: int, held: list[Held], rev: int) -> None:
        """Our own committed change of one slice at `rev` (a booking, an extension, a
        release): apply it without a reload, if nothing else happened in between
        (otherwise the next refresh loads it). `held`: what the slice holds from now on."""
        with self.lock:
            if self.rev == rev - 1:
                self.add(slice_id, held)
                self.rev = rev

    def _forget(self, slice_id: int) -> None:
        for resource in {h.resource for h in self.by_slice.pop(slice_id, [])}:
            timeline = self.by_resource.get(resource)
            if timeline is not None:
                timeline.remove(slice_id)
                if not timeline:
                    del self.by_resource[resource]

    def _prune(self, now: dt.datetime) -> None:
        """Drop what is over: no view looks before now."""
        for sid in [s for s, held in self.by_slice.items() if all(h.end <= now for h in held)]:
            self._forget(sid)
        self._pruned_at = now

    # -- reading ---------------------------------------------------------------------
    def held(
        self, resource: tuple[str, int], window: Interval, exclude: int | None = None
    ) -> list[Held]:
        timeline = self.by_resource.get(resource)
        if timeline is None:
            return []
        return timeline.overlapping(window.start, window.end, exclude)

    def blocked(self, window: Interval) -> dict[str, str]:
        """Resources under maintenance during the window: 'PoP MIL' -> reason."""
        return {
            f"{m.target_kind.value} {m.target}": m.reason
            for m in self.maintenance
            if m.interval.overlaps(window)
        }

    def view(
        self, window: Interval, exclude: int | None = None, label: str | None = None
    ) -> SubstrateView:
        """What is free over the whole window (optionally as if slice `exclude` held
        nothing: for extending it)."""
        with self.lock:
            sub = self.substrate
            assert sub is not None, "refresh() first"
            blocked = self.blocked(window)
            down = self._down(sub, window)
            hosts: dict[str, HostCap] = {}
            for h in sub.hosts:
                if h.name in down["host"] or h.device in down["device"] or h.pop in down["pop"]:
                    continue
                cpu, ram = _peak(self.held(("host", h.id), window, exclude), window)
                uplink = self.held(("port", h.port_id), window, exclude)
                hosts[h.name] = HostCap(
                    h.name,
                    h.pop,
                    h.device,
                    h.port,
                    h.cpu - cpu,
                    h.ram_mb - ram,
                    h.speed - _peak(uplink, window)[0],
                    TagPool(1, 4094, _tags(uplink)),
                )
            links: list[LinkCap] = []
            for lk in sub.links:
                ends = {lk.a_device, lk.b_device}
                if (
                    lk.name in down["link"]
                    or ends & down["device"]
                    or {sub.device_pop.get(d, "") for d in ends} & down["pop"]
                ):
                    continue
                held = self.held(("link", lk.id), window, exclude)
                links.append(
                    LinkCap(
                        lk.name,
                        lk.a_device,
                        lk.a_port,
                        lk.b_device,
                        lk.b_port,
                        lk.capacity - _peak(held, window)[0],
                        TagPool(lk.vlan_min, lk.vlan_max, _tags(held)),
                    )
                )
            return SubstrateView(
                hosts=hosts,
                links=links,
                translating=sub.translating,
                pops_of_devices=sub.device_pop,
                window_label=label or window_label(window),
                routes=sub.routes,
                blocked=blocked,
            )

    def port_free(
        self, port_id: int, speed: int, vlans: tuple[int, int], window: Interval,
        exclude: int | None = None,
    ) -> tuple[int, TagPool]:  # fmt: skip
        """What a port (a border port) has free over the window: Mb/s and tags."""
        with self.lock:
            held = self.held(("port", port_id), window, exclude)
            return speed - _peak(held, window)[0], TagPool(vlans[0], vlans[1], _tags(held))

    def _down(self, sub: Substrate, window: Interval) -> dict[str, set[str]]:
        down: dict[str, set[str]] = {k.value: set() for k in MaintenanceTarget}
        for m in self.maintenance:
            if m.interval.overlaps(window):
                down[m.target_kind.value].add(m.target)
        return down


def _peak(held: list[Held], window: Interval) -> tuple[int, int]:
    """Most in use at any instant of the window (ends before starts at one instant): of
    the amount (Mb/s or vCPU) and of RAM, in one sweep. Written out rather than via
    calendar.peak_usage because it runs ~50 times a booking."""
    ws, we = window.start, window.end
    if all(h.start <= ws for h in held):
        # Nothing starts inside the window: everything it overlaps is in use at its start.
        return sum(h.amount for h in held), sum(h.ram_mb for h in held)
    events: list[tuple[dt.datetime, int, int, int]] = []
    for h in held:
        events.append((h.start if h.start > ws else ws, 1, h.amount, h.ram_mb))
        events.append((h.end if h.end < we else we, 0, -h.amount, -h.ram_mb))
    events.sort()
    peak = level = peak_ram = level_ram = 0
    for _, _, delta, delta_ram in events:
        level += delta
        level_ram += delta_ram
        if level > peak:
            peak = level
        if level_ram > peak_ram:
            peak_ram = level_ram
    return peak, peak_ram


def _tags(held: list[Held]) -> frozenset[int]:
    return frozenset(h.vlan for h in held if h.vlan is not None)


def window_label(window: Interval) -> str:
    same_day = window.start.date() == window.end.date()
    end = f"{window.end:%H:%M}" if same_day else f"{window.end:%Y-%m-%d %H:%M}"
    return f"{window.start:%Y-%m-%d %H:%M} to {end} UTC"


INDEX_KEY = "federica.calendar.index"
PENDING = "federica.calendar.pending"


def attach(factory: sessionmaker[Session], index: CalendarIndex) -> None:
    """Sessions from `factory` use `index` (the application context's one per database)
    and bring it up to date when they commit what they booked."""
    factory.configure(info={**(factory.kw.get("info") or {}), INDEX_KEY: index})
    event.listen(factory, "after_commit", _advance_index)
    event.listen(factory, "after_rollback", _drop_pending)


def index_for(session: Session) -> CalendarIndex:
    """The calendar index of the session's database, as its application context made it."""
    try:
        index: CalendarIndex = session.info[INDEX_KEY]
    except KeyError:
        raise RuntimeError(
            "this session has no calendar index: make sessions with the application "
            "context's factories (federica.context.make_context)"
        ) from None
    return index


def advance_on_commit(
    session: Session, index: CalendarIndex, slice_id: int, held: list[Held], rev: int
) -> None:
    """Once `session` commits, tell `index` what slice `slice_id` holds as of `rev`: the
    next booking in this process then need not reload it from the database."""
    session.info.setdefault(PENDING, []).append((index, slice_id, held, rev))


def _advance_index(session: Session) -> None:
    for index, slice_id, held, rev in session.info.pop(PENDING, []):
        index.advance(slice_id, held, rev)


def _drop_pending(session: Session) -> None:
    session.info.pop(PENDING, None)
