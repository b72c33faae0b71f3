"""GET /data/: the poller's stored rates as GENI time series. Services: read the database.

Each answer element is one metric of one object over the window, `tsdata` its values per
step (`ts`: the µs the step starts; `v`: the time-weighted average over the step). The
step is the poller's interval when the window is short enough, else the coarsest of a
few steps that keeps an answer under MAX_POINTS per series; the store picks the
resolution that serves each part of the window (raw, 5 min or hourly roll-ups).

Per-VLAN interfaces are the devices' logical units (`<port>.<tag>` in IF-MIB, as Junos
names them): their rates are read from the store by that name, and only inside the
reservations of the slices the viewer sees (a tag a former slice held on the same port
is not theirs). Physical interfaces and node state only for viewers of the whole
aggregate. Objects that do not exist, or that the viewer may not see, are left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.config import Settings
from federica.gmoc import metrics, objects, resources
from federica.gmoc.access import Viewer
from federica.gmoc.naming import Site, split_prefix
from federica.gmoc.query import Query
from federica.monitoring import store
from federica.monitoring.models import MonitoredInterface
from federica.monitoring.rollup import EPOCH, Period, floor
from federica.substrate.models import Device, Port

MAX_POINTS = 2000
STEPS = (60, 300, 900, 3600, 4 * 3600, 86400)
Obj = dict[str, Any]


def step_for(query: Query, interval_s: int) -> int:
    span_s = (query.hi_us - query.lo_us) / 1_000_000
    for step in (max(1, interval_s), *STEPS):
        if span_s / step <= MAX_POINTS:
            return step
    return STEPS[-1]


@dataclass(frozen=True)
class _Subject:
    obj_id: str
    href: str
    interface_ids: list[int]  # the stored interfaces it is made of
    # µs intervals whose data is the viewer's; None: all of the window.
    allowed: list[tuple[int, int]] | None = None


def answer(
    session: Session,
    site: Site,
    viewer: Viewer,
    query: Query,
    now: dt.datetime,
    settings: Settings,
) -> list[Obj]:
    step = step_for(query, int(settings.monitor_interval_s))
    subjects = _subjects(session, site, viewer, query, now)
    wanted = [
        metrics.ALL[n]
        for n in query.event_types
        if metrics.ALL[n] in metrics.BY_TYPE[query.obj_type]
    ]
    if not subjects or not wanted:
        return []
    lo = floor(_at(query.lo_us), step)
    window = (lo, _at(query.hi_us))
    ids = sorted({i for s in subjects for i in s.interface_ids})
    series = store.series(session, ids, window, step, now, settings) if ids else {}
    out: list[Obj] = []
    for subject in subjects:
        for metric in wanted:
            if metric.column is None and metric is not metrics.AVAILABLE:
                continue  # nothing stores it yet (node CPU and memory)
            periods = [p for i in subject.interface_ids for p in series.get(i, [])]
            if metric is metrics.AVAILABLE:
                points = _availability(periods, step)
            else:
                points = _rates(periods, metric)
            tsdata = [
                {"ts": ts, "v": v}
                for ts, v in points
                if query.contains(ts) and _inside(ts, subject.allowed)
            ]
            out.append(
                {
                    "$schema": site.schema("data"),
                    "id": f"{metric.name}:{subject.obj_id}",
                    "subject": subject.href,
                    "eventType": metrics.PREFIX + metric.name,
                    "description": metric.description,
                    "units": metric.units,
                    "tsdata": tsdata,
                }
            )
    return out


def _at(ts_us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=ts_us)


def _inside(ts: int, allowed: list[tuple[int, int]] | None) -> bool:
    return allowed is None or any(a <= ts < b for a, b in allowed)


def _rates(periods: Sequence[Period], metric: metrics.Metric) -> list[tuple[int, float]]:
    assert metric.column is not None
    out = []
    for p in periods:
        v = p.values.get(metric.column)
        if v is not None:
            out.append((objects.us(p.start), v * metric.scale))
    return out


def _availability(periods: Sequence[Period], step: int) -> list[tuple[int, float]]:
    """1 for a step in which the subject answered a poll, 0 for a step between two such
    that has no answer (before the first and after the last, nothing is known)."""
    answered = sorted({objects.us(p.start) for p in periods if p.covered_s > 0})
    if not answered:
        return []
    step_us = step * 1_000_000
    have = set(answered)
    return [(ts, 1 if ts in have else 0) for ts in range(answered[0], answered[-1] + 1, step_us)]


def _subjects(
    session: Session, site: Site, viewer: Viewer, query: Query, now: dt.datetime
) -> list[_Subject]:
    kind = query.obj_type
    out: list[_Subject] = []
    if kind == "interfacevlan":
        return _vlans(session, site, viewer, query.ids, now)
    if kind == "aggregate":
        if site.name in query.ids:
            every = list(session.scalars(select(MonitoredInterface.id)))
            out.append(_Subject(site.name, site.href(kind, site.name), every))
        return out
    if not viewer.whole_aggregate:
        return []  # physical interfaces and nodes: every project's traffic
    if kind == "interface":
        return _interfaces(session, site, query.ids)
    return _nodes(session, site, query.ids)


def _interfaces(session: Session, site: Site, ids: Sequence[str]) -> list[_Subject]:
    names: dict[tuple[str, str], str] = {}
    for obj_id in ids:
        name = split_prefix(site, "interface", obj_id)
        if name and ":" in name:
            device, _, port = name.partition(":")
            names[(device, port)] = obj_id
    if not names:
        return []
    rows = session.execute(
        select(Device.name, MonitoredInterface.name, MonitoredInterface.id)
        .join(Device, Device.id == MonitoredInterface.device_id)
        .where(
            Device.name.in_(sorted({d for d, _ in names})), MonitoredInterface.port_id.is_not(None)
        )
    )
    found = {(d, n): i for d, n, i in rows}
    return [
        _Subject(obj_id, site.href("interface", obj_id), [found[key]])
        for key, obj_id in names.items()
        if key in found
    ]


def _nodes(session: Session, site: Site, ids: Sequence[str]) -> list[_Subject]:
    out = []
    for obj_id in ids:
        name = split_prefix(site, "node", obj_id)
        device = session.scalar(select(Device.id).where(Device.name == name)) if name else None
        if device is None:
            continue  # V-nodes' CPU and memory are not stored yet
        every = list(
            session.scalars(
                select(MonitoredInterface.id).where(MonitoredInterface.device_id == device)
            )
        )
        out.append(_Subject(obj_id, site.href("node", obj_id), every))
    return out


def _vlans(
    session: Session, site: Site, viewer: Viewer, ids: Sequence[str], now: dt.datetime
) -> list[_Subject]:
    wanted = {obj_id: parts for obj_id in ids if (parts := objects.split_vlan(site, obj_id))}
    if not wanted:
        return []
    slices = resources.visible_slices(session, viewer, now)
    uses: dict[tuple[int, int], list[resources.VlanUse]] = {}
    for use in resources.vlan_uses(session, [s.id for s in slices]):
        uses.setdefault((use.port_id, use.tag), []).append(use)
    devices = sorted({d for d, _, _ in wanted.values()})
    rows = session.execute(
        select(Device.name, Port.name, Port.id, Device.id)
        .join(Device, Device.id == Port.device_id)
        .where(Device.name.in_(devices))
    )
    ports = {(d, p): (port_id, device_id) for d, p, port_id, device_id in rows}
    stored = {
        (device_id, name): iface_id
        for device_id, name, iface_id in session.execute(
            select(
                MonitoredInterface.device_id, MonitoredInterface.name, MonitoredInterface.id
            ).where(MonitoredInterface.device_id.in_({d for _, d in ports.values()}))
        )
    }
    out = []
    for obj_id, (device, port, tag) in wanted.items():
        if (device, port) not in ports:
            continue
        port_id, device_id = ports[(device, port)]
        held = uses.get((port_id, tag))
        if not held:
            continue
        iface = stored.get((device_id, f"{port}.{tag}"))
        allowed = [(objects.us(u.start), objects.us(u.end)) for u in held]
        out.append(
            _Subject(
                obj_id,
                site.href("interfacevlan", obj_id),
                [] if iface is None else [iface],
                allowed,
            )
        )
    return out
