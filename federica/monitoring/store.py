"""Rates in the database: roll-ups, pruning, and series over a window.

Raw rates (one per poll) are averaged into 5-minute periods and those into hourly ones
(`rollup.average`, time-weighted); each resolution is kept for its configured time and
then deleted (`prune`). A series uses, for each part of its window, the coarsest stored
resolution no coarser than the step that has data there, and finer or coarser ones where
that has none (recent periods not rolled up yet, old ones whose raw rows are gone).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, delete, func, select
from sqlalchemy.orm import Session

from federica.config import Settings
from federica.db import insert_rows
from federica.monitoring.models import RATE_COLUMNS, RAW, InterfaceRate, NodeSample, RollupMark
from federica.monitoring.rollup import Period, Span, average, floor

FIVE_MIN = 300
HOUR = 3600
# Each roll-up reads from the next finer resolution.
SOURCES = {FIVE_MIN: RAW, HOUR: FIVE_MIN}
# One maintenance call rolls up at most this much time (catching up after a pause is
# spread over calls instead of one transaction over a day of raw rows).
MAX_ROLLUP_SPAN = dt.timedelta(hours=6)

Interval = tuple[dt.datetime, dt.datetime]


def retention(settings: Settings) -> dict[int, dt.timedelta]:
    return {
        RAW: dt.timedelta(hours=settings.monitor_raw_hours),
        FIVE_MIN: dt.timedelta(hours=settings.monitor_5min_hours),
        HOUR: dt.timedelta(hours=settings.monitor_1h_hours),
    }


def rollup(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Roll up every period that ended long enough ago; returns the rows written."""
    # A raw rate is written up to one interval (and a round's duration) after it ended.
    grace = dt.timedelta(seconds=2 * settings.monitor_interval_s)
    written = 0
    marks = {m.resolution_s: m for m in session.scalars(select(RollupMark))}
    for resolution, source in SOURCES.items():
        until = floor(now - grace, resolution)
        if source != RAW:
            finer = marks.get(source)
            if finer is None:
                continue
            until = min(until, floor(finer.done_until, resolution))
        mark = marks.get(resolution)
        if mark is None:
            first = session.scalar(
                select(InterfaceRate.start)
                .where(InterfaceRate.resolution_s == source)
                .order_by(InterfaceRate.start)
                .limit(1)
            )
            if first is None:
                continue
            mark = RollupMark(resolution_s=resolution, done_until=floor(first, resolution))
            session.add(mark)
            marks[resolution] = mark
        since = mark.done_until
        if until <= since:
            continue
        # Skip time without data at once (the poller was stopped for a while).
        following = session.scalar(
            select(func.min(InterfaceRate.start)).where(
                InterfaceRate.resolution_s == source, InterfaceRate.end > since
            )
        )
        if following is None or floor(following, resolution) >= until:
            mark.done_until = until
            continue
        since = max(since, floor(following, resolution))
        until = min(until, since + MAX_ROLLUP_SPAN)
        spans = _spans(session, source, None, (since, until))
        rows = [
            _row(interface_id, resolution, period)
            for interface_id, its in spans.items()
            for period in average(its, resolution, RATE_COLUMNS, window=(since, until))
        ]
        insert_rows(session.connection(), _table(), rows)
        mark.done_until = until
        written += len(rows)
    session.flush()
    return written


