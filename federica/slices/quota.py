"""Per-project quota in vCPU-hours per calendar month, checked at booking and extension.

A project without a quota row is unlimited. Usage counts every reservation of the
project's slices that falls in the month (released slices count what they held).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.errors import Conflict, FieldError, InvalidInput
from federica.slices.calendar import Interval
from federica.slices.models import ProjectQuota, Reservation, ReservationKind, Slice
from federica.slices.request import SliceRequest


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


def check(
    session: Session,
    req: SliceRequest,
    window: Interval,
    *,
    vcpu: int | None = None,
    exclude: int | None = None,
) -> None:
    """Refuse a booking (or an extension: `exclude` the slice itself) that would take the
    project over its monthly vCPU-hours."""
    if req.project is None:
        return
    limit = session.get(ProjectQuota, req.project)
    if limit is None:
        return
    need = vcpu if vcpu is not None else sum(n.vcpu for n in req.nodes)
    for month in months(window):
        have = used(session, req.project, month, exclude)
        want = vcpu_hours(need, window, month)
        if have + want > limit.vcpu_hours_per_month:
            left = max(0.0, limit.vcpu_hours_per_month - have)
            raise QuotaExceeded(
                f"project {req.project!r} has a quota of {limit.vcpu_hours_per_month} vCPU-hours "
                f"in {month.start:%B %Y}; {have:.0f} are booked and this needs {want:.0f} "
                f"({left:.0f} left)",
                errors=[FieldError("project", "over its monthly vCPU-hours quota").as_dict()],
            )


def set_quota(session: Session, project: str, vcpu_hours_per_month: int | None) -> None:
    if not 1 <= len(project) <= 64:
        raise InvalidInput([FieldError("project", "a project name is 1 to 64 characters")])
    if vcpu_hours_per_month is not None and vcpu_hours_per_month < 0:
        raise InvalidInput([FieldError("vcpu_hours_per_month", "a whole number >= 0")])
    row = session.get(ProjectQuota, project)
    if vcpu_hours_per_month is None:
        if row is not None:
            session.delete(row)
        return
    if row is None:
        session.add(ProjectQuota(project=project, vcpu_hours_per_month=vcpu_hours_per_month))
    else:
        row.vcpu_hours_per_month = vcpu_hours_per_month
    session.flush()
