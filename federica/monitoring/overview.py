"""The facility at a glance, for the NOC: each link's load over the last minutes and each
device's health, from what the poller and the worker stored. Services: they read the
database; pages and the API shape the answer."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.config import Settings
from federica.monitoring import store
from federica.monitoring.models import MonitoredDevice, MonitoredInterface
from federica.monitoring.rollup import Period
from federica.substrate.models import Device, DeviceReachability, Link, Pop, Port

# FABRIC's and ESnet's maps colour a link by its recent average, not by one sample.
LOAD_SPAN = dt.timedelta(minutes=5)
# Utilisation classes (the larger direction over capacity): below BUSY is ok.
BUSY, FULL = 0.5, 0.8
IF_UP = 1  # IF-MIB ifOperStatus up(1)


@dataclass(frozen=True)
class LinkLoad:
    link: str
    a_device: str
    a_port: str
    b_device: str
    b_port: str
    capacity_mbps: int
    a_to_b_bps: float | None  # None: nothing polled over the span
    b_to_a_bps: float | None
    down: bool  # an end polled, and oper-down

    @property
    def utilisation(self) -> float | None:
        rates = [r for r in (self.a_to_b_bps, self.b_to_a_bps) if r is not None]
        if not rates or self.capacity_mbps <= 0:
            return None
        return max(rates) / (self.capacity_mbps * 1e6)

    @property
    def level(self) -> str:
        """ok | busy | full | down | unknown — never shown by colour alone."""
        if self.down:
            return "down"
        used = self.utilisation
        if used is None:
            return "unknown"
        return "full" if used >= FULL else "busy" if used >= BUSY else "ok"


@dataclass(frozen=True)
class DeviceHealth:
    device: str
    pop: str
    netconf: bool | None  # None: the controller has not talked to it yet
    netconf_since: dt.datetime | None
    netconf_reason: str
    snmp: bool | None  # None: never polled
    snmp_error: str
    last_poll_at: dt.datetime | None
    uptime_s: float | None

    @property
    def healthy(self) -> bool:
        return self.netconf is not False and self.snmp is not False


def link_loads(
    session: Session, now: dt.datetime, settings: Settings, span: dt.timedelta = LOAD_SPAN
) -> list[LinkLoad]:
    """Every link's two directions averaged over [now - span, now)."""
    links = list(session.scalars(select(Link).order_by(Link.name)))
    port_ids = {pid for lk in links for pid in (lk.port_a_id, lk.port_b_id)}
    interfaces = {
        row.port_id: row
        for row in session.scalars(
            select(MonitoredInterface).where(MonitoredInterface.port_id.in_(port_ids))
        )
    }
    step_s = max(1, int(span.total_seconds()))
    series = store.series(
        session, [i.id for i in interfaces.values()], (now - span, now), step_s, now, settings
    )
    ports = {p.id: p for p in session.scalars(select(Port).where(Port.id.in_(port_ids)))}
    out = []
    for lk in links:
        a, b = interfaces.get(lk.port_a_id), interfaces.get(lk.port_b_id)
        a_out, a_in = _mean(series, a, "out_octets"), _mean(series, a, "in_octets")
        b_out, b_in = _mean(series, b, "out_octets"), _mean(series, b, "in_octets")
        pa, pb = ports[lk.port_a_id], ports[lk.port_b_id]
        out.append(
            LinkLoad(
                lk.name,
                pa.device.name,
                pa.name,
                pb.device.name,
                pb.name,
                lk.capacity_mbps,
                _bits(_first(a_out, b_in)),
                _bits(_first(b_out, a_in)),
                any(i is not None and i.oper_status not in (None, IF_UP) for i in (a, b)),
            )
        )
    return out


def device_health(session: Session) -> list[DeviceHealth]:
    rows = session.execute(
        select(Device, Pop.name, DeviceReachability, MonitoredDevice)
        .join(Pop, Device.pop_id == Pop.id)
        .outerjoin(DeviceReachability, DeviceReachability.device_id == Device.id)
        .outerjoin(MonitoredDevice, MonitoredDevice.device_id == Device.id)
        .order_by(Device.name)
    )
    out = []
    for device, pop, reach, polled in rows:
        out.append(
            DeviceHealth(
                device.name,
                pop,
                None if reach is None else reach.reachable,
                None if reach is None else reach.since,
                "" if reach is None else reach.reason,
                None if polled is None else polled.consecutive_failures == 0,
                "" if polled is None else polled.error,
                None if polled is None else polled.last_poll_at,
                None
                if polled is None or polled.uptime_ticks is None
                else polled.uptime_ticks / 100,
            )
        )
    return out


def _mean(
    series: dict[int, list[Period]], interface: MonitoredInterface | None, column: str
) -> float | None:
    """The span's average of one rate, weighted by how much of each period was covered."""
    if interface is None:
        return None
    total = weight = 0.0
    for period in series.get(interface.id, []):
        value = period.values.get(column)
        if value is not None and period.covered_s > 0:
            total += value * period.covered_s
            weight += period.covered_s
    return total / weight if weight else None


def _first(*values: float | None) -> float | None:
    return next((v for v in values if v is not None), None)


def _bits(octets_per_s: float | None) -> float | None:
    return None if octets_per_s is None else octets_per_s * 8


def worst(levels: Iterable[str]) -> str:
    order = ("down", "full", "busy", "unknown", "ok")
    found = set(levels)
    return next((lv for lv in order if lv in found), "ok")
