"""Slice use cases: book (or dry-run), show, list, release. The caller owns the transaction.

Booking: validate → take the calendar lock (bump the calendar revision) → bring the
in-memory calendar index up to what is committed → embed against what is free over the
window → insert the slice, its parts, events and reservations. Exclusive tags are also
guarded by the database itself (PostgreSQL exclusion constraints).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, make_transient_to_detached, object_session, sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from federica import inputs, revision
from federica.aaa import accounts
from federica.aaa.models import User
from federica.aaa.policy import Principal, booking_project
from federica.config import Settings
from federica.db import Base, driver_sql, insert_row, insert_rows
from federica.errors import (
    Conflict,
    FieldError,
    Forbidden,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    correlation_id,
    log_internal,
    shown,
)
from federica.slices import events, quota, wakeup
from federica.slices.calendar import Interval
from federica.slices.coordinated import Coordinated
from federica.slices.embed import Embedder, Embedding
from federica.slices.index import (
    CalendarIndex,
    Substrate,
    advance_on_commit,
    held_from_row,
    index_for,
)
from federica.slices.lifecycle import HOLDING, INITIAL, PartState, SliceStatus, move
from federica.slices.models import (
    Reservation,
    ReservationKind,
    Slice,
    SliceCircuit,
    SliceEvent,
    SliceNode,
    StatusChange,
)
from federica.slices.provision import interface_plan
from federica.slices.request import DEFAULT_IMAGE, SliceRequest, parse_request

K = ReservationKind
log = logging.getLogger(__name__)
DEFAULT_EMBEDDER: Embedder = Coordinated()


@dataclass
class Booked:
    slice: Slice | None  # None for a dry run
    request: SliceRequest
    window: Interval
    embedding: Embedding
    timings_ms: dict[str, float] = field(default_factory=dict)
    # What describe() says of the new slice, made from what the booking wrote (reading it
    # back cost a booking another transaction and five queries); None for a dry run.
    description: dict[str, Any] | None = None

    @property
    def dry_run(self) -> bool:
        return self.slice is None


def book(
    session: Session,
    settings: Settings,
    document: Any,
    *,
    now: dt.datetime,
    dry_run: bool = False,
    embedder: Embedder = DEFAULT_EMBEDDER,
    received: float | None = None,
    actor: Principal | None = None,
) -> Booked:
    """`received`: the perf_counter() when the request arrived, so the time spent before
    the booking (HTTP handling, a retry's back-off) shows as the "api" phase.
    `actor`: who books (policy: the project is one of theirs; they own the slice); None
    only for the controller's own callers (benchmarks, tests of the calendar)."""
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    if received is not None:
        timings["api"] = round((t0 - received) * 1000, 3)
        t0 = received

    def lap(name: str) -> None:
        timings[name] = round((time.perf_counter() - t0) * 1000 - sum(timings.values()), 3)

    index = index_for(session)
    # Validate against the substrate this process knows (loading it the first time); the
    # refresh under the calendar lock below says whether it is still current.
    substrate = index.substrate or index.refresh(session, now, upto=index.rev)

    def parse(pops: Collection[str]) -> tuple[SliceRequest, Interval]:
        req, win = parse_request(
            document,
            now=now,
            max_duration=dt.timedelta(days=settings.max_slice_days),
            known_pops=pops,
            horizon=now + dt.timedelta(days=settings.booking_horizon_days),
        )
        return req, Interval(win.start, win.end)

    req, window = parse(substrate.pops)
    req = _charged_project(session, req, actor)
    _check_name_free(session, req.name)
    if actor is not None and actor.user_id is not None:
        # The slice names its owner: loaded now, not while holding the calendar lock.
        session.get(User, actor.user_id)
    lap("validate")
    # A writer takes the calendar lock first; then the index is exactly what is committed.
    if dry_run:
        rev = None
        current = index.refresh(session, now)
    else:
        rev, sub_rev = revision.bump_reading(session, revision.CALENDAR, revision.SUBSTRATE)
        current = index.refresh(session, now, upto=rev - 1, substrate_rev=sub_rev)
    if current is not substrate:  # the inventory changed meanwhile: check the pins again
        substrate = current
        req, window = parse(substrate.pops)
        req = _charged_project(session, req, actor)
    quota.check(session, req, window)
    embedding = embedder.embed(req, index.view(window))
    lap("embed")
    if dry_run or rev is None:
        return Booked(None, req, window, embedding, timings)
    owner_id = actor.user_id if actor is not None else None
    sl, written = _insert(
        session, settings, req, embedding, window, substrate, now, rev, index, owner_id
    )
    lap("reserve")
    sl.timings = json.dumps({"booking": timings})
    return Booked(sl, req, window, embedding, timings, _described(sl, req, substrate, written))


def _charged_project(session: Session, req: SliceRequest, actor: Principal | None) -> SliceRequest:
    """The request with the project it is charged to: one of the actor's (a researcher in
    a single project may leave it out), and one that exists."""
    project = req.project
    if actor is not None:
        project, why = booking_project(actor, req.project)
        if why:
            raise Forbidden(why, errors=[FieldError("project", why).as_dict()])
    if project is not None and not accounts.project_exists(session, project):
        raise InvalidInput([FieldError("project", f"no project {project!r} on this facility")])
    return req if project == req.project else req.model_copy(update={"project": project})


def _check_name_free(session: Session, name: str) -> None:
    # Plain SQL: this runs on every booking.
    holding = ", ".join(f"'{s.value}'" for s in sorted(HOLDING))
    taken = driver_sql(
        session.connection(),
        f"SELECT id FROM slices WHERE name = ? AND status IN ({holding}) LIMIT 1",  # noqa: S608  (constants only; the name is bound)
        (name,),
    ).first()
    if taken:
        raise Conflict(
            f"a slice named {name!r} exists already; choose another name",
            errors=[FieldError("name", "in use").as_dict()],
        )


def _insert(
    session: Session,
    settings: Settings,
    req: SliceRequest,
    emb: Embedding,
    window: Interval,
    substrate: Substrate,
    now: dt.datetime,
    rev: int,
    index: CalendarIndex,
    owner_id: int | None,
) -> tuple[Slice, dict[str, list[dict[str, Any]]]]:
    status = INITIAL
    conn = session.connection()
    columns: dict[str, Any] = {
        "name": req.name,
        "description": req.description,
        "project": req.project,
        "owner_id": owner_id,
        "status": status,
        "start": window.start,
        "end": window.end,
        "request": req.model_dump_json(),
        "failure_reason": None,
        "created_at": now,
        "rev": rev,
        "timings": "{}",
        "access": "{}",
    }
    # The row goes in as one plain INSERT and the object joins the session as if loaded:
    # the ORM's unit of work costs more than the rest of a small booking together.
    sl = Slice(id=insert_row(conn, cast(Table, Slice.__table__), columns), **columns)
    make_transient_to_detached(sl)
    session.add(sl)
    owner = session.get(User, owner_id) if owner_id is not None else None
    set_committed_value(sl, "owner", owner)  # describe() names it, also once detached
    # The parts go in as one multi-row INSERT per table: the ORM's unit of work would
    # spend milliseconds per booking on them.
    nodes = {n.name: n for n in req.nodes}
    node_rows = [
        {
            "slice_id": sl.id,
            "name": name,
            "kind": nodes[name].kind.value,
            "vcpu": nodes[name].vcpu,
            "ram_mb": nodes[name].ram_mb,
            "image": nodes[name].image or DEFAULT_IMAGE[nodes[name].kind],
            "host_id": substrate.host_ids[host],
            "state": PartState.PLANNED,
            "detail": "",
        }
        for name, host in emb.placement.items()
    ]
    circuit_rows = [
        {
            "slice_id": sl.id,
            "name": cm.name,
            "bandwidth_mbps": cm.bandwidth_mbps,
            "mapping": json.dumps([h.__dict__ for h in cm.hops]),
            "state": PartState.PLANNED,
            "detail": "",
        }
        for cm in emb.circuits.values()
    ]
    event_rows = [
        {"slice_id": sl.id, "kind": e.kind, "due": e.due, "attempts": 0, "result": ""}
        for e in events.for_window(window, settings)
    ]
    history = {"slice_id": sl.id, "status": status, "at": now, "reason": "booked"}
    rows = reservation_rows(req, emb, substrate, window)
    for r in rows:
        r["slice_id"] = sl.id
    tables: list[tuple[type[Base], list[dict[str, Any]]]] = [
        (SliceNode, node_rows),
        (SliceCircuit, circuit_rows),
        (SliceEvent, event_rows),
        (StatusChange, [history]),
        (Reservation, rows),
    ]
    for model, values in tables:
        insert_rows(conn, cast(Table, model.__table__), values)
    wakeup.events_written(session)  # the workers look at once, not at their next poll
    held = [
        held_from_row(
            sl.id,
            r["kind"],
            r["link_id"],
            r["port_id"],
            r["host_id"],
            r["vlan"],
            r["bandwidth_mbps"],
            r["vcpu"],
            r["ram_mb"],
            r["start"],
            r["end"],
        )
        for r in rows
    ]
    advance_on_commit(session, index, sl.id, held, rev)
    written: dict[str, list[dict[str, Any]]] = {
        "nodes": node_rows,
        "circuits": circuit_rows,
        "events": event_rows,
        "history": [history],
    }
    return sl, written


def _described(
    sl: Slice, req: SliceRequest, substrate: Substrate, written: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """describe(sl) of a slice just booked, from the rows its booking wrote (a test holds
    it equal to describe() of the slice read back)."""
    ifaces = interface_plan({c.name: c.endpoints for c in req.circuits})
    hosts = {h.id: h for h in substrate.hosts}
    endpoints = {c.name: c.endpoints for c in req.circuits}
    return {
        "id": sl.id,
        "name": sl.name,
        "status": sl.status.value,
        "project": sl.project,
        "owner": _owner_name(sl),
        "description": sl.description,
        "start": sl.start.isoformat(),
        "end": sl.end.isoformat(),
        "nodes": [
            {
                "name": n["name"],
                "kind": n["kind"],
                "vcpu": n["vcpu"],
                "ram_mb": n["ram_mb"],
                "image": n["image"],
                "v_node": hosts[n["host_id"]].name,
                "pop": hosts[n["host_id"]].pop,
                "state": n["state"].value,
                "detail": n["detail"],
                "interfaces": [
                    {"name": i, "circuit": c, "address": a} for i, c, a in ifaces.get(n["name"], ())
                ],
            }
            for n in written["nodes"]
        ],
        "circuits": [
            {
                "name": c["name"],
                "bandwidth_mbps": c["bandwidth_mbps"],
                "endpoints": endpoints.get(c["name"], []),
                "state": c["state"].value,
                "hops": json.loads(c["mapping"]),
            }
            for c in written["circuits"]
        ],
        "gateway": req.gateway.model_dump() if req.gateway else None,
        "access": json.loads(sl.access or "{}"),
        "history": [
            {"status": h["status"].value, "at": h["at"].isoformat(), "reason": h["reason"]}
            for h in written["history"]
        ],
        "events": [
            {
                "kind": e["kind"].value,
                "due": e["due"].isoformat(),
                "done_at": None,
                "state": "pending",
                "attempts": e["attempts"],
                "retry_at": None,
                "result": e["result"],
            }
            for e in sorted(written["events"], key=lambda e: e["due"])
        ],
        "timings_ms": json.loads(sl.timings or "{}"),
        "failure_reason": sl.failure_reason,
    }


def reservation_rows(
    req: SliceRequest, emb: Embedding, substrate: Substrate, window: Interval
) -> list[dict[str, Any]]:
    """What an embedding holds, as reservation rows (for a bulk insert)."""
    blank = dict.fromkeys(
        ("link_id", "port_id", "host_id", "vlan", "bandwidth_mbps", "vcpu", "ram_mb")
    ) | {"bandwidth_mbps": 0, "vcpu": 0, "ram_mb": 0}
    span = blank | {"start": window.start, "end": window.end}
    rows: list[dict[str, Any]] = []
    nodes = {n.name: n for n in req.nodes}
    per_host: dict[str, tuple[int, int]] = {}
    for name, host in emb.placement.items():
        cpu, ram = per_host.get(host, (0, 0))
        per_host[host] = (cpu + nodes[name].vcpu, ram + nodes[name].ram_mb)
    for host, (cpu, ram) in per_host.items():
        rows.append(
            span
            | {"kind": K.COMPUTE, "host_id": substrate.host_ids[host], "vcpu": cpu, "ram_mb": ram}
        )
    for cm in emb.circuits.values():
        seen_links: set[str] = set()
        for hop in cm.hops:
            if hop.link is not None:
                if hop.link in seen_links:
                    continue  # a link has two ends; reserve it once
                seen_links.add(hop.link)
                kind, column, rid = K.LINK_VLAN, "link_id", substrate.link_ids[hop.link]
            else:
                kind, column, rid = (
                    K.PORT_VLAN,
                    "port_id",
                    substrate.port_ids[(hop.device, hop.port)],
                )
            rows.append(
                span
                | {"kind": kind, column: rid, "vlan": hop.vlan, "bandwidth_mbps": cm.bandwidth_mbps}
            )
    return rows


def book_with_retry(
    sessions: sessionmaker[Session],
    settings: Settings,
    document: Any,
    *,
    now: Callable[[], dt.datetime],
    dry_run: bool = False,
    attempts: int = 40,
    received: float | None = None,
    actor: Principal | None = None,
    then: Callable[[Session, Booked], None] | None = None,
) -> Booked:
    """One booking in its own transaction; `then` (the request's audit entry) runs in it
    after a booking that is not a dry run, so both commit or neither does. Writers are
    serialised by the calendar lock, so a retry is only needed when the database breaks
    a deadlock or times out on its lock.
    A refused row (a constraint) is a bug elsewhere that the database caught: retrying
    cannot help, and its message (SQL and parameters) goes to the log, not the caller."""
    last: OperationalError | None = None
    for attempt in range(attempts):
        try:
            with sessions() as s, s.begin():
                booked = book(
                    s,
                    settings,
                    document,
                    now=now(),
                    dry_run=dry_run,
                    received=received,
                    actor=actor,
                )
                if then is not None and booked.slice is not None:
                    then(s, booked)
        except IntegrityError:
            raise log_internal(log, "the database refused the booking's rows") from None
        except OperationalError as exc:
            last = exc
            log.warning("booking: database busy (attempt %d of %d)", attempt + 1, attempts)
            time.sleep(random.uniform(0.001, 0.004) * min(attempt + 1, 8))  # noqa: S311
            continue
        if booked.slice is not None:
            sl = booked.slice
            log.info(
                "slice %d (%s) booked: %s to %s UTC, project %s",
                sl.id,
                sl.name,
                f"{sl.start:%Y-%m-%d %H:%M}",
                f"{sl.end:%Y-%m-%d %H:%M}",
                sl.project or "-",
            )
        return booked
    ref = correlation_id()
    log.error("booking: the database stayed busy %d times [ref %s]", attempts, ref, exc_info=last)
    raise ServiceUnavailable(f"the database is too busy to book now; try again (reference {ref})")


def get(session: Session, ref: int | str) -> Slice:
    query = select(Slice)
    sl: Slice | None = None
    if isinstance(ref, int) or inputs.looks_like_id(ref):
        slice_id = inputs.id_or_none(ref)
        sl = session.get(Slice, slice_id) if slice_id is not None else None
    elif "\x00" not in ref:  # no slice is named so; PostgreSQL refuses NUL as a parameter
        sl = session.scalars(query.where(Slice.name == ref).order_by(Slice.id.desc())).first()
    if sl is None:
        raise NotFound(f"no slice {shown(ref)}")
    return sl


def release(session: Session, sl: Slice, *, now: dt.datetime, reason: str = "released") -> Slice:
    """Idempotent: releasing an ended slice changes nothing. Frees the rest of the window."""
    if sl.status is SliceStatus.ENDED:
        return sl
    for step in (SliceStatus.RELEASING, SliceStatus.ENDED):
        move(sl, step, now, reason)
    free_from(session, sl, now)
    events.cancel_pending(sl, now, reason)
    session.flush()
    log.info("slice %d (%s) ended before it was built: %s", sl.id, sl.name, reason)
    return sl


def free_from(session: Session, sl: Slice, now: dt.datetime) -> None:
    """Give back the rest of the slice's window: reservations end now (what was held
    before stays, as the accounting record)."""
    sl.rev = revision.bump(session, revision.CALENDAR)
    if "reservations" in sl.__dict__:  # loaded already: keep the session's copies true
        for r in list(sl.reservations):
            if r.start >= now:
                sl.reservations.remove(r)
            elif r.end > now:
                r.end = now
    else:
        # Two plain statements, not the ORM loading and deleting a row at a time (a
        # slice holds dozens; a release spent most of its time there).
        table = cast(Table, Reservation.__table__)
        conn = session.connection()
        conn.execute(delete(table).where(table.c.slice_id == sl.id, table.c.start >= now))
        conn.execute(
            update(table).where(table.c.slice_id == sl.id, table.c.end > now).values(end=now)
        )
    if sl.end > now:
        sl.end = max(sl.start + dt.timedelta(microseconds=1), now)
    advance_on_commit(session, index_for(session), sl.id, [], sl.rev)


def _owner_name(sl: Slice) -> str | None:
    if "owner" not in sl.__dict__ and object_session(sl) is None:
        return None  # made detached without its owner loaded: it has none (see book)
    return sl.owner.username if sl.owner is not None else None


def describe(sl: Slice) -> dict[str, Any]:
    req = SliceRequest.model_validate_json(sl.request)
    ifaces = interface_plan({c.name: c.endpoints for c in req.circuits})
    return {
        "id": sl.id,
        "name": sl.name,
        "status": sl.status.value,
        "project": sl.project,
        "owner": _owner_name(sl),
        "description": sl.description,
        "start": sl.start.isoformat(),
        "end": sl.end.isoformat(),
        "nodes": [
            {
                "name": n.name,
                "kind": n.kind,
                "vcpu": n.vcpu,
                "ram_mb": n.ram_mb,
                "image": n.image,
                "v_node": n.host.name,
                "pop": n.host.pop.name,
                "state": n.state.value,
                "detail": n.detail,
                "interfaces": [
                    {"name": i, "circuit": c, "address": a} for i, c, a in ifaces.get(n.name, ())
                ],
            }
            for n in sl.nodes
        ],
        "circuits": [
            {
                "name": c.name,
                "bandwidth_mbps": c.bandwidth_mbps,
                "endpoints": next((r.endpoints for r in req.circuits if r.name == c.name), []),
                "state": c.state.value,
                "hops": json.loads(c.mapping),
            }
            for c in sl.circuits
        ],
        "gateway": req.gateway.model_dump() if req.gateway else None,
        "access": json.loads(sl.access or "{}"),
        "history": [
            {"status": h.status.value, "at": h.at.isoformat(), "reason": h.reason}
            for h in sl.history
        ],
        "events": [
            {
                "kind": e.kind.value,
                "due": e.due.isoformat(),
                "done_at": e.done_at.isoformat() if e.done_at else None,
                "state": (state := events.state_of(e)),
                "attempts": e.attempts,
                "retry_at": e.claimed_until.isoformat()
                if state == "retrying" and e.claimed_until
                else None,
                "result": e.result,
            }
            for e in sl.events
        ],
        "timings_ms": json.loads(sl.timings or "{}"),
        "failure_reason": sl.failure_reason,
    }


def describe_embedding(emb: Embedding) -> dict[str, Any]:
    return {
        "placement": emb.placement,
        "circuits": {n: [h.__dict__ for h in c.hops] for n, c in emb.circuits.items()},
    }
