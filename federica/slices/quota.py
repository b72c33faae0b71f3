"""Per-project quotas, checked at booking and extension (under the calendar lock, so two
bookings cannot both take the last of a quota):

* vCPU-hours per calendar month (the facility's resource-hours): every reservation of
  the project's slices in the month counts (released slices count what they held);
* nodes and circuit bandwidth (Mb/s) held at any one instant of the window.

A project without a quota row, or a limit left empty, is unlimited there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federica.errors import Conflict, FieldError, InvalidInput
from federica.inputs import DB_INT_MAX
from federica.slices.calendar import Interval
from federica.slices.models import ProjectQuota, Reservation, ReservationKind, Slice
from federica.slices.models import SliceCircuit as C
from federica.slices.models import SliceNode as N
from federica.slices.request import SliceRequest

LIMITS = ("vcpu_hours_per_month", "max_nodes", "max_bandwidth_mbps")


class QuotaExceeded(Conflict):
    title = "Over quota"
    type_slug = "quota-exceeded"


def months(window: Interval) -> list[Interval]:
    """The calendar months (UTC) the window touches."""
    out = []
    start = window.start.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    while start < window.end:
        nxt = (start + dt.timedelta(days=32)).replace(day=1)
        out.append(Interval(start, nxt))
        start = nxt
    return out


def vcpu_hours(vcpu: int, a: Interval, b: Interval) -> float:
    lo, hi = max(a.start, b.start), min(a.end, b.end)
    return max(0.0, (hi - lo).total_seconds() / 3600) * vcpu


def used(session: Session, project: str, month: Interval, exclude: int | None = None) -> float:
    rows = session.execute(
        select(Reservation.vcpu, Reservation.start, Reservation.end)
        .join(Slice)
        .where(
            Slice.project == project,
            Reservation.kind == ReservationKind.COMPUTE,
            Reservation.start < month.end,
            Reservation.end > month.start,
            Slice.id != (exclude or -1),
        )
    )
    return sum(vcpu_hours(v, Interval(s, e), month) for v, s, e in rows)


def peak(spans: Iterable[tuple[dt.datetime, dt.datetime, int]], window: Interval) -> int:
    """The largest sum of amounts held at one instant of the window, over half-open
    [start, end) spans (a span ending when another starts does not overlap it)."""
    changes: list[tuple[dt.datetime, int]] = []
    for start, end, amount in spans:
        lo, hi = max(start, window.start), min(end, window.end)
        if lo < hi and amount:
            changes += [(lo, amount), (hi, -amount)]
    best = level = 0
    for _, delta in sorted(changes, key=lambda c: (c[0], c[1])):  # ends before starts
        level += delta
        best = max(best, level)
    return best


def held_at_once(
    session: Session, project: str, window: Interval, exclude: int | None = None
) -> tuple[int, int]:
    """The project's peak nodes and peak circuit Mb/s over the window (other slices)."""
    nodes = select(func.count(N.id)).where(N.slice_id == Slice.id).scalar_subquery()
    bandwidth = (
        select(func.coalesce(func.sum(C.bandwidth_mbps), 0))
        .where(C.slice_id == Slice.id)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Slice.start, Slice.end, nodes, bandwidth).where(
            Slice.project == project,
            Slice.start < window.end,
            Slice.end > window.start,
            Slice.id != (exclude or -1),
        )
    ).all()
    return (
        peak(((s, e, n) for s, e, n, _ in rows), window),
        peak(((s, e, b) for s, e, _, b in rows), window),
    )


def _refuse(project: str, what: str, detail: str) -> QuotaExceeded:
    return QuotaExceeded(
        f"project {project!r} {detail}",
        quota=what,
        errors=[FieldError("project", f"over its quota of {what}").as_dict()],
    )


