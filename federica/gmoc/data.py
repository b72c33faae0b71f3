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
is not theirs). Physical interfaces and node state (devices' availability, V-nodes'
CPU and memory: nodestats) only for viewers of the whole aggregate. Objects that do not
exist, or that the viewer may not see, are left out.

The answer is kept column-wise (Series) and written by `encode`: an hour of 100
interfaces is ~100,000 points, and a dict per point plus the standard library's encoder
cost more than reading them (docs/benchmarks.md).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import orjson
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federica.config import Settings
from federica.gmoc import metrics, nodestats, objects, resources
from federica.gmoc.access import Viewer
from federica.gmoc.epoch import epoch_us
from federica.gmoc.naming import Site, split_prefix
from federica.gmoc.query import Query
from federica.monitoring import store
from federica.monitoring.models import RAW, InterfaceRate, MonitoredInterface
from federica.monitoring.rollup import EPOCH, floor
from federica.substrate.models import ComputeHost, Device, Port

MAX_POINTS = 2000
# Past one point per poll, steps the 5-minute and hourly roll-ups serve.
STEPS = (300, 900, 3600, 4 * 3600, 86400)
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
    host_id: int | None = None  # a V-node: its nodes' samples
    host_cores: int = 0


# A series' points: their times (µs, ascending) and values.
Points = tuple[Sequence[int], Sequence[float | int]]


@dataclass(frozen=True)
class Series:
    """One element of an answer: a data object, its tsdata kept column-wise."""

    head: Obj  # the data object but its tsdata
    ts: Sequence[int]
    v: Sequence[float | int]

    def as_json(self) -> Obj:
        points = zip(self.ts, self.v, strict=True)
        return {**self.head, "tsdata": [{"ts": t, "v": v} for t, v in points]}


@dataclass(frozen=True)
class Columns:
    """One stored interface's values over the window, column-wise (an hour of 100
    interfaces is 12,000 rows: no object per row). `ts[k]` is the µs its k-th span
    starts, ascending; `answered[k]` whether the poller had an answer in it; `values`
    the rates (per second) of the columns asked for."""

    ts: Sequence[int]
    answered: Sequence[Any]
    values: dict[str, Sequence[float | None]]


def answer(
    session: Session,
    site: Site,
    viewer: Viewer,
    query: Query,
    now: dt.datetime,
    settings: Settings,
) -> list[Series]:
    interval = int(settings.monitor_interval_s)
    step = step_for(query, interval)
    subjects = _subjects(session, site, viewer, query, now)
    wanted = [
        metrics.ALL[n]
        for n in query.event_types
        if metrics.ALL[n] in metrics.BY_TYPE[query.obj_type]
    ]
    if not subjects or not wanted:
        return []
    ids = sorted({i for s in subjects for i in s.interface_ids})
    columns = sorted({m.column for m in wanted if m.column is not None})
    samples = _samples(session, ids, query, step, interval, columns, now, settings)
    hosts = sorted({s.host_id for s in subjects if s.host_id is not None})
    nodes = nodestats.series(session, hosts, query, step, interval) if hosts else {}
    step_us = step * 1_000_000
    out: list[Series] = []
    for subject in subjects:
        mine = [samples[i] for i in subject.interface_ids if i in samples]
        host = nodes.get(subject.host_id) if subject.host_id is not None else None
        for metric in wanted:
            points: Points
            if host is not None:
                points = nodestats.points(host, metric.name, subject.host_cores, query, step_us)
            elif metric is metrics.AVAILABLE:
                steps = [
                    (ts, v)
                    for ts, v in _availability(mine, subject.allowed, step_us, interval * 1_000_000)
                    if query.lo_us <= ts < query.hi_us
                ]
                points = ([ts for ts, _ in steps], [v for _, v in steps])
            elif metric.column is None:
                continue  # CPU and memory: only V-nodes' are stored (their nodes')
            elif len(mine) == 1:
                points = _rates(mine[0], metric.column, metric.scale, query, subject.allowed)
            else:
                column, scale = metric.column, metric.scale
                parts = [_rates(c, column, scale, query, subject.allowed) for c in mine]
                points = ([t for p in parts for t in p[0]], [v for p in parts for v in p[1]])
            head = {
                "$schema": site.schema("data"),
                "id": f"{metric.name}:{subject.obj_id}",
                "subject": subject.href,
                "eventType": metrics.PREFIX + metric.name,
                "description": metric.description,
                "units": metric.units,
            }
            out.append(Series(head, *points))
    return out


def encode(answer: Sequence[Series]) -> bytes:
    """The answer as JSON, byte for byte what Flask's jsonify made of it before (the
    standard library's compact, ASCII-escaped encoding of [s.as_json() for s in answer]:
    tests/unit/gmoc/test_encode.py), without a dict per point: an hour of 100 interfaces
    is ~100,000 points. Each series' head is encoded by the standard library; its times
    and values as arrays by orjson (the same shortest round-trip numbers; they hold no
    comma), split and interleaved. The metrics of one interface share their times, whose
    encoding is made once."""
    parts = []
    # By identity: the series (so their times) live as long as `answer`.
    prefixes: dict[int, list[bytes]] = {}
    for s in answer:
        head = json.dumps(s.head, separators=(",", ":")).encode()[:-1] + b',"tsdata":['
        if not s.ts:
            parts.append(head + b"]}")
            continue
        pre = prefixes.get(id(s.ts))
        if pre is None:
            times = orjson.dumps(s.ts)[1:-1].split(b",")
            pre = prefixes[id(s.ts)] = [b'{"ts":' + t + b',"v":' for t in times]
        blob = orjson.dumps(s.v)[1:-1]
        values = blob.split(b",")
        if b"e" in blob or b"0.0000" in blob or _LONG_DIGITS.search(blob):
            # Floats as Python writes them: exponents (1e-07, 1e+16; orjson: 1e-7, 1e16),
            # and below 1e-4 or from 1e16 on in exponent form where orjson writes digits.
            values = [_as_python(v) for v in values]
        if len(values) != len(pre):
            raise ValueError(f"{s.head['id']}: {len(pre)} times, {len(values)} values")
        parts.append(head + b"},".join(map(bytes.__add__, pre, values)) + b"}]}")
    return b"[" + b",".join(parts) + b"]"


