"""Usage accounting from the reservations (what each slice held, and for how long; a
released slice's reservations end at its release): per slice, per project totals, and
CSV or JSON for export.

Units: node-hours (nodes times hours held), vCPU-hours and RAM GB-hours (what the V-nodes
reserved), and link Mb/s-hours (bandwidth reserved on each physical link or V-node uplink
a circuit crosses, so a circuit over three links counts three times: it takes capacity
from each).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federica import inputs
from federica.aaa.models import User
from federica.slices.calendar import Interval
from federica.slices.models import Reservation, ReservationKind, Slice, SliceNode

_MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")

# A hop's tag row carries its Mb/s (older bookings: a row of its own, the tag's has 0).
BANDWIDTH = (
    ReservationKind.LINK_VLAN,
    ReservationKind.PORT_VLAN,
    ReservationKind.LINK_BANDWIDTH,
    ReservationKind.PORT_BANDWIDTH,
)
UNITS = ("node_hours", "vcpu_hours", "ram_gb_hours", "link_mbps_hours")


def _hours(start: dt.datetime, end: dt.datetime, period: Interval) -> float:
    lo, hi = max(start, period.start), min(end, period.end)
    return max(0.0, (hi - lo).total_seconds() / 3600)


@dataclass
class SliceUsage:
    slice_id: int
    slice: str
    project: str | None
    owner: str | None
    status: str
    start: str
    end: str
    node_hours: float = 0.0
    vcpu_hours: float = 0.0
    ram_gb_hours: float = 0.0
    link_mbps_hours: float = 0.0


@dataclass
class Report:
    period_start: str
    period_end: str
    slices: list[SliceUsage] = field(default_factory=list)

    def totals(self) -> dict[str, dict[str, float]]:
        """Per project (None: the facility's own slices, as "")."""
        out: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(UNITS, 0.0))
        for u in self.slices:
            row = out[u.project or ""]
            for unit in UNITS:
                row[unit] += getattr(u, unit)
        return {p: {k: round(v, 3) for k, v in row.items()} for p, row in sorted(out.items())}

    def as_json(self) -> dict[str, Any]:
        return {
            "period": {"start": self.period_start, "end": self.period_end},
            "units": list(UNITS),
            "slices": [asdict(u) for u in self.slices],
            "projects": self.totals(),
        }

    def as_csv(self) -> str:
        buf = io.StringIO()
        columns = list(SliceUsage.__dataclass_fields__)
        writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for u in self.slices:
            writer.writerow(asdict(u))
        return buf.getvalue()


def report(session: Session, period: Interval, projects: frozenset[str] | None = None) -> Report:
    """Usage of every slice that held something during the period (`projects`: only
    those; None: all)."""
    query = (
        select(Slice, User.username)
        .outerjoin(User, Slice.owner_id == User.id)
        .where(Slice.start < period.end, Slice.end > period.start)
        .order_by(Slice.id)
    )
    if projects is not None:
        query = query.where(Slice.project.in_(projects))
    rep = Report(period.start.isoformat(), period.end.isoformat())
    by_id: dict[int, SliceUsage] = {}
    for sl, owner in session.execute(query):
        by_id[sl.id] = SliceUsage(
            sl.id, sl.name, sl.project, owner, sl.status.value, sl.start.isoformat(),
            sl.end.isoformat(),
        )  # fmt: skip
    if not by_id:
        return rep
    ids = list(by_id)
    node_counts = dict(
        session.execute(
            select(SliceNode.slice_id, func.count()).where(SliceNode.slice_id.in_(ids))
            .group_by(SliceNode.slice_id)
        ).all()
    )  # fmt: skip
    rows = session.execute(
        select(
            Reservation.slice_id, Reservation.kind, Reservation.start, Reservation.end,
            Reservation.vcpu, Reservation.ram_mb, Reservation.bandwidth_mbps,
        ).where(Reservation.slice_id.in_(ids))
    )  # fmt: skip
    held: dict[int, list[tuple[dt.datetime, dt.datetime]]] = defaultdict(list)
    for slice_id, kind, start, end, vcpu, ram_mb, mbps in rows:
        u, hours = by_id[slice_id], _hours(start, end, period)
        if kind is ReservationKind.COMPUTE:
            u.vcpu_hours += vcpu * hours
            u.ram_gb_hours += ram_mb / 1024 * hours
            held[slice_id].append((start, end))
        elif kind in BANDWIDTH:
            u.link_mbps_hours += mbps * hours
    for slice_id, spans in held.items():
        # Every node of a slice is held over the same window (its compute reservations').
        start, end = min(s for s, _ in spans), max(e for _, e in spans)
        by_id[slice_id].node_hours = node_counts.get(slice_id, 0) * _hours(start, end, period)
    for u in by_id.values():
        for unit in UNITS:
            setattr(u, unit, round(getattr(u, unit), 3))
    rep.slices = list(by_id.values())
    return rep


def month_period(text: str) -> Interval:
    """'2026-11' → [2026-11-01, 2026-12-01) UTC; ValueError unless YYYY-MM in range."""
    m = _MONTH.fullmatch(text)
    if m is None:
        raise ValueError(f"expected YYYY-MM, got {text!r}")
    start = dt.datetime(int(m.group(1)), int(m.group(2)), 1, tzinfo=dt.UTC)
    if not inputs.MIN_INSTANT <= start < inputs.MAX_INSTANT:
        raise ValueError(f"{text!r} is outside the supported range")
    return Interval(start, (start + dt.timedelta(days=32)).replace(day=1))
