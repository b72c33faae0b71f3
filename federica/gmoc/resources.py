"""The facility's things as the datastore sees them: which per-VLAN interfaces exist (from
the slices' reservations), and which slices a viewer may see. Services: read the database.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from federica.gmoc.access import Viewer
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Reservation, ReservationKind, Slice
from federica.substrate.models import Device, Link, Port

# Ended slices stay visible this long (their per-VLAN interfaces' data is kept a while).
ENDED_VISIBLE = dt.timedelta(days=1)
LIVE = (
    SliceStatus.SCHEDULED,
    SliceStatus.PROVISIONING,
    SliceStatus.ACTIVE,
    SliceStatus.RELEASING,
    SliceStatus.SHUTDOWN,
)


@dataclass(frozen=True)
class VlanUse:
    """A slice holding VLAN `tag` on a port during [start, end)."""

    port_id: int
    tag: int
    slice_id: int
    start: dt.datetime
    end: dt.datetime


def visible_slices(session: Session, viewer: Viewer, now: dt.datetime) -> list[Slice]:
    """The slices the viewer sees: live ones, and those that ended less than a day ago."""
    query = (
        select(Slice)
        .where(or_(Slice.status.in_(LIVE), Slice.end > now - ENDED_VISIBLE))
        .options(selectinload(Slice.nodes), selectinload(Slice.circuits))
        .order_by(Slice.id)
    )
    if viewer.projects is not None:
        mine = Slice.project.in_(sorted(viewer.projects))
        query = query.where(
            or_(mine, Slice.owner_id == viewer.owner_id) if viewer.owner_id is not None else mine
        )
    return [s for s in session.scalars(query) if viewer.sees_slice(s.project, s.owner_id)]


def vlan_uses(session: Session, slice_ids: Sequence[int]) -> list[VlanUse]:
    """Every (port, tag) the slices hold: a tag on a link is on both its ports."""
    if not slice_ids:
        return []
    rows = session.scalars(
        select(Reservation).where(
            Reservation.slice_id.in_(slice_ids),
            Reservation.kind.in_((ReservationKind.LINK_VLAN, ReservationKind.PORT_VLAN)),
        )
    ).all()
    links = {
        link.id: link
        for link in session.scalars(
            select(Link).where(Link.id.in_({r.link_id for r in rows if r.link_id is not None}))
        )
    }
    out: list[VlanUse] = []
    for r in rows:
        assert r.vlan is not None  # the table's check constraint: tag rows carry a tag
        if r.link_id is not None:
            ports: Iterable[int] = (links[r.link_id].port_a_id, links[r.link_id].port_b_id)
        else:
            assert r.port_id is not None
            ports = (r.port_id,)
        out.extend(VlanUse(p, r.vlan, r.slice_id, r.start, r.end) for p in ports)
    return out


def port_by_name(session: Session, device: str, port: str) -> Port | None:
    return session.scalar(select(Port).join(Device).where(Device.name == device, Port.name == port))