_LONG_DIGITS = re.compile(rb"\d{17}")


def _as_python(v: bytes) -> bytes:
    """One number of orjson's as Python's repr writes it (integers are left alone)."""
    if b"e" in v or v.startswith((b"0.0000", b"-0.0000")):
        return repr(float(v)).encode()
    if b"." in v and len(v.split(b".", 1)[0].lstrip(b"-")) > 16:
        return repr(float(v)).encode()
    return v


def _samples(
    session: Session,
    ids: Sequence[int],
    query: Query,
    step: int,
    interval: int,
    columns: Sequence[str],
    now: dt.datetime,
    settings: Settings,
) -> dict[int, Columns]:
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
        i: Columns(
            [objects.us(p.start) for p in periods],
            [p.covered_s > 0 for p in periods],
            {c: [p.values.get(c) for p in periods] for c in columns},
        )
        for i, periods in series.items()
    }


def _raw(
    session: Session,
    ids: Sequence[int],
    window: tuple[dt.datetime, dt.datetime],
    columns: Sequence[str],
) -> dict[int, Columns]:
    """Raw rates overlapping the window in one query: only the columns asked for, the
    start as µs from the database, read as the driver's plain tuples (the columns are
    numbers that need no conversion: no Row per row), transposed at once, then cut per
    interface (the rows are ordered by it)."""
    t = InterfaceRate
    conn = session.connection()
    start = epoch_us(t.start, conn.dialect.name)
    result = conn.execute(
        select(t.interface_id, start, *(getattr(t, c) for c in columns))
        .where(
            t.resolution_s == RAW,
            t.interface_id.in_(ids),
            t.end > window[0],
            t.start < window[1],
        )
        .order_by(t.interface_id, t.start)
    )
    try:
        rows = result.cursor.fetchall()
    finally:
        result.close()
    if not rows:
        return {}
    by_id, ts, *values = zip(*rows, strict=True)
    out: dict[int, Columns] = {}
    i = 0
    while i < len(by_id):
        interface_id = by_id[i]
        j = bisect_right(by_id, interface_id, lo=i)
        out[interface_id] = Columns(
            ts[i:j], _ALWAYS, {c: v[i:j] for c, v in zip(columns, values, strict=True)}
        )
        i = j
    return out


class _Always:
    """Every raw rate comes from an answer."""

    def __getitem__(self, _: int) -> bool:
        return True


_ALWAYS: Any = _Always()


def _at(ts_us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=ts_us)


def _inside(ts: int, allowed: list[tuple[int, int]]) -> bool:
    return any(a <= ts < b for a, b in allowed)


def _rates(
    cols: Columns, column: str, scale: float, query: Query, allowed: list[tuple[int, int]] | None
) -> Points:
    """One column's points in the window, found by bisection (the starts ascend)."""
    i, j = bisect_left(cols.ts, query.lo_us), bisect_left(cols.ts, query.hi_us)
    ts, vs = cols.ts[i:j], cols.values[column][i:j]
    if i == 0 and j == len(cols.ts):
        ts = cols.ts  # the same object for each metric: encode() makes its times once
    if allowed is None and None not in vs:
        known = cast(Sequence[float], vs)  # no None in it
        return ts, known if scale == 1.0 else [v * scale for v in known]
    kept = [
        (t, v if scale == 1.0 else v * scale)
        for t, v in zip(ts, vs, strict=True)
        if v is not None and (allowed is None or _inside(t, allowed))
    ]
    return [t for t, _ in kept], [v for _, v in kept]


def _availability(
    cols: Sequence[Columns],
    allowed: list[tuple[int, int]] | None,
    step_us: int,
    interval_us: int,
) -> list[tuple[int, int]]:
    """Per step: 1 where the subject answered a poll; 0 at the first step of each gap
    between two answers (before the first and after the last, nothing is known)."""
    answered = sorted(
        {
            ts
            for c in cols
            for k, ts in enumerate(c.ts)
            if c.answered[k] and (allowed is None or _inside(ts, allowed))
        }
    )
    return nodestats.gaps(answered, step_us, interval_us)


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
    """Devices (their availability, from the poller's answers) and V-nodes (their slice
    nodes' samples); unknown names are left out."""
    names = {name: obj_id for obj_id in ids if (name := split_prefix(site, "node", obj_id))}
    if not names:
        return []
    devices = {
        name: device_id
        for name, device_id in session.execute(
            select(Device.name, Device.id).where(Device.name.in_(sorted(names)))
        )
    }
    hosts = {
        name: (host_id, cores)
        for name, host_id, cores in session.execute(
            select(ComputeHost.name, ComputeHost.id, ComputeHost.cpu_cores).where(
                ComputeHost.name.in_(sorted(names))
            )
        )
    }
    out = []
    for name, obj_id in names.items():
        href = site.href("node", obj_id)
        if name in devices:
            out.append(_Subject(obj_id, href, _one_per_device(session, devices[name])))
        elif name in hosts:
            host_id, cores = hosts[name]
            out.append(_Subject(obj_id, href, [], host_id=host_id, host_cores=cores))
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
