"""What operators ask of the stored rates: a device's interfaces, a link's two ends, over a
window cut into steps. Services: they validate the window and read the database."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica import inputs
from federica.config import Settings
from federica.errors import FieldError, InvalidInput, NotFound
from federica.monitoring import store
from federica.monitoring.models import RATE_COLUMNS, MonitoredDevice, MonitoredInterface
from federica.monitoring.rollup import Period
from federica.substrate.models import Device, Link, Port

DEFAULT_SPAN = dt.timedelta(hours=1)
DEFAULT_STEP_S = 60
# One answer carries at most this many periods per interface.
MAX_POINTS = 2000
STEP_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
STEP_RE = re.compile(r"^([0-9]{1,9})([smhd]?)$")


@dataclass(frozen=True)
class Window:
    start: dt.datetime
    end: dt.datetime
    step_s: int


def parse_window(
    raw_from: str | None, raw_to: str | None, raw_step: str | None, now: dt.datetime
) -> Window:
    """?from&to&step: ISO 8601 times with a zone (to defaults to now, from to an hour
    before to) and a step in seconds or with a unit (30s, 5m, 1h, 1d; default 60 s)."""
    errors: list[FieldError] = []
    end = _instant("to", raw_to, errors) if raw_to is not None else now
    start = _instant("from", raw_from, errors) if raw_from is not None else None
    step_s = DEFAULT_STEP_S
    if raw_step is not None:
        m = STEP_RE.match(raw_step.strip())
        if m is None or int(m.group(1)) == 0:
            errors.append(FieldError("step", f"{raw_step!r} is not a step such as 60, 30s, 5m, 1h"))
        else:
            step_s = int(m.group(1)) * STEP_UNITS[m.group(2) or "s"]
    if errors:
        raise InvalidInput(errors)
    assert end is not None
    start = start if start is not None else end - DEFAULT_SPAN
    if start >= end:
        raise InvalidInput([FieldError("from", "must be before to")])
    points = (end - start).total_seconds() / step_s
    if points > MAX_POINTS:
        raise InvalidInput(
            [FieldError("step", f"gives {points:.0f} periods; at most {MAX_POINTS} per answer")]
        )
    return Window(start, end, step_s)


def _instant(field: str, raw: str, errors: list[FieldError]) -> dt.datetime | None:
    try:
        value = dt.datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        errors.append(FieldError(field, f"{raw!r} is not an ISO 8601 time"))
        return None
    if value.tzinfo is None:
        errors.append(FieldError(field, f"{raw!r} has no time zone (add 'Z' for UTC)"))
        return None
    try:
        return inputs.check_instant(value, raw)  # near year 1 or 9999 UTC would overflow
    except ValueError as exc:
        errors.append(FieldError(field, str(exc)))
        return None


def device_interfaces(
    session: Session,
    device: str,
    window: Window,
    now: dt.datetime,
    settings: Settings,
    interface: str | None = None,
) -> dict[str, Any]:
    """A device's polled interfaces (or one), each with its state and rates per step."""
    dev = session.scalar(select(Device).where(Device.name == device))
    if dev is None:
        raise NotFound(f"no device {device!r}")
    query = select(MonitoredInterface).where(MonitoredInterface.device_id == dev.id)
    if interface is not None:
        query = query.where(MonitoredInterface.name == interface)
    rows = list(session.scalars(query.order_by(MonitoredInterface.if_index)))
    if interface is not None and not rows:
        raise NotFound(f"device {device!r} has no polled interface {interface!r}")
    ids = [r.id for r in rows]
    series = store.series(session, ids, _span(window), window.step_s, now, settings)
    state = session.get(MonitoredDevice, dev.id)
    return {
        "device": dev.name,
        **_window_json(window),
        "polling": _state_json(state),
        "interfaces": [_interface_json(r, series[r.id]) for r in rows],
    }


def link(
    session: Session, name: str, window: Window, now: dt.datetime, settings: Settings
) -> dict[str, Any]:
    """Both ends of a link: what A sent is what B received (and the other way)."""
    row = session.scalar(select(Link).where(Link.name == name))
    if row is None:
        raise NotFound(f"no link {name!r}")
    ends = []
    for port_id in (row.port_a_id, row.port_b_id):
        port = session.get_one(Port, port_id)
        iface = session.scalar(
            select(MonitoredInterface).where(MonitoredInterface.port_id == port_id)
        )
        series: list[Period] = []
        if iface is not None:
            series = store.series(session, [iface.id], _span(window), window.step_s, now, settings)[
                iface.id
            ]
        ends.append(
            {
                "device": port.device.name,
                "port": port.name,
                "polled": iface is not None,
                **({} if iface is None else _interface_json(iface, series)),
            }
        )
    return {
        "link": row.name,
        "capacity_mbps": row.capacity_mbps,
        **_window_json(window),
        "ends": ends,
    }


def _span(window: Window) -> tuple[dt.datetime, dt.datetime]:
    return window.start, window.end


def _window_json(window: Window) -> dict[str, Any]:
    return {
        "from": window.start.isoformat(),
        "to": window.end.isoformat(),
        "step_s": window.step_s,
        "units": "per second (octets, packets, errors, discards)",
    }


def _state_json(state: MonitoredDevice | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "last_poll_at": state.last_poll_at.isoformat(),
        "last_ok_at": state.last_ok_at.isoformat() if state.last_ok_at else None,
        "consecutive_failures": state.consecutive_failures,
        "error": state.error or None,
    }


def _interface_json(row: MonitoredInterface, periods: list[Period]) -> dict[str, Any]:
    return {
        "name": row.name,
        "if_index": row.if_index,
        "alias": row.alias,
        "inventory_port": row.port_id is not None,
        "admin_status": row.admin_status,
        "oper_status": row.oper_status,
        "speed_mbps": row.high_speed_mbps,
        "last_seen": row.last_seen.isoformat(),
        "points": [
            {
                "start": p.start.isoformat(),
                "covered_s": round(p.covered_s, 3),
                **{f"{name}_per_s": p.values.get(name) for name in RATE_COLUMNS},
            }
            for p in periods
        ],
    }
