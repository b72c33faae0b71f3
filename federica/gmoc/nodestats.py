"""V-nodes' CPU, memory and availability for GET /data/. Services: read the database.

A V-node's figures are those of the slice nodes on it as the poller sampled them (table
node_samples: the compute driver's cgroup CPU time and memory, one row per node per
sampling of the V-node): at each sampling, `cpu_util` is their CPU use (cores busy since
each node's previous sample) in percent of the V-node's cores, `mem_used_kb` the memory
they hold. When the step is the poll interval each sampling is a point at its instant;
longer windows average the samplings inside each step (at the step's start).
`is_available` is 1 for each step in which the V-node was sampled with nodes on it, 0 at
the first step of a gap (a sampling missed, see `gaps`); a V-node without slice nodes
writes no samples, so nothing is known of it then.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federica.gmoc.epoch import epoch_us
from federica.gmoc.query import Query
from federica.monitoring.models import NodeSample
from federica.monitoring.rollup import EPOCH


@dataclass(frozen=True)
class Sampling:
    ts: int  # µs of the sampling
    cores: float | None  # the nodes' cores busy, summed (None: no node's is known yet)
    memory: int | None  # the nodes' memory in bytes, summed


@dataclass(frozen=True)
class HostSeries:
    samplings: list[Sampling]
    raw: bool  # one point per sampling (the step is the poll interval)
    interval_us: int  # the poll interval: what `gaps` measures a missed sampling by


def series(
    session: Session, host_ids: Sequence[int], query: Query, step: int, interval: int
) -> dict[int, HostSeries]:
    """Each V-node's samplings from the start of the window's first step to its end."""
    step_us = step * 1_000_000
    lo = query.lo_us - query.lo_us % step_us
    n = NodeSample
    conn = session.connection()
    rows = conn.execute(
        select(
            n.host_id,
            epoch_us(n.at, conn.dialect.name),
            func.sum(n.cpu_cores),
            func.sum(n.memory_bytes),
        )
        .where(n.host_id.in_(host_ids), n.at >= _at(lo), n.at < _at(query.hi_us))
        .group_by(n.host_id, n.at)
        .order_by(n.host_id, n.at)
    ).all()
    out: dict[int, HostSeries] = {
        h: HostSeries([], step == interval, interval * 1_000_000) for h in host_ids
    }
    for host_id, ts, cores, memory in rows:
        out[host_id].samplings.append(
            Sampling(int(ts), cores, None if memory is None else int(memory))
        )
    return out


def points(
    host: HostSeries, metric: str, cores: int, query: Query, step_us: int
) -> tuple[list[int], list[float | int]]:
    """One metric's (times in µs, values) in the window."""
    if metric == "is_available":
        answered = sorted(s.ts for s in host.samplings)
        known = gaps(answered, step_us, host.interval_us)
        return _columns([(t, v) for t, v in known if query.contains(t)])
    values: list[tuple[int, float | int | None]]
    if metric == "cpu_util":
        values = [(s.ts, None if s.cores is None else 100.0 * s.cores / max(cores, 1))
                  for s in host.samplings]  # fmt: skip
    else:
        values = [(s.ts, None if s.memory is None else s.memory // 1024) for s in host.samplings]
    if host.raw:
        return _columns([(t, v) for t, v in values if v is not None and query.contains(t)])
    steps: dict[int, list[float | int]] = {}
    for t, v in values:
        if v is not None:
            steps.setdefault(t - t % step_us, []).append(v)
    out: list[tuple[int, float | int]] = []
    for t, vs in sorted(steps.items()):
        if query.contains(t):
            mean = sum(vs) / len(vs)
            out.append((t, mean if metric == "cpu_util" else round(mean)))
    return _columns(out)


def _columns(points: list[tuple[int, float | int]]) -> tuple[list[int], list[float | int]]:
    return [t for t, _ in points], [v for _, v in points]


def gaps(answered: Sequence[int], step_us: int, interval_us: int) -> list[tuple[int, int]]:
    """Per step (ascending): 1 where a sampling answered, 0 at the first step of each gap
    between two answers (before the first and after the last, nothing is known).

    `answered` are the samplings' own times (µs, ascending). A gap is a sampling missed:
    two answers more than 1.5 poll intervals apart. Rounds start a little early or late,
    so two answers one interval apart can fall two steps apart on the grid; the step
    between them then had no sampling but was not a gap, and is 1."""
    out: dict[int, int] = {}
    for i, ts in enumerate(answered):
        here = ts - ts % step_us
        if i:
            prev = answered[i - 1]
            between = range(prev - prev % step_us + step_us, here, step_us)
            if 2 * (ts - prev) > 3 * interval_us:
                if between:
                    out[between[0]] = 0
            else:
                out.update(dict.fromkeys(between, 1))
        out[here] = 1
    return sorted(out.items())


def _at(ts_us: int) -> dt.datetime:
    return EPOCH + dt.timedelta(microseconds=ts_us)
