"""Alarms in the database: evaluated after each poll round, listed, acknowledged.

`check(ctx)` reads what the latest polls stored (devices' consecutive failures, inventory
ports' states), the maintenance windows open now and the open alarms, lets
`evaluate` decide, and applies that in one transaction. Every open alarm's list of slices
is refreshed too (the reservations on its ports and links now), so a slice booked across
a link that is already down shows up on that alarm.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, sessionmaker

from federica.alarms.evaluate import (
    SLICE_KINDS,
    CircuitLoad,
    Decisions,
    DeviceState,
    Kind,
    Maintenance,
    NodeHealth,
    OpenAlarm,
    PortState,
    evaluate,
    evaluate_slices,
)
from federica.alarms.models import Alarm
from federica.config import Settings, SettingsError
from federica.db import transaction
from federica.errors import Conflict, NotFound
from federica.monitoring.models import MonitoredDevice, MonitoredInterface
from federica.monitoring.poller import Poller, Round
from federica.monitoring.service import make_poller as make_monitoring_poller
from federica.slices.lifecycle import HOLDING
from federica.slices.models import MaintenanceTarget, MaintenanceWindow, Reservation, Slice
from federica.slicestats.latest import circuits_now, nodes_now
from federica.substrate.drivers.compute.registry import ComputeDrivers
from federica.substrate.models import Device, Link, Pop, Port

log = logging.getLogger(__name__)


class Context(Protocol):
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]
    compute_drivers: ComputeDrivers

    def now(self) -> dt.datetime: ...


def check_settings(settings: Settings) -> None:
    if settings.alarm_unreachable_polls < 1:
        raise SettingsError(
            "FEDERICA_ALARM_UNREACHABLE_POLLS: must be at least 1, "
            f"got {settings.alarm_unreachable_polls}"
        )


def make_poller(ctx: Context) -> Poller:
    """The monitoring poller, with the alarms checked after each round it stored."""
    check_settings(ctx.settings)

    def after(_: Round) -> None:
        check(ctx)

    return make_monitoring_poller(ctx, after=after)


def check(ctx: Context) -> Decisions:
    now = ctx.now()
    with transaction(ctx.sessions) as session:
        open_rows = list(session.scalars(select(Alarm).where(Alarm.cleared_at.is_(None))))
        opened = [OpenAlarm(a.id, Kind(a.kind), a.subject, a.suppressed) for a in open_rows]
        decisions = evaluate(
            _devices(session),
            _ports(session),
            [a for a in opened if a.kind not in SLICE_KINDS],
            unreachable_after=ctx.settings.alarm_unreachable_polls,
            maintenance=_maintenance(session, now),
        )
        _merge(decisions, _slice_decisions(ctx, session, opened, now))
        by_id = {a.id: a for a in open_rows}
        for alarm_id in decisions.clear:
            by_id.pop(alarm_id).cleared_at = now
        for alarm_id in decisions.suppress:
            by_id[alarm_id].suppressed = True
        for alarm_id in decisions.unsuppress:
            by_id[alarm_id].suppressed = False
        watched = list(by_id.values())
        for new in decisions.raise_:
            row = Alarm(
                kind=new.kind.value,
                subject=new.subject,
                device=new.device,
                link=new.link,
                detail=new.detail,
                raised_at=now,
                suppressed=False,
            )
            session.add(row)
            watched.append(row)
            log.warning("alarm raised: %s %s (%s)", new.kind.value, new.subject, new.detail)
        for row in watched:
            row.slices = json.dumps(_slices(session, row, now))
    return decisions


def _merge(into: Decisions, more: Decisions) -> None:
    into.raise_ += more.raise_
    into.clear += more.clear
    into.suppress += more.suppress
    into.unsuppress += more.unsuppress


def _slice_decisions(
    ctx: Context, session: Session, opened: list[OpenAlarm], now: dt.datetime
) -> Decisions:
    """The per-slice alarms: circuits carrying more than booked, nodes that died."""
    loads = [
        CircuitLoad(c.slice_id, c.slice, c.circuit, c.booked_mbps, c.carried_bps, c.where)
        for c in circuits_now(session, now, ctx.settings)
    ]
    nodes = [NodeHealth(n.slice_id, n.slice, n.node, n.v_node, n.state) for n in nodes_now(session)]
    return evaluate_slices(loads, nodes, [a for a in opened if a.kind in SLICE_KINDS])


def _slice_of(session: Session, alarm: Alarm) -> list[dict[str, Any]]:
    """A per-slice alarm's own slice (its subject is "s<id>:<part>")."""
    ref = alarm.subject.split(":", 1)[0]
    sl = session.get(Slice, int(ref[1:])) if ref[1:].isdigit() else None
    return [] if sl is None else [{"id": sl.id, "name": sl.name, "project": sl.project}]


def _devices(session: Session) -> list[DeviceState]:
    rows = session.execute(
        select(Device.name, MonitoredDevice.consecutive_failures, MonitoredDevice.error).join(
            MonitoredDevice, MonitoredDevice.device_id == Device.id
        )
    )
    return [DeviceState(name, failures, error) for name, failures, error in rows]


