"""Alarms in the database: evaluated after each poll round, listed, acknowledged.

`check(ctx)` reads what the latest polls stored (devices' consecutive failures, inventory
ports' states), the devices' NETCONF reachability (federica.substrate.reachability), the
maintenance windows open now and the open alarms, lets `evaluate` decide, and applies
that in one transaction. Every open alarm's list of slices
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

from federica.alarms import webhooks
from federica.alarms.evaluate import (
    PORT_OR_LINK_KINDS,
    SLICE_KINDS,
    SLICES_GIVEN,
    CircuitLoad,
    Decisions,
    DeviceState,
    Kind,
    Maintenance,
    NodeHealth,
    OpenAlarm,
    PortRates,
    PortState,
    RateSample,
    Thresholds,
    evaluate,
    evaluate_slices,
)
from federica.alarms.models import Alarm
from federica.config import Settings, SettingsError
from federica.db import transaction
from federica.errors import Conflict, NotFound
from federica.monitoring.models import RAW, InterfaceRate, MonitoredDevice, MonitoredInterface
from federica.monitoring.poller import Poller, Round
from federica.monitoring.service import make_poller as make_monitoring_poller
from federica.slices.lifecycle import HOLDING
from federica.slices.models import MaintenanceTarget, MaintenanceWindow, Reservation, Slice
from federica.slicestats.latest import circuits_now, nodes_now
from federica.substrate.drivers.compute.registry import ComputeDrivers
from federica.substrate.models import Device, DeviceReachability, Link, Pop, Port

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
    check_rate_settings(settings)


def check_rate_settings(settings: Settings) -> None:
    s = settings
    if s.alarm_rate_window_s < s.monitor_interval_s:
        raise SettingsError(
            "FEDERICA_ALARM_RATE_WINDOW_S: must be at least one polling interval "
            f"({s.monitor_interval_s:g} s), got {s.alarm_rate_window_s:g}"
        )
    if not 0 < s.alarm_utilisation_percent <= 100:
        raise SettingsError(
            "FEDERICA_ALARM_UTILISATION_PERCENT: must be over 0 and at most 100, "
            f"got {s.alarm_utilisation_percent:g}"
        )
    for name in ("alarm_error_rate_per_s", "alarm_discard_rate_per_s"):
        if getattr(s, name) < 0:
            raise SettingsError(
                f"FEDERICA_{name.upper()}: must not be negative, got {getattr(s, name):g}"
            )


def thresholds(settings: Settings) -> Thresholds:
    return Thresholds(
        window_s=settings.alarm_rate_window_s,
        utilisation_percent=settings.alarm_utilisation_percent,
        errors_per_s=settings.alarm_error_rate_per_s,
        discards_per_s=settings.alarm_discard_rate_per_s,
    )


def make_poller(ctx: Context) -> Poller:
    """The monitoring poller, with the alarms checked after each round it stored and
    the projects' webhooks that are due sent."""
    check_settings(ctx.settings)
    webhooks.check_settings(ctx.settings)

    def after(_: Round) -> None:
        check(ctx)
        webhooks.deliver_due(ctx)

    return make_monitoring_poller(ctx, after=after)


def check(ctx: Context) -> Decisions:
    now = ctx.now()
    with transaction(ctx.sessions) as session:
        open_rows = list(session.scalars(select(Alarm).where(Alarm.cleared_at.is_(None))))
        opened = [OpenAlarm(a.id, Kind(a.kind), a.subject, a.suppressed) for a in open_rows]
        decisions = evaluate(
            _devices(session, now, ctx.settings),
            _ports(session),
            [a for a in opened if a.kind not in SLICE_KINDS],
            unreachable_after=ctx.settings.alarm_unreachable_polls,
            maintenance=_maintenance(session, now),
            rates=_rates(session, now, ctx.settings),
            thresholds=thresholds(ctx.settings),
        )
        _merge(decisions, _slice_decisions(ctx, session, opened, now))
        by_id = {a.id: a for a in open_rows}
        told = {a.id: projects_of(a) for a in open_rows}
        cleared = []
        for alarm_id in decisions.clear:
            row = by_id.pop(alarm_id)
            row.cleared_at = now
            cleared.append(row)
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
            if row.kind not in SLICES_GIVEN:
                row.slices = json.dumps(_slices(session, row, now))
        session.flush()  # the new alarms' ids, for their deliveries
        _queue_webhooks(session, watched, told, cleared, now)
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


