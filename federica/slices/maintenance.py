"""Operators' maintenance windows, and the calendar of one resource."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from federica import revision
from federica.errors import FieldError, InvalidInput, NotFound
from federica.slices.calendar import Interval
from federica.slices.index import index_for
from federica.slices.lifecycle import HOLDING
from federica.slices.models import MaintenanceTarget, MaintenanceWindow, Reservation, Slice
from federica.slices.request import parse_instant


def _interval(start: str, end: str, now: dt.datetime) -> Interval:
    errors: list[FieldError] = []
    times: dict[str, dt.datetime] = {}
    for name, raw in (("start", start), ("end", end)):
        try:
            times[name] = now if raw == "now" and name == "start" else parse_instant(raw)
        except ValueError as exc:
            errors.append(FieldError(name, str(exc)))
    if not errors and times["end"] <= times["start"]:
        errors.append(FieldError("end", "must be after start"))
    if not errors and times["end"] <= now:
        errors.append(FieldError("end", "is in the past"))
    if errors:
        raise InvalidInput(errors)
    return Interval(times["start"], times["end"])


def create(
    session: Session,
    *,
    target_kind: str,
    target: str,
    start: str,
    end: str,
    reason: str,
    now: dt.datetime,
) -> tuple[MaintenanceWindow, list[str]]:
    """Block a resource; returns the window and the slices that already hold it then
    (they are not touched: the operator decides)."""
    try:
        kind = MaintenanceTarget(target_kind)
    except ValueError:
        kinds = ", ".join(k.value for k in MaintenanceTarget)
        raise InvalidInput(
            [FieldError("target_kind", f"{target_kind!r} is not one of {kinds}")]
        ) from None
    if not reason.strip():
        raise InvalidInput([FieldError("reason", "required: say why (users see it)")])
    if len(reason) > 500:
        raise InvalidInput([FieldError("reason", "longer than 500 characters")])
    iv = _interval(start, end, now)
    index = index_for(session)
    rev = revision.bump(session, revision.CALENDAR)
    sub = index.refresh(session, now, upto=rev - 1)
    if not sub.exists(kind.value, target):
        raise InvalidInput([FieldError("target", f"no {kind.value} named {target!r}")])
    mw = MaintenanceWindow(
        target_kind=kind, target=target, start=iv.start, end=iv.end, reason=reason.strip()
    )
    session.add(mw)
    session.flush()
    return mw, affected(session, kind.value, target, iv)


def affected(session: Session, kind: str, target: str, iv: Interval) -> list[str]:
    index = index_for(session)
    sub = index.substrate
    assert sub is not None
    resources = sub.resources_of(kind, target)
    hosts = [rid for k, rid in resources if k == "host"]
    links = [rid for k, rid in resources if k == "link"]
    ports = [rid for k, rid in resources if k == "port"]
    if not resources:
        return []
    rows = session.scalars(
        select(Slice.name)
        .join(Reservation)
        .where(
            Slice.status.in_([s.value for s in HOLDING]),
            Reservation.start < iv.end,
            Reservation.end > iv.start,
            or_(
                Reservation.host_id.in_(hosts),
                Reservation.link_id.in_(links),
                Reservation.port_id.in_(ports),
            ),
        )
        .distinct()
        .order_by(Slice.name)
    )
    return list(rows)


def cancel(session: Session, window_id: int, now: dt.datetime) -> None:
    mw = session.get(MaintenanceWindow, window_id)
    if mw is None:
        raise NotFound(f"no maintenance window {window_id}")
    revision.bump(session, revision.CALENDAR)
    session.delete(mw)
    session.flush()


def upcoming(session: Session, now: dt.datetime) -> list[MaintenanceWindow]:
    return list(
        session.scalars(
            select(MaintenanceWindow)
            .where(MaintenanceWindow.end > now)
            .order_by(MaintenanceWindow.start)
        )
    )


def describe(mw: MaintenanceWindow) -> dict[str, Any]:
    return {
        "id": mw.id,
        "target_kind": mw.target_kind.value,
        "target": mw.target,
        "start": mw.start.isoformat(),
        "end": mw.end.isoformat(),
        "reason": mw.reason,
    }


def resource_calendar(
    session: Session, kind: str, name: str, start: dt.datetime, end: dt.datetime
) -> dict[str, Any]:
    """Who holds a link, V-node or port when: bookings and maintenance over [start, end)."""
    index = index_for(session)
    sub = index.refresh(session, start)
    if kind not in ("link", "host") or not sub.exists(kind, name):
        raise NotFound(f"no {kind} named {name!r} (calendars exist for links and V-nodes)")
    resources = sub.resources_of(kind, name)
    iv = Interval(start, end)
    conds = []
    for k, rid in resources:
        column = {
            "link": Reservation.link_id,
            "host": Reservation.host_id,
            "port": Reservation.port_id,
        }[k]
        conds.append(column == rid)
    rows = session.execute(
        select(Reservation, Slice.name, Slice.status)
        .join(Slice)
        .where(or_(*conds), Reservation.start < iv.end, Reservation.end > iv.start)
        .order_by(Reservation.start, Reservation.id)
    ).all()
    bookings = [
        {
            "slice": sname,
            "slice_status": status.value,
            "kind": r.kind.value,
            "start": r.start.isoformat(),
            "end": r.end.isoformat(),
            **({"vlan": r.vlan} if r.vlan is not None else {}),
            **({"bandwidth_mbps": r.bandwidth_mbps} if r.bandwidth_mbps else {}),
            **({"vcpu": r.vcpu, "ram_mb": r.ram_mb} if r.kind.value == "compute" else {}),
        }
        for r, sname, status in rows
    ]
    maint = [
        {
            "target": f"{m.target_kind.value} {m.target}",
            "start": m.interval.start.isoformat(),
            "end": m.interval.end.isoformat(),
            "reason": m.reason,
        }
        for m in index.maintenance
        if m.interval.overlaps(iv) and resources & sub.resources_of(m.target_kind.value, m.target)
    ]
    capacity: dict[str, int] = {}
    if kind == "link":
        lk = next(lk for lk in sub.links if lk.name == name)
        capacity = {"bandwidth_mbps": lk.capacity, "vlan_min": lk.vlan_min, "vlan_max": lk.vlan_max}
    else:
        h = next(h for h in sub.hosts if h.name == name)
        capacity = {"vcpu": h.cpu, "ram_mb": h.ram_mb, "uplink_mbps": h.speed}
    return {
        "resource": {"kind": kind, "name": name, "capacity": capacity},
        "from": start.isoformat(),
        "to": end.isoformat(),
        "bookings": bookings,
        "maintenance": maint,
    }