def _ports(session: Session) -> list[PortState]:
    """The polled interfaces that are inventory ports (per-VLAN rows and the like are not
    watched), each with the link it is an end of."""
    link_of = {}
    for name, a, b in session.execute(select(Link.name, Link.port_a_id, Link.port_b_id)):
        link_of[a] = link_of[b] = name
    rows = session.execute(
        select(Device.name, MonitoredInterface)
        .join(Device, MonitoredInterface.device_id == Device.id)
        .where(MonitoredInterface.port_id.is_not(None))
    )
    return [
        PortState(device, i.name, i.admin_status, i.oper_status, link_of.get(i.port_id or 0))
        for device, i in rows
    ]


def _maintenance(session: Session, now: dt.datetime) -> Maintenance:
    windows = session.scalars(
        select(MaintenanceWindow).where(MaintenanceWindow.start <= now, MaintenanceWindow.end > now)
    ).all()
    devices = {w.target for w in windows if w.target_kind == MaintenanceTarget.DEVICE}
    pops = [w.target for w in windows if w.target_kind == MaintenanceTarget.POP]
    if pops:
        devices |= set(session.scalars(select(Device.name).join(Pop).where(Pop.name.in_(pops))))
    links = {w.target for w in windows if w.target_kind == MaintenanceTarget.LINK}
    return Maintenance(frozenset(devices), frozenset(links))


def _resources(session: Session, alarm: Alarm) -> tuple[list[int], list[int]]:
    """The port and link ids an alarm's subject stands for."""
    kind = Kind(alarm.kind)
    if kind == Kind.LINK_DOWN:
        link = session.scalar(select(Link).where(Link.name == alarm.subject))
        return ([link.port_a_id, link.port_b_id], [link.id]) if link else ([], [])
    if kind == Kind.PORT_DOWN:
        device, _, port = alarm.subject.partition(":")
        port_ids = list(
            session.scalars(
                select(Port.id).join(Device).where(Device.name == device, Port.name == port)
            )
        )
    else:
        port_ids = list(
            session.scalars(select(Port.id).join(Device).where(Device.name == alarm.subject))
        )
    links = list(
        session.scalars(
            select(Link.id).where(or_(Link.port_a_id.in_(port_ids), Link.port_b_id.in_(port_ids)))
        )
    )
    return port_ids, links


def _slices(session: Session, alarm: Alarm, now: dt.datetime) -> list[dict[str, Any]]:
    """The slices holding a reservation on the alarm's ports or links now."""
    if Kind(alarm.kind) in SLICE_KINDS:
        return _slice_of(session, alarm)
    port_ids, link_ids = _resources(session, alarm)
    if not port_ids and not link_ids:
        return []
    rows = session.execute(
        select(Slice.id, Slice.name, Slice.project)
        .join(Reservation, Reservation.slice_id == Slice.id)
        .where(
            Slice.status.in_([s.value for s in HOLDING]),
            Reservation.start <= now,
            Reservation.end > now,
            or_(Reservation.port_id.in_(port_ids), Reservation.link_id.in_(link_ids)),
        )
        .distinct()
        .order_by(Slice.name)
    )
    return [{"id": i, "name": name, "project": project} for i, name, project in rows]


# -- reading and acknowledging --------------------------------------------------------------


def listing(session: Session, *, include_cleared: bool = False) -> list[Alarm]:
    query = select(Alarm).order_by(Alarm.raised_at.desc(), Alarm.id.desc())
    if not include_cleared:
        query = query.where(Alarm.cleared_at.is_(None))
    return list(session.scalars(query))


def open_counts(session: Session) -> dict[tuple[str, bool], int]:
    """Open alarms by kind and whether they are suppressed."""
    rows = session.execute(
        select(Alarm.kind, Alarm.suppressed, func.count())
        .where(Alarm.cleared_at.is_(None))
        .group_by(Alarm.kind, Alarm.suppressed)
    )
    return {(kind, suppressed): n for kind, suppressed, n in rows}


def projects_of(alarm: Alarm) -> set[str]:
    return {s["project"] for s in json.loads(alarm.slices) if s.get("project")}


def visible(alarms: Iterable[Alarm], projects: frozenset[str] | None) -> list[Alarm]:
    """All of them (projects None: an operator), else those touching one of `projects`."""
    if projects is None:
        return list(alarms)
    return [a for a in alarms if projects_of(a) & projects]


def get(session: Session, alarm_id: int) -> Alarm:
    alarm = session.get(Alarm, alarm_id)
    if alarm is None:
        raise NotFound(f"no alarm {alarm_id}")
    return alarm


def acknowledge(session: Session, alarm_id: int, who: str, now: dt.datetime) -> Alarm:
    """Mark an alarm as seen by `who`: it stays open until its condition clears."""
    alarm = get(session, alarm_id)
    if alarm.acked_at is not None:
        raise Conflict(f"alarm {alarm_id} was acknowledged by {alarm.acked_by} already")
    alarm.acked_at, alarm.acked_by = now, who[:128]
    session.flush()
    return alarm


def describe(alarm: Alarm) -> dict[str, Any]:
    return {
        "id": alarm.id,
        "kind": alarm.kind,
        "subject": alarm.subject,
        "device": alarm.device,
        "link": alarm.link,
        "detail": alarm.detail,
        "state": "cleared" if alarm.cleared_at else "open",
        "raised_at": alarm.raised_at.isoformat(),
        "cleared_at": alarm.cleared_at.isoformat() if alarm.cleared_at else None,
        "acknowledged": (
            {"by": alarm.acked_by, "at": alarm.acked_at.isoformat()} if alarm.acked_at else None
        ),
        "suppressed": alarm.suppressed,
        "slices": json.loads(alarm.slices),
    }
