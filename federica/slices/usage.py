"""Tells the substrate inventory which slices hold the resources it is about to remove."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Reservation, Slice, SliceNode
from federica.substrate.usage import Resource


def slices_using(session: Session, kind: Resource, ids: Sequence[int]) -> list[str]:
    cond: ColumnElement[bool]
    if kind is Resource.LINK:
        cond = Reservation.link_id.in_(ids)
    elif kind is Resource.PORT:
        cond = Reservation.port_id.in_(ids)
    elif kind is Resource.HOST:
        cond = or_(
            Reservation.host_id.in_(ids),
            Reservation.slice_id.in_(select(SliceNode.slice_id).where(SliceNode.host_id.in_(ids))),
        )
    else:
        return []  # PoPs, devices and peers go only with their ports, links and hosts
    rows = session.execute(
        select(Slice.name, Slice.status, Slice.end)
        .where(Slice.id.in_(select(Reservation.slice_id).where(cond)))
        .distinct()
        .order_by(Slice.name)
    ).all()
    return [
        f"{kind.value} held by slice {name!r} ({SliceStatus(status).value}, until "
        f"{end:%Y-%m-%d %H:%M} UTC)"
        for name, status, end in rows
    ]