def _queue_webhooks(
    session: Session,
    watched: list[Alarm],
    told: dict[int, set[str]],
    cleared: list[Alarm],
    now: dt.datetime,
) -> None:
    """Raised: to each project whose slices an alarm touches that it did not touch
    before (a new alarm, or a slice booked across a fault); cleared: to those told of its
    raise, and those it touched last."""
    for row in watched:
        new = projects_of(row) - told.get(row.id, set())
        webhooks.queue(session, row, "raised", new, now, describe_for)
    for row in cleared:
        projects = projects_of(row) | webhooks.told_raised(session, row.id)
        webhooks.queue(session, row, "cleared", projects, now, describe_for)


def _devices(session: Session, now: dt.datetime, settings: Settings) -> list[DeviceState]:
    """Every device's SNMP poll state and, if it has been unreachable over NETCONF for as
    long as N polls take (the first failed poll counts at once, hence N - 1), why."""
    patience = dt.timedelta(
        seconds=(settings.alarm_unreachable_polls - 1) * settings.monitor_interval_s
    )
    rows = session.execute(
        select(
            Device.name,
            MonitoredDevice.consecutive_failures,
            MonitoredDevice.error,
            DeviceReachability,
        )
        .outerjoin(MonitoredDevice, MonitoredDevice.device_id == Device.id)
        .outerjoin(DeviceReachability, DeviceReachability.device_id == Device.id)
    )
    out = []
    for name, failures, error, mark in rows:
        netconf = ""
        if mark is not None and not mark.reachable and mark.since <= now - patience:
            netconf = f"unreachable since {mark.since:%Y-%m-%d %H:%M:%S} UTC: {mark.reason}"
        if failures is None and not netconf:
            continue  # neither polled nor seen unreachable: nothing known
        out.append(DeviceState(name, failures or 0, error or "", netconf))
    return out


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


def _rates(session: Session, now: dt.datetime, settings: Settings) -> list[PortRates]:
    """The raw rates of every polled inventory port over the rate window (and a little
    before, so that the window is covered back from the newest), each with what its
    utilisation is measured against: its link's capacity, else its polled speed, else its
    inventory speed."""
    since = now - dt.timedelta(
        seconds=settings.alarm_rate_window_s + 2 * settings.monitor_interval_s
    )
    links: dict[int, tuple[str, int]] = {}
    for name, a, b, capacity in session.execute(
        select(Link.name, Link.port_a_id, Link.port_b_id, Link.capacity_mbps)
    ):
        links[a] = links[b] = (name, capacity)
    interfaces = session.execute(
        select(Device.name, MonitoredInterface, Port.speed_mbps)
        .join(Device, MonitoredInterface.device_id == Device.id)
        .join(Port, Port.id == MonitoredInterface.port_id)
    ).all()
    samples: dict[int, list[RateSample]] = {}
    rows = session.scalars(
        select(InterfaceRate)
        .where(
            InterfaceRate.resolution_s == RAW,
            InterfaceRate.end > since,
            InterfaceRate.interface_id.in_([i.id for _, i, _ in interfaces]),
        )
        .order_by(InterfaceRate.start)
    )
    for r in rows:
        samples.setdefault(r.interface_id, []).append(
            RateSample(
                r.start.timestamp(),
                r.end.timestamp(),
                r.in_octets,
                r.out_octets,
                _total(r.in_errors, r.out_errors),
                _total(r.in_discards, r.out_discards),
            )
        )
    out = []
    for device, iface, speed in interfaces:
        link, capacity = links.get(iface.port_id or 0, (None, 0))
        out.append(
            PortRates(
                device,
                iface.name,
                capacity or iface.high_speed_mbps or speed,
                tuple(samples.get(iface.id, ())),
                link,
            )
        )
    return out


