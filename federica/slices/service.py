"""Slice use cases: book (or dry-run), show, list, release. The caller owns the transaction.

Booking: validate → what is free over the window → embed → lock the touched resource rows
in a fixed order → re-check shared capacity against what is committed now → insert the
reservations. Exclusive tags are guarded by the database (PostgreSQL exclusion
constraints; on SQLite the whole booking runs under BEGIN IMMEDIATE). A booking that
loses a race is retried by `book_with_retry` with fresh availability.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from federica.config import Settings
from federica.errors import Conflict, FieldError, NotFound
from federica.slices import availability
from federica.slices.calendar import Interval
from federica.slices.embed import Embedder, Embedding, RankedKShortest
from federica.slices.lifecycle import HOLDING, SliceStatus, check_transition
from federica.slices.models import (
    Reservation,
    ReservationKind,
    Slice,
    SliceCircuit,
    SliceNode,
    StatusChange,
)
from federica.slices.request import DEFAULT_IMAGE, SliceRequest, parse_request
from federica.substrate.models import ComputeHost, Link, Pop, Port

K = ReservationKind
DEFAULT_EMBEDDER: Embedder = RankedKShortest()


@dataclass
class Booked:
    slice: Slice | None  # None for a dry run
    request: SliceRequest
    window: Interval
    embedding: Embedding
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def dry_run(self) -> bool:
        return self.slice is None


class CapacityRace(Conflict):
    """Another booking took the capacity between our look and our write; retried."""


def book(
    session: Session,
    settings: Settings,
    document: Any,
    *,
    now: dt.datetime,
    dry_run: bool = False,
    embedder: Embedder = DEFAULT_EMBEDDER,
) -> Booked:
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str) -> None:
        timings[name] = round((time.perf_counter() - t0) * 1000 - sum(timings.values()), 3)

    pops = set(session.scalars(select(Pop.name)).all())
    req, win = parse_request(
        document, now=now, max_duration=dt.timedelta(days=settings.max_slice_days), known_pops=pops
    )
    window = Interval(win.start, win.end)
    lap("validate")
    taken = session.scalars(
        select(Slice.name).where(
            Slice.name == req.name, Slice.status.in_([s.value for s in HOLDING])
        )
    ).first()
    if taken:
        raise Conflict(
            f"a slice named {req.name!r} exists already; choose another name",
            errors=[FieldError("name", "in use").as_dict()],
        )
    view, ids = availability.view(session, window)
    embedding = embedder.embed(req, view)
    lap("embed")
    if dry_run:
        return Booked(None, req, window, embedding, timings)
    rows = _reservations(req, embedding, ids, window)
    _lock_and_recheck(session, rows, ids, window)
    status = SliceStatus.SCHEDULED
    sl = Slice(
        name=req.name,
        description=req.description,
        project=req.project,
        status=status,
        start=window.start,
        end=window.end,
        request=req.model_dump_json(),
    )
    sl.history.append(StatusChange(status=status, at=now, reason="booked"))
    nodes = {n.name: n for n in req.nodes}
    for name, host in embedding.placement.items():
        n = nodes[name]
        sl.nodes.append(
            SliceNode(
                name=name,
                kind=n.kind.value,
                vcpu=n.vcpu,
                ram_mb=n.ram_mb,
                image=n.image or DEFAULT_IMAGE[n.kind],
                host_id=ids.hosts[host],
            )
        )
    for cm in embedding.circuits.values():
        sl.circuits.append(
            SliceCircuit(
                name=cm.name,
                bandwidth_mbps=cm.bandwidth_mbps,
                mapping=json.dumps([h.__dict__ for h in cm.hops]),
            )
        )
    sl.reservations.extend(rows)
    session.add(sl)
    session.flush()
    lap("reserve")
    return Booked(sl, req, window, embedding, timings)


def _reservations(
    req: SliceRequest, emb: Embedding, ids: availability.Ids, window: Interval
) -> list[Reservation]:
    rows: list[Reservation] = []
    nodes = {n.name: n for n in req.nodes}
    per_host: dict[str, tuple[int, int]] = {}
    for name, host in emb.placement.items():
        cpu, ram = per_host.get(host, (0, 0))
        per_host[host] = (cpu + nodes[name].vcpu, ram + nodes[name].ram_mb)
    for host, (cpu, ram) in per_host.items():
        rows.append(
            Reservation(
                kind=K.COMPUTE,
                host_id=ids.hosts[host],
                vcpu=cpu,
                ram_mb=ram,
                start=window.start,
                end=window.end,
            )
        )
    for cm in emb.circuits.values():
        seen_links: set[str] = set()
        for hop in cm.hops:
            if hop.link is not None:
                if hop.link in seen_links:
                    continue  # a link has two ends; reserve it once
                seen_links.add(hop.link)
                rows += _tag_and_bandwidth(
                    K.LINK_VLAN,
                    K.LINK_BANDWIDTH,
                    "link_id",
                    ids.links[hop.link],
                    hop.vlan,
                    cm.bandwidth_mbps,
                    window,
                )
            else:
                rows += _tag_and_bandwidth(
                    K.PORT_VLAN,
                    K.PORT_BANDWIDTH,
                    "port_id",
                    ids.ports[(hop.device, hop.port)],
                    hop.vlan,
                    cm.bandwidth_mbps,
                    window,
                )
    return rows


def _tag_and_bandwidth(
    tag: ReservationKind,
    bw: ReservationKind,
    column: str,
    rid: int,
    vlan: int,
    mbps: int,
    window: Interval,
) -> list[Reservation]:
    """The exclusive tag and the shared bandwidth a circuit takes on one link or port."""
    return [
        Reservation(kind=tag, vlan=vlan, start=window.start, end=window.end, **{column: rid}),
        Reservation(
            kind=bw, bandwidth_mbps=mbps, start=window.start, end=window.end, **{column: rid}
        ),
    ]


def _lock_and_recheck(
    session: Session, rows: list[Reservation], ids: availability.Ids, window: Interval
) -> None:
    """Lock the touched resources (fixed order: links, ports, hosts, each by id), then
    check shared capacity and tags against what is committed now."""
    link_ids = sorted({r.link_id for r in rows if r.link_id is not None})
    port_ids = sorted({r.port_id for r in rows if r.port_id is not None})
    host_ids = sorted({r.host_id for r in rows if r.host_id is not None})
    if session.get_bind().dialect.name == "postgresql":
        for model, id_list in ((Link, link_ids), (Port, port_ids), (ComputeHost, host_ids)):
            if id_list:
                session.execute(
                    select(model.id)
                    .where(model.id.in_(id_list))
                    .order_by(model.id)
                    .with_for_update()
                )
    current = availability.overlapping(session, window)
    peak = availability.usage(current, window)
    mine = availability.usage(rows, window)
    for (kind, rid), amount in mine.items():
        cap = {
            "link": ids.link_capacity,
            "port": ids.port_speed,
            "cpu": ids.host_cpu,
            "ram": ids.host_ram,
        }[kind].get(rid, 0)
        if peak.get((kind, rid), 0) + amount > cap:
            raise CapacityRace(f"{kind} {rid}: taken by a concurrent booking")
    held = {
        (r.kind, r.link_id, r.port_id, r.vlan)
        for r in current
        if r.kind in (K.LINK_VLAN, K.PORT_VLAN)
    }
    for r in rows:
        if r.kind in (K.LINK_VLAN, K.PORT_VLAN) and (r.kind, r.link_id, r.port_id, r.vlan) in held:
            raise CapacityRace(f"VLAN {r.vlan} taken by a concurrent booking")


def book_with_retry(
    sessions: sessionmaker[Session],
    settings: Settings,
    document: Any,
    *,
    now: Callable[[], dt.datetime],
    dry_run: bool = False,
    attempts: int = 40,
) -> Booked:
    """One booking in its own transaction; lost races are retried with fresh data, so a
    loser ends with either its booking or the real reason it no longer fits."""
    last: Exception | None = None
    for attempt in range(attempts):
        try:
            with sessions() as s, s.begin():
                return book(s, settings, document, now=now(), dry_run=dry_run)
        except (CapacityRace, IntegrityError) as exc:
            last = exc  # a concurrent booking won; look again
        except OperationalError as exc:  # e.g. a deadlock the database broke
            last = exc
        time.sleep(random.uniform(0.001, 0.004) * min(attempt + 1, 8))  # noqa: S311
    raise Conflict(f"the resources kept being taken by concurrent bookings ({last})")


def get(session: Session, ref: int | str) -> Slice:
    query = select(Slice)
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        sl = session.get(Slice, int(ref))
    else:
        sl = session.scalars(query.where(Slice.name == ref).order_by(Slice.id.desc())).first()
    if sl is None:
        raise NotFound(f"no slice {ref!r}")
    return sl


def release(session: Session, sl: Slice, *, now: dt.datetime, reason: str = "released") -> Slice:
    """Idempotent: releasing an ended slice changes nothing. Frees the rest of the window."""
    if sl.status is SliceStatus.ENDED:
        return sl
    for step in (SliceStatus.RELEASING, SliceStatus.ENDED):
        check_transition(sl.status, step, sl.name)
        sl.status = step
        sl.history.append(StatusChange(status=step, at=now, reason=reason))
    for r in list(sl.reservations):
        if r.start >= now:
            sl.reservations.remove(r)
        elif r.end > now:
            r.end = now
    if sl.end > now:
        sl.end = max(sl.start + dt.timedelta(microseconds=1), now)
    session.flush()
    return sl


def describe(sl: Slice) -> dict[str, Any]:
    return {
        "id": sl.id,
        "name": sl.name,
        "status": sl.status.value,
        "project": sl.project,
        "start": sl.start.isoformat(),
        "end": sl.end.isoformat(),
        "nodes": [
            {
                "name": n.name,
                "kind": n.kind,
                "vcpu": n.vcpu,
                "ram_mb": n.ram_mb,
                "image": n.image,
                "host_id": n.host_id,
            }
            for n in sl.nodes
        ],
        "circuits": [
            {"name": c.name, "bandwidth_mbps": c.bandwidth_mbps, "hops": json.loads(c.mapping)}
            for c in sl.circuits
        ],
        "history": [
            {"status": h.status.value, "at": h.at.isoformat(), "reason": h.reason}
            for h in sl.history
        ],
        "failure_reason": sl.failure_reason,
    }


def describe_embedding(emb: Embedding) -> dict[str, Any]:
    return {
        "placement": emb.placement,
        "circuits": {n: [h.__dict__ for h in c.hops] for n, c in emb.circuits.items()},
    }
