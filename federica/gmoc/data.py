"""GET /data/: the poller's stored rates as GENI time series. Services: read the database.

Each answer element is one metric of one object over the window. When the window is short
enough for one point per poll (MAX_POINTS) and raw rates still cover it, as for a
collector's usual hour, `tsdata` holds each rate the poller measured: `ts` is the µs its
span starts (the earlier of the two polls it comes from), `v` the rate over the span.
Longer windows get time-weighted averages over aligned steps (`ts`: the step's start),
the coarsest of a few steps that stays under MAX_POINTS, the store picking the resolution
that serves each part of the window (raw, 5 min or hourly roll-ups).

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

from sqlalchemy import DateTime, func, select, type_coerce
from sqlalchemy.orm import Session

from federica.config import Settings
from federica.gmoc import metrics, objects, resources
from federica.gmoc.access import Viewer
from federica.gmoc.naming import Site, split_prefix
from federica.gmoc.query import Query
from federica.monitoring import store
from federica.monitoring.models import RAW, InterfaceRate, MonitoredInterface
from federica.monitoring.rollup import EPOCH, floor
from federica.substrate.models import Device, Port

MAX_POINTS = 2000
# Past one point per poll, steps the 5-minute and hourly roll-ups serve.
STEPS = (300, 900, 3600, 4 * 3600, 86400)
Obj = dict[str, Any]
NAIVE_EPOCH = EPOCH.replace(tzinfo=None)


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


# One stored value of an interface: its span's start in µs, whether the poller had an
# answer in it, then its rates (per second) in the order of the columns asked for.
Sample = tuple[Any, ...]
ANSWERED = 1
VALUES = 2


def answer(
    session: Session,
    site: Site,
    viewer: Viewer,
    query: Query,
    now: dt.datetime,
    settings: Settings,
) -> list[Obj]:
    interval = int(settings.monitor_interval_s)
    step = step_for(query, interval)
    subjects = _subjects(session, site, viewer, query, now)
    wanted = [
        metrics.ALL[n]
        for n in query.event_types
        if metrics.ALL[n] in metrics.BY_TYPE[query.obj_type]
        and (metrics.ALL[n].column is not None or metrics.ALL[n] is metrics.AVAILABLE)
    ]  # (node CPU and memory: nothing stores them yet)
    if not subjects or not wanted:
        return []
    ids = sorted({i for s in subjects for i in s.interface_ids})
    columns = sorted({m.column for m in wanted if m.column is not None})
    samples = _samples(session, ids, query, step, interval, columns, now, settings)
    step_us = step * 1_000_000
    out: list[Obj] = []
    for subject in subjects:
        mine = [x for i in subject.interface_ids for x in samples.get(i, [])]
        if subject.allowed is not None:
            allowed = subject.allowed
            mine = [x for x in mine if _inside(x[0], allowed)]
        for metric in wanted:
            if metric.column is None:
                tsdata = [
                    {"ts": ts, "v": v}
                    for ts, v in _availability(mine, step_us)
                    if query.lo_us <= ts < query.hi_us
                ]
            else:
                tsdata = _rates(mine, VALUES + columns.index(metric.column), metric.scale, query)
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


def _samples(
    session: Session,
    ids: Sequence[int],
    query: Query,
    step: int,
    interval: int,
    columns: Sequence[str],
    now: dt.datetime,
    settings: Settings,
) -> dict[int, list[Sample]]:
    """The interfaces' values over the window: each raw rate as the poller measured it
    when the step is the poll interval and raw rates cover the window (a collector's
    usual hour), else averages per step from the store (roll-ups where raw rates are gone).
    """
    if not ids:
        return {}
    lo = floor(_at(query.lo_us), step)
    window = (lo, _at(query.hi_us))
    if step == interval and store.plan_sources(session, window, step, now, settings) == [
        (RAW, window)
    ]:
        return _raw(session, ids, window, columns)
    series = store.series(session, ids, window, step, now, settings)
    return {
        i: [
            (objects.us(p.start), p.covered_s > 0, *(p.values.get(c) for c in columns))
            for p in periods
        ]
        for i, periods in series.items()
    }


def _raw(
    session: Session,
    ids: Sequence[int],
    window: tuple[dt.datetime, dt.datetime],
    columns: Sequence[str],
) -> dict[int, list[Sample]]:
    """Raw rates overlapping the window, read as plain rows: no ORM objects (an hour of
    100 interfaces is 12,000 rows), only the columns asked for, and the start read as the
    database gives it (naive UTC from SQLite, aware from PostgreSQL) rather than through
    the UTCDateTime type, which would make a second datetime of each."""
    t = InterfaceRate
    cols = [getattr(t, c) for c in columns]
    # On the connection: plain rows, without the ORM's result machinery.
    rows = session.connection().execute(
        select(t.interface_id, type_coerce(t.start, DateTime()), *cols)
        .where(
            t.resolution_s == RAW,
            t.interface_id.in_(ids),
            t.end > window[0],
            t.start < window[1],
        )
        .order_by(t.interface_id, t.start)
    )
    out: dict[int, list[Sample]] = {}
    for row in rows:
        start = row[1]
        d = start - (EPOCH if start.tzinfo is not None else NAIVE_EPOCH)
        ts = (d.days * 86_400 + d.seconds) * 1_000_000 + d.microseconds
        out.setdefault(row[0], []).append((ts, True, *row[2:]))
    return out


def _at(ts_us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=ts_us)


def _inside(ts: int, allowed: list[tuple[int, int]]) -> bool:
    return any(a <= ts < b for a, b in allowed)


def _rates(samples: Sequence[Sample], index: int, scale: float, query: Query) -> list[Obj]:
    """The tsdata of one column: one comprehension (an answer holds many points)."""
    lo, hi = query.lo_us, query.hi_us
    if scale == 1.0:
        return [
            {"ts": x[0], "v": x[index]} for x in samples if lo <= x[0] < hi and x[index] is not None
        ]
    return [
        {"ts": x[0], "v": x[index] * scale}
        for x in samples
        if lo <= x[0] < hi and x[index] is not None
    ]


def _availability(samples: Sequence[Sample], step_us: int) -> list[tuple[int, int]]:
    """Per step: 1 where the subject answered a poll; 0 at the first step of each gap
    between two answers (before the first and after the last, nothing is known)."""
    answered = sorted({x[0] - x[0] % step_us for x in samples if x[ANSWERED]})
    out: list[tuple[int, int]] = []
    for i, ts in enumerate(answered):
        if i and ts - answered[i - 1] > step_us:
            out.append((answered[i - 1] + step_us, 0))
        out.append((ts, 1))
    return out


def _subjects(
    session: Session, site: Site, viewer: Viewer, query: Query, now: dt.datetime
) -> list[_Subject]:
    kind = query.obj_type
    out: list[_Subject] = []
    if kind == "interfacevlan":
        return _vlans(session, site, viewer, query.ids, now)
    if kind == "aggregate":
        if site.name in query.ids:
            out.append(_Subject(site.name, site.href(kind, site.name), _one_per_device(session)))
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
        out.append(_Subject(obj_id, site.href("node", obj_id), _one_per_device(session, device)))
    return out


def _one_per_device(session: Session, device_id: int | None = None) -> list[int]:
    """One stored interface of each device (or of one): every answer of a device gives
    all its interfaces a rate over the same span, so one tells when it answered. The
    first one seen (the lowest id) has the longest history; should it vanish from the
    agent's table, the device would read as unavailable from then on."""
    query = select(func.min(MonitoredInterface.id)).group_by(MonitoredInterface.device_id)
    if device_id is not None:
        query = query.where(MonitoredInterface.device_id == device_id)
    return list(session.scalars(query))


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
