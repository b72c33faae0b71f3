"""The latest of what monitoring knows about active slices, for the per-slice alarms:
each ready circuit's most carried rate on any hop over the last minute (at least two
poll intervals: one poll's timing jitter, a fraction of a second on a busy machine, would
otherwise move a rate by several per cent), each ready node's state on its V-node. A hop
whose latest rate is more than three intervals old is not known now."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federica.config import Settings
from federica.monitoring.models import RAW, InterfaceRate, MonitoredHost, NodeSample
from federica.slices.lifecycle import PartState, SliceStatus
from federica.slices.models import Slice
from federica.slicestats.mapping import circuit_interfaces, driver_node
from federica.slicestats.queries import health


@dataclass(frozen=True)
class CircuitNow:
    slice_id: int
    slice: str
    circuit: str
    booked_mbps: int
    carried_bps: float | None
    where: str


@dataclass(frozen=True)
class NodeNow:
    slice_id: int
    slice: str
    node: str
    v_node: str
    state: str | None


def _active(session: Session) -> list[Slice]:
    return list(
        session.scalars(select(Slice).where(Slice.status == SliceStatus.ACTIVE).order_by(Slice.id))
    )


RECENT = dt.timedelta(minutes=1)


def circuits_now(session: Session, now: dt.datetime, settings: Settings) -> list[CircuitNow]:
    interval = dt.timedelta(seconds=settings.monitor_interval_s)
    fresh_after = now - 3 * interval
    since = now - max(RECENT, 2 * interval)
    out = []
    for sl in _active(session):
        for c in sl.circuits:
            if c.state is not PartState.READY:
                continue
            best: tuple[float, str] | None = None
            for hop in circuit_interfaces(session, sl, c):
                if hop.interface_id is None:
                    continue
                latest = session.scalar(
                    select(func.max(InterfaceRate.end)).where(
                        InterfaceRate.interface_id == hop.interface_id,
                        InterfaceRate.resolution_s == RAW,
                    )
                )
                if latest is None or latest < fresh_after:
                    continue
                recent = session.execute(
                    select(InterfaceRate.out_octets, InterfaceRate.covered_s).where(
                        InterfaceRate.interface_id == hop.interface_id,
                        InterfaceRate.resolution_s == RAW,
                        InterfaceRate.end > since,
                        InterfaceRate.out_octets.is_not(None),
                    )
                ).all()
                seconds = sum(covered for _, covered in recent)
                if not seconds:
                    continue
                bps = 8 * sum((rate or 0.0) * covered for rate, covered in recent) / seconds
                if best is None or bps > best[0]:
                    best = (bps, f"{hop.device}:{hop.interface}")
            out.append(
                CircuitNow(
                    sl.id,
                    sl.name,
                    c.name,
                    c.bandwidth_mbps,
                    best[0] if best else None,
                    best[1] if best else "",
                )
            )
    return out


def nodes_now(session: Session) -> list[NodeNow]:
    out = []
    for sl in _active(session):
        for n in sl.nodes:
            if n.state is not PartState.READY:
                continue
            latest = session.scalars(
                select(NodeSample)
                .where(NodeSample.host_id == n.host_id, NodeSample.node == driver_node(sl, n.name))
                .order_by(NodeSample.at.desc())
                .limit(1)
            ).first()
            state = health(n, latest, session.get(MonitoredHost, n.host_id))
            out.append(
                NodeNow(sl.id, sl.name, n.name, n.host.name, None if state == "unknown" else state)
            )
    return out