def _total(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a + b


def _maintenance(session: Session, now: dt.datetime) -> Maintenance:
    windows = session.scalars(
        select(MaintenanceWindow).where(MaintenanceWindow.start <= now, MaintenanceWindow.end > now)
    ).all()
    devices = {w.target for w in windows if w.target_kind == MaintenanceTarget.DEVICE}
    pops = [w.target for w in windows if w.target_kind == MaintenanceTarget.POP]
    if pops:
        devices |= set(session.scalars(select(Device.name).join(Pop).where(Pop.name.in_(pops))))
    links = {w.target for w in windows if w.target_kind == MaintenanceTarget.LINK}
    if devices:
        # A link with an end on a device under maintenance is too, even while that device
        # has no port states stored (never answered a poll): its far end's carrier goes
        # down with it, and that is the maintenance, not a fault.
        ends = select(Port.id).join(Device).where(Device.name.in_(devices))
        links |= set(
            session.scalars(
                select(Link.name).where(or_(Link.port_a_id.in_(ends), Link.port_b_id.in_(ends)))
            )
        )
    return Maintenance(frozenset(devices), frozenset(links))


def _resources(session: Session, alarm: Alarm) -> tuple[list[int], list[int]]:
    """The port and link ids an alarm's subject stands for."""
    kind = Kind(alarm.kind)
    if kind in PORT_OR_LINK_KINDS and alarm.link:
        link = session.scalar(select(Link).where(Link.name == alarm.link))
        return ([link.port_a_id, link.port_b_id], [link.id]) if link else ([], [])
    if kind in PORT_OR_LINK_KINDS:
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


def touching_slice(session: Session, slice_id: int) -> list[Alarm]:
    """The open alarms that list the slice (newest first)."""
    return [
        a for a in listing(session) if any(s.get("id") == slice_id for s in json.loads(a.slices))
    ]


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


def describe_for(alarm: Alarm, projects: frozenset[str] | None) -> dict[str, Any]:
    """As `projects`' members see it (None: the facility's staff): the slices it lists
    are theirs only."""
    out = describe(alarm)
    if projects is not None:
        out["slices"] = [s for s in out["slices"] if s.get("project") in projects]
    return out


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


# -- raised by services (an emergency stop that could not reach a device) ------------------


def raise_service_alarm(
    session: Session,
    kind: Kind,
    subject: str,
    *,
    detail: str,
    now: dt.datetime,
    device: str | None = None,
    slices: list[dict[str, Any]] | None = None,
) -> Alarm:
    """Open an alarm of a kind that no poll evaluates (evaluate.RAISED_BY_SERVICES), or,
    if one is open for this subject already, bring its detail and slices up to date."""
    existing = session.scalar(
        select(Alarm).where(
            Alarm.kind == kind.value, Alarm.subject == subject, Alarm.cleared_at.is_(None)
        )
    )
    row = existing or Alarm(kind=kind.value, subject=subject, raised_at=now, suppressed=False)
    row.device, row.detail = device, detail[:500]
    if slices is not None:
        row.slices = json.dumps(slices)
    if existing is None:
        session.add(row)
        log.warning("alarm raised: %s %s (%s)", kind.value, subject, detail)
    session.flush()
    return row


def clear_service_alarm(session: Session, kind: Kind, subject: str, now: dt.datetime) -> bool:
    row = session.scalar(
        select(Alarm).where(
            Alarm.kind == kind.value, Alarm.subject == subject, Alarm.cleared_at.is_(None)
        )
    )
    if row is None:
        return False
    row.cleared_at = now
    return True