def prune(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Delete what is older than each resolution keeps; returns the rows deleted."""
    deleted = 0
    for resolution, keep in retention(settings).items():
        result = session.execute(
            delete(InterfaceRate).where(
                InterfaceRate.resolution_s == resolution, InterfaceRate.end < now - keep
            )
        )
        deleted += cast(Any, result).rowcount or 0
    return deleted


def prune_node_samples(session: Session, now: dt.datetime, settings: Settings) -> int:
    """Nodes' samples are kept as long as raw rates (they are not rolled up)."""
    result = session.execute(
        delete(NodeSample).where(NodeSample.at < now - retention(settings)[RAW])
    )
    return cast(Any, result).rowcount or 0


@dataclass(frozen=True)
class Series:
    interface_id: int
    periods: list[Period]


def series(
    session: Session,
    interface_ids: Sequence[int],
    window: Interval,
    step_s: int,
    now: dt.datetime,
    settings: Settings,
) -> dict[int, list[Period]]:
    """Each interface's rates averaged over `step_s` periods inside `window`."""
    by_interface: dict[int, list[Span]] = {i: [] for i in interface_ids}
    if not interface_ids:
        return {}
    for resolution, part in plan_sources(session, window, step_s, now, settings):
        for interface_id, spans in _spans(session, resolution, interface_ids, part).items():
            by_interface[interface_id].extend(spans)
    return {
        i: average(spans, step_s, RATE_COLUMNS, window=window) for i, spans in by_interface.items()
    }


def plan_sources(
    session: Session, window: Interval, step_s: int, now: dt.datetime, settings: Settings
) -> list[tuple[int, Interval]]:
    """Which resolution serves which part of the window.

    A roll-up period says only how long it had data, not when: cut by the window's edge,
    its share of that time is a guess. So a roll-up first serves only the whole periods
    inside the window, and finer resolutions the edges; only where no finer one has data
    (raw rows already deleted) does a cut period serve, pro rata."""
    keep = retention(settings)
    marks = {m.resolution_s: m.done_until for m in session.scalars(select(RollupMark))}
    forever = dt.datetime.max.replace(tzinfo=dt.UTC)
    available: dict[int, Interval] = {RAW: (now - keep[RAW], forever)}
    for resolution in SOURCES:
        if resolution in marks:
            available[resolution] = (now - keep[resolution], marks[resolution])
    levels = sorted(available, reverse=True)
    preferred = [r for r in levels if r <= step_s] + sorted(r for r in levels if r > step_s)
    remaining: list[Interval] = [window]
    plan: list[tuple[int, Interval]] = []
    for whole_periods in (True, False):
        for resolution in preferred:
            lo, hi = available[resolution]
            left: list[Interval] = []
            for a, b in remaining:
                take = (max(a, lo), min(b, hi))
                if whole_periods and resolution != RAW:
                    take = (_ceil(take[0], resolution), floor(take[1], resolution))
                if take[0] < take[1]:
                    plan.append((resolution, take))
                    left.extend(x for x in ((a, take[0]), (take[1], b)) if x[0] < x[1])
                else:
                    left.append((a, b))
            remaining = left
    return sorted(plan, key=lambda p: p[1][0])


def _ceil(at: dt.datetime, period_s: int) -> dt.datetime:
    start = floor(at, period_s)
    return start if start == at else start + dt.timedelta(seconds=period_s)


def _spans(
    session: Session, resolution: int, interface_ids: Sequence[int] | None, part: Interval
) -> dict[int, list[Span]]:
    """Rows of one resolution overlapping `part`, cut to it."""
    lo, hi = part
    query = select(InterfaceRate).where(
        InterfaceRate.resolution_s == resolution, InterfaceRate.end > lo, InterfaceRate.start < hi
    )
    if interface_ids is not None:
        query = query.where(InterfaceRate.interface_id.in_(interface_ids))
    out: dict[int, list[Span]] = {}
    for row in session.scalars(query.execution_options(yield_per=5000)):
        start, end = max(row.start, lo), min(row.end, hi)
        full = (row.end - row.start).total_seconds()
        share = (end - start).total_seconds() / full
        covered = None if resolution == RAW else row.covered_s * share
        values = {name: getattr(row, name) for name in RATE_COLUMNS}
        out.setdefault(row.interface_id, []).append(Span(start, end, values, covered))
    return out


def _row(interface_id: int, resolution: int, period: Period) -> dict[str, Any]:
    return {
        "interface_id": interface_id,
        "resolution_s": resolution,
        "start": period.start,
        "end": period.end,
        "covered_s": period.covered_s,
        **{name: period.values.get(name) for name in RATE_COLUMNS},
    }


def _table() -> Table:
    return cast(Table, InterfaceRate.__table__)