def check(
    session: Session,
    req: SliceRequest,
    window: Interval,
    *,
    vcpu: int | None = None,
    exclude: int | None = None,
) -> None:
    """Refuse a booking (or an extension: `exclude` the slice itself) that would take the
    project over a limit, naming the limit."""
    if req.project is None:
        return
    limit = session.get(ProjectQuota, req.project)
    if limit is None:
        return
    project = req.project
    if limit.max_nodes is not None or limit.max_bandwidth_mbps is not None:
        nodes, mbps = held_at_once(session, project, window, exclude)
        need_nodes = len(req.nodes)
        need_mbps = sum(c.bandwidth_mbps for c in req.circuits)
        if limit.max_nodes is not None and nodes + need_nodes > limit.max_nodes:
            raise _refuse(
                project,
                "nodes",
                f"may hold {limit.max_nodes} nodes at once; it holds up to {nodes} during "
                f"this window and this needs {need_nodes}",
            )
        if limit.max_bandwidth_mbps is not None and mbps + need_mbps > limit.max_bandwidth_mbps:
            raise _refuse(
                project,
                "bandwidth",
                f"may hold {limit.max_bandwidth_mbps} Mb/s of circuits at once; it holds up "
                f"to {mbps} Mb/s during this window and this needs {need_mbps}",
            )
    if limit.vcpu_hours_per_month is None:
        return
    need = vcpu if vcpu is not None else sum(n.vcpu for n in req.nodes)
    for month in months(window):
        have = used(session, project, month, exclude)
        want = vcpu_hours(need, window, month)
        if have + want > limit.vcpu_hours_per_month:
            left = max(0.0, limit.vcpu_hours_per_month - have)
            raise _refuse(
                project,
                "vCPU-hours",
                f"has a quota of {limit.vcpu_hours_per_month} vCPU-hours in "
                f"{month.start:%B %Y}; {have:.0f} are booked and this needs {want:.0f} "
                f"({left:.0f} left)",
            )


@dataclass(frozen=True)
class Limits:
    vcpu_hours_per_month: int | None = None
    max_nodes: int | None = None
    max_bandwidth_mbps: int | None = None


def parse_limits(body: dict[str, Any], current: Limits) -> Limits:
    """Limits from a request body: each key present replaces its limit (null: none)."""
    values = {name: getattr(current, name) for name in LIMITS}
    errors = []
    for name in LIMITS:
        if name not in body:
            continue
        value = body[name]
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= DB_INT_MAX
        ):
            errors.append(
                FieldError(name, f"a whole number from 0 to {DB_INT_MAX}, or null for no limit")
            )
        values[name] = value
    if errors:
        raise InvalidInput(errors)
    return Limits(**values)


def limits_of(session: Session, project: str) -> Limits:
    row = session.get(ProjectQuota, project)
    if row is None:
        return Limits()
    return Limits(row.vcpu_hours_per_month, row.max_nodes, row.max_bandwidth_mbps)


def set_limits(session: Session, project: str, limits: Limits) -> None:
    if not 1 <= len(project) <= 64:
        raise InvalidInput([FieldError("project", "a project name is 1 to 64 characters")])
    row = session.get(ProjectQuota, project)
    if all(getattr(limits, n) is None for n in LIMITS):
        if row is not None:
            session.delete(row)
        session.flush()
        return
    if row is None:
        row = ProjectQuota(project=project)
        session.add(row)
    for name in LIMITS:
        setattr(row, name, getattr(limits, name))
    session.flush()


def set_quota(session: Session, project: str, vcpu_hours_per_month: int | None) -> None:
    """The monthly vCPU-hours only (the other limits stay)."""
    if vcpu_hours_per_month is not None and vcpu_hours_per_month < 0:
        raise InvalidInput([FieldError("vcpu_hours_per_month", "a whole number >= 0")])
    current = limits_of(session, project)
    set_limits(
        session,
        project,
        Limits(vcpu_hours_per_month, current.max_nodes, current.max_bandwidth_mbps),
    )


def usage(session: Session, project: str, now: dt.datetime) -> dict[str, Any]:
    month = months(Interval(now, now + dt.timedelta(seconds=1)))[0]
    limits = limits_of(session, project)
    nodes, mbps = held_at_once(session, project, Interval(now, now + dt.timedelta(seconds=1)))
    return {
        "project": project,
        "vcpu_hours_per_month": limits.vcpu_hours_per_month,
        "max_nodes": limits.max_nodes,
        "max_bandwidth_mbps": limits.max_bandwidth_mbps,
        "month": f"{month.start:%Y-%m}",
        "used_vcpu_hours": round(used(session, project, month), 2),
        "nodes_now": nodes,
        "bandwidth_mbps_now": mbps,
    }
