"""The facility at a glance (map coloured by load, device health, V-node load, open
alarms; refreshed in place by noc.js), and one device's or link's page with charts."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.aaa.policy import Action
from federica.alarms import service as alarms
from federica.alarms.models import Alarm
from federica.alarms.severity import rank, severity
from federica.errors import FieldError, InvalidInput, NotFound
from federica.monitoring import overview, store
from federica.monitoring.models import MonitoredInterface
from federica.slices import availability
from federica.slices.calendar import Interval
from federica.slices.models import Reservation, Slice
from federica.substrate.models import Device, Link, Port
from federica.web.auth import guard
from federica.web.context import ctx, read_session
from federica.web.noc import charts, noc
from federica.web.portal import figures
from federica.web.portal.drawing import Drawing

# Chart ranges, with the step that keeps each under a few hundred points and lets the
# rollups (raw 24 h, 5 min for 30 d, 1 h for a year) serve them.
RANGES = {"1h": (3600, 30), "24h": (86400, 300), "30d": (30 * 86400, 3600)}
LEVEL_WORDS = {
    "ok": "under 50 %",
    "busy": "50-80 %",
    "full": "over 80 %",
    "down": "down",
    "unknown": "no data",
}


def _state(s: Session) -> dict[str, Any]:
    """What the map page shows and noc.js refreshes, as one JSON-able dict."""
    now = ctx().now()
    loads = overview.link_loads(s, now, ctx().settings)
    health = overview.device_health(s)
    av = availability.over(s, Interval(now, now + dt.timedelta(minutes=1)))
    open_alarms = alarms.listing(s)
    shown = [a for a in open_alarms if not a.suppressed]
    shown.sort(key=lambda a: (rank(a.kind), -a.raised_at.timestamp()))
    return {
        "at": now.isoformat(),
        "links": [
            {
                "name": lk.link,
                "level": lk.level,
                "label": _load_label(lk),
                "a_to_b_bps": lk.a_to_b_bps,
                "b_to_a_bps": lk.b_to_a_bps,
                "capacity_mbps": lk.capacity_mbps,
            }
            for lk in loads
        ],
        "devices": [
            {
                "name": d.device,
                "pop": d.pop,
                "netconf": _yes_no(d.netconf),
                "snmp": _yes_no(d.snmp),
                "problem": d.netconf_reason if d.netconf is False else d.snmp_error,
                "uptime": _uptime(d.uptime_s),
                "healthy": d.healthy,
            }
            for d in health
        ],
        "hosts": [
            {
                "name": h.name,
                "pop": h.pop,
                "cpu": f"{h.cpu - h.cpu_free}/{h.cpu}",
                "ram": f"{(h.ram_mb - h.ram_free_mb) // 1024}/{h.ram_mb // 1024} GiB",
            }
            for h in av.hosts
        ],
        "alarms": {
            "open": len(shown),
            "suppressed": len(open_alarms) - len(shown),
            "list": [_alarm_row(a) for a in shown[:20]],
        },
    }


def _alarm_row(a: Alarm) -> dict[str, Any]:
    d = alarms.describe(a)
    return {**d, "severity": severity(a.kind)}


def _load_label(lk: overview.LinkLoad) -> str:
    used = lk.utilisation
    if lk.level == "down":
        return "down"
    return "no data" if used is None else f"{used * 100:.0f} %"


def _yes_no(v: bool | None) -> str:
    return "unknown" if v is None else "yes" if v else "no"


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    days, rest = divmod(int(seconds), 86400)
    if days:
        return f"{days} d {rest // 3600} h"
    if rest >= 3600:
        return f"{rest // 3600} h {rest % 3600 // 60} min"
    return f"{rest // 60} min {rest % 60} s"


def _map(s: Session, state: dict[str, Any]) -> Drawing:
    av = availability.over(s, Interval(ctx().now(), ctx().now() + dt.timedelta(minutes=1)))
    drawing = figures.free_capacity(s, av)
    by_name = {lk["name"]: lk for lk in state["links"]}
    for i, line in enumerate(drawing.links):
        load = by_name.get(line.name)
        if load is not None:
            drawing.links[i] = type(line)(
                line.name,
                line.x1,
                line.y1,
                line.x2,
                line.y2,
                load["label"],
                False,
                load["level"],
                line.bend,
            )
    return drawing


@noc.get("/")
@guard(Action.MONITORING_READ)
def facility() -> ResponseReturnValue:
    with read_session() as s:
        state = _state(s)
        drawing = _map(s, state)
    return render_template(
        "noc/facility.html", state=state, drawing=drawing, levels=LEVEL_WORDS, span_min=5
    )


@noc.get("/state.json")
@guard(Action.MONITORING_READ)
def facility_state() -> ResponseReturnValue:
    with read_session() as s:
        return jsonify(_state(s))


def _range() -> tuple[str, dt.datetime, dt.datetime, int]:
    name = request.args.get("range", "1h")
    if name not in RANGES:
        raise InvalidInput([FieldError("range", f"{name!r} is not one of {', '.join(RANGES)}")])
    span_s, step_s = RANGES[name]
    end = ctx().now()
    return name, end - dt.timedelta(seconds=span_s), end, step_s


def _points(periods: list[Any], column: str, factor: float = 1.0) -> list[charts.Point]:
    return [
        (p.start, None if p.values.get(column) is None else p.values[column] * factor)
        for p in periods
    ]


def _interface_charts(
    s: Session,
    iface: MonitoredInterface,
    label: str,
    start: dt.datetime,
    end: dt.datetime,
    step: int,
) -> list[charts.Chart]:
    now, settings = ctx().now(), ctx().settings
    periods = store.series(s, [iface.id], (start, end), step, now, settings)[iface.id]
    traffic = charts.chart(
        f"{label}: traffic",
        "b/s",
        start,
        end,
        {"rx": _points(periods, "in_octets", 8), "tx": _points(periods, "out_octets", 8)},
        {"rx": "series-rx", "tx": "series-tx"},
    )
    faults = charts.chart(
        f"{label}: errors and drops",
        "/s",
        start,
        end,
        {
            "rx errors": _points(periods, "in_errors"),
            "tx errors": _points(periods, "out_errors"),
            "rx drops": _points(periods, "in_discards"),
            "tx drops": _points(periods, "out_discards"),
        },
    )
    return [traffic, faults]


@noc.get("/devices/<name>")
@guard(Action.MONITORING_READ)
def device_page(name: str) -> ResponseReturnValue:
    chosen, start, end, step = _range()
    with read_session() as s:
        dev = s.scalar(select(Device).where(Device.name == name))
        if dev is None:
            raise NotFound(f"no device {name!r}")
        health = next(h for h in overview.device_health(s) if h.device == name)
        ifaces = list(
            s.scalars(
                select(MonitoredInterface)
                .where(MonitoredInterface.device_id == dev.id)
                .order_by(MonitoredInterface.if_index)
            )
        )
        port = request.args.get("port") or next(
            (i.name for i in ifaces if i.port_id is not None), None
        )
        shown = next((i for i in ifaces if i.name == port), None)
        if port and ifaces and shown is None:
            raise InvalidInput([FieldError("port", f"{name} has no polled interface {port!r}")])
        drawn = [] if shown is None else _interface_charts(s, shown, port or "", start, end, step)
        rows = [
            {
                "name": i.name,
                "alias": i.alias,
                "admin": i.admin_status,
                "oper": i.oper_status,
                "speed_mbps": i.high_speed_mbps,
                "inventory": i.port_id is not None,
            }
            for i in ifaces
        ]
        device_alarms = [_alarm_row(a) for a in alarms.listing(s) if a.device == name]
    return render_template(
        "noc/device.html",
        device=dev.name,
        pop=health.pop,
        health=health,
        uptime=_uptime(health.uptime_s),
        interfaces=rows,
        port=port,
        charts=drawn,
        ranges=list(RANGES),
        chosen=chosen,
        alarms=device_alarms,
    )


@noc.get("/links/<name>")
@guard(Action.MONITORING_READ)
def link_page(name: str) -> ResponseReturnValue:
    chosen, start, end, step = _range()
    now = ctx().now()
    with read_session() as s:
        link = s.scalar(select(Link).where(Link.name == name))
        if link is None:
            raise NotFound(f"no link {name!r}")
        drawn: list[charts.Chart] = []
        ends = []
        for port_id in (link.port_a_id, link.port_b_id):
            port = s.get_one(Port, port_id)
            label = f"{port.device.name}:{port.name}"
            ends.append(label)
            iface = s.scalar(
                select(MonitoredInterface).where(MonitoredInterface.port_id == port_id)
            )
            if iface is not None:
                drawn.extend(_interface_charts(s, iface, label, start, end, step))
        crossing = s.execute(
            select(Slice.id, Slice.name, Slice.project, Slice.status, Reservation.vlan)
            .join(Reservation, Reservation.slice_id == Slice.id)
            .where(Reservation.link_id == link.id, Reservation.start <= now, Reservation.end > now)
            .order_by(Slice.name)
        ).all()
        load = next(lk for lk in overview.link_loads(s, now, ctx().settings) if lk.link == name)
        link_alarms = [_alarm_row(a) for a in alarms.listing(s) if a.link == name]
    return render_template(
        "noc/link.html",
        link=name,
        capacity_mbps=link.capacity_mbps,
        ends=ends,
        load=load,
        load_label=_load_label(load),
        charts=drawn,
        ranges=list(RANGES),
        chosen=chosen,
        slices=[
            {"id": i, "name": n, "project": p, "status": st.value, "vlan": v}
            for i, n, p, st, v in crossing
        ],
        alarms=link_alarms,
    )
