"""The emergency stop: choose the slices, stop them, keep them for forensics, lift.

`stop` is one use case for every way of naming the target (a slice; every slice of a
project or a user; every slice on a port, link, V-node or VLAN at a time, through the
attribution query). Each slice moves to SHUTDOWN through the transition table first (so
its owner's changes are refused from that instant and the worker starts nothing), then
isolation runs with no transaction open, then its report and snapshot are stored with the
e-stop row, alarms are raised for devices that did not answer, and the audit log gets one
row per slice with who, why and the ticket. Reservations are kept: at the window's end the
worker tears the slice down as usual, unless an operator put it on forensic hold.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from federica.aaa import audit
from federica.aaa.models import User
from federica.aaa.policy import Principal
from federica.alarms import service as alarms
from federica.alarms.evaluate import Kind
from federica.config import Settings
from federica.db import transaction
from federica.errors import Conflict, FieldError, InvalidInput, NotFound, shown
from federica.estop.isolate import (
    LinkEnd,
    Report,
    Target,
    Toolkit,
    Uplink,
    isolate,
    restore,
)
from federica.estop.models import EStop
from federica.monitoring.models import MonitoredInterface
from federica.slices import runner
from federica.slices import service as slices
from federica.slices.lifecycle import SliceStatus, check_transition, move
from federica.slices.models import Reservation, Slice
from federica.substrate.models import ComputeHost, Device, Link, Port

log = logging.getLogger(__name__)
S = SliceStatus
STOPPABLE = (S.SCHEDULED, S.PROVISIONING, S.ACTIVE)
SELECTOR_FIELDS = ("slice", "project", "user", "port", "link", "vnode", "vlan")


class Context(Protocol):
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]

    def now(self) -> dt.datetime: ...


class NobodyThere(Conflict):
    """The selector is well formed and names what exists, but no slice matches now (or
    then): a fact about the facility's state, not a malformed request. Names the field."""

    title = "No slice matches"
    type_slug = "no-slice-matches"

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(
            f"{field_name}: {message}", errors=[FieldError(field_name, message).as_dict()]
        )


class NotShutDown(Conflict):
    title = "Not under emergency stop"
    type_slug = "not-shut-down"


@dataclass(frozen=True)
class Selector:
    """What to stop. One of slice, project, user; or a place (port "device:port", link,
    vnode), optionally narrowed to a VLAN, at a time (default: now)."""

    slice: str | None = None
    project: str | None = None
    user: str | None = None
    port: str | None = None
    link: str | None = None
    vnode: str | None = None
    vlan: int | None = None
    at: dt.datetime | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {f: getattr(self, f) for f in SELECTOR_FIELDS if getattr(self, f)}
        if self.at is not None:
            out["at"] = self.at.isoformat()
        return out


def resolve(session: Session, sel: Selector, now: dt.datetime) -> list[Slice]:
    """The slices the selector names (checked: each field names something that exists;
    a place and time with nobody there is an error naming the field)."""
    by_whom = [f for f in ("slice", "project", "user") if getattr(sel, f) is not None]
    places = [f for f in ("port", "link", "vnode") if getattr(sel, f) is not None]
    if len(by_whom) + (1 if places or sel.vlan is not None else 0) != 1 or len(places) > 1:
        raise InvalidInput(
            [
                FieldError(
                    "selector",
                    "give exactly one of slice, project, user, or one place (port, link or "
                    "vnode) with an optional vlan and at",
                )
            ]
        )
    if sel.at is not None and sel.at.tzinfo is None:
        raise InvalidInput([FieldError("at", "give a time zone (e.g. Z or +01:00)")])
    if sel.slice is not None:
        try:
            return [slices.get(session, sel.slice)]
        except NotFound as exc:
            raise InvalidInput([FieldError("slice", exc.detail)]) from None
    if sel.project is not None:
        found = list(session.scalars(_live().where(Slice.project == sel.project)))
        if not found:
            raise NobodyThere("project", f"project {shown(sel.project)} has no running slice")
        return found
    if sel.user is not None:
        user = session.scalar(select(User).where(User.username == sel.user.strip().lower()))
        if user is None:
            raise InvalidInput([FieldError("user", f"no user {shown(sel.user)}")])
        found = list(session.scalars(_live().where(Slice.owner_id == user.id)))
        if not found:
            raise NobodyThere("user", f"{user.username} has no running slice")
        return found
    return _at_place(session, sel, sel.at or now)


def _live() -> Any:
    return select(Slice).where(Slice.status.in_([s.value for s in STOPPABLE])).order_by(Slice.id)


def _at_place(session: Session, sel: Selector, at: dt.datetime) -> list[Slice]:
    field_name = "port" if sel.port else "link" if sel.link else "vnode" if sel.vnode else "vlan"
    if sel.vlan is not None and not 1 <= sel.vlan <= 4094:
        raise InvalidInput([FieldError("vlan", "a VLAN tag is 1 to 4094")])
    if sel.vnode is not None:
        host = session.scalar(select(ComputeHost).where(ComputeHost.name == sel.vnode))
        if host is None:
            raise InvalidInput([FieldError("vnode", f"no V-node {shown(sel.vnode)}")])
        held = select(Reservation.slice_id).where(
            Reservation.start <= at,
            Reservation.end > at,
            or_(
                Reservation.host_id == host.id,
                Reservation.port_id == host.uplink_port_id,
            ),
        )
        if sel.vlan is not None:
            held = held.where(Reservation.port_id == host.uplink_port_id)
            held = held.where(Reservation.vlan == sel.vlan)
        ids = set(session.scalars(held))
    else:
        place = audit.Place(link=sel.link, port=sel.port)
        try:
            if sel.vlan is not None:
                ids = {r["slice_id"] for r in audit.held_by(session, sel.vlan, place, at)}
            else:
                ids = _held_anything(session, place, at)
        except NotFound as exc:
            raise InvalidInput([FieldError(field_name, exc.detail)]) from None
    found = [sl for sl in (session.get(Slice, i) for i in sorted(ids)) if sl is not None]
    if not found:
        what = f"VLAN {sel.vlan} on " if sel.vlan is not None else ""
        where = sel.port or sel.link or sel.vnode or "any link"
        raise NobodyThere("at", f"no slice held {what}{where} at {at.isoformat()}")
    return found


def _held_anything(session: Session, place: audit.Place, at: dt.datetime) -> set[int]:
    if place.link is None and place.port is None:
        raise InvalidInput([FieldError("vlan", "a VLAN needs a place: port, link or vnode")])
    link_or_port = audit.place_condition(session, place)
    rows = session.scalars(
        select(Reservation.slice_id).where(
            Reservation.start <= at, Reservation.end > at, link_or_port
        )
    )
    return set(rows)


# -- stop ----------------------------------------------------------------------------------


@dataclass
class Stopped:
    slice_id: int
    slice_name: str
    estop_id: int
    report: dict[str, Any] = field(default_factory=dict)
    skipped: str = ""  # why this slice was not stopped (already shut down, ended)


def target_of(session: Session, sl: Slice) -> Target:
    return targets_of(session, [sl])[sl.id]


def _preload(session: Session, chosen: Sequence[Slice]) -> None:
    """The slices' nodes and circuits, in two queries (not two per slice)."""
    ids = [sl.id for sl in chosen if "nodes" not in sl.__dict__ or "circuits" not in sl.__dict__]
    if ids:
        list(
            session.scalars(
                select(Slice)
                .where(Slice.id.in_(ids))
                .options(selectinload(Slice.nodes), selectinload(Slice.circuits))
            )
        )


def targets_of(session: Session, chosen: Sequence[Slice]) -> dict[int, Target]:
    """Each slice's plan and where it attaches, in a fixed number of queries however many
    slices (an e-stop of 50 slices must not pay 50 round trips of each)."""
    if not chosen:
        return {}
    _preload(session, chosen)
    rows = runner.host_rows(session)
    uplink_of = {hid: Uplink(name, device, port) for hid, name, _, device, port in rows}
    hops = {sl.id: [h for c in sl.circuits for h in json.loads(c.mapping)] for sl in chosen}
    link_names = {h["link"] for hs in hops.values() for h in hs if h.get("link")}
    ends: dict[str, list[LinkEnd]] = {}
    for lk in session.scalars(
        select(Link)
        .where(Link.name.in_(link_names))
        .options(
            selectinload(Link.port_a).selectinload(Port.device),
            selectinload(Link.port_b).selectinload(Port.device),
        )
    ):
        a = (lk.port_a.device.name, lk.port_a.name)
        b = (lk.port_b.device.name, lk.port_b.name)
        ends[lk.name] = [LinkEnd(lk.name, *a, *b), LinkEnd(lk.name, *b, *a)]
    out = {}
    for sl in chosen:
        mine = {h["link"] for h in hops[sl.id] if h.get("link")}
        out[sl.id] = Target(
            runner.plan_of(session, sl, rows),
            tuple(uplink_of[h] for h in sorted({n.host_id for n in sl.nodes})),
            tuple(e for name in sorted(mine) for e in ends.get(name, [])),
        )
    return out


def _shut_down(
    ctx: Context, sel: Selector, who: Principal, reason: str, ticket: str | None, now: dt.datetime
) -> tuple[list[Stopped], list[Target]]:
    """The first transaction: each chosen slice SHUTDOWN with its e-stop row, and what to
    isolate. Two stops of one slice at once: the second finds it shut down (409)."""
    out: list[Stopped] = []
    built: list[Slice] = []
    with transaction(ctx.sessions) as s:
        chosen = resolve(s, sel, now)
        _preload(s, chosen)
        counters = _counters(s, chosen)
        rows: list[EStop] = []
        for sl in chosen:
            if sl.status not in STOPPABLE:
                if sel.slice is not None:
                    check_transition(sl.status, S.SHUTDOWN, sl.name)  # raises: 409
                out.append(Stopped(sl.id, sl.name, 0, skipped=f"slice is {sl.status.value}"))
                continue
            if sl.status is not S.SCHEDULED:  # a booking not started has nothing anywhere
                built.append(sl)
            move(sl, S.SHUTDOWN, now, f"emergency stop by {who.username}: {reason}")
            sl.access = "{}"
            row = EStop(
                slice_id=sl.id,
                at=now,
                by=who.username,
                via=who.via,
                reason=reason,
                ticket=ticket,
                selector=json.dumps(sel.to_json()),
                snapshot=json.dumps({"counters": counters.get(sl.id, {})}),
            )
            s.add(row)
            rows.append(row)
            out.append(Stopped(sl.id, sl.name, 0))
        targets = list(targets_of(s, built).values())
        s.flush()  # one round of inserts for every row
        for st, row in zip([st for st in out if not st.skipped], rows, strict=True):
            st.estop_id = row.id
    return out, targets


def stop(
    ctx: Context,
    tk: Toolkit,
    sel: Selector,
    who: Principal,
    reason: str,
    ticket: str | None = None,
) -> list[Stopped]:
    """Stop every slice the selector names. A slice named on its own must be stoppable
    (else 409, nothing changed); in a wider selection, slices already shut down or not
    running are listed as skipped."""
    reason, ticket = _checked_text(reason, ticket)
    t_request = time.perf_counter()
    now = ctx.now()
    try:
        out, targets = _shut_down(ctx, sel, who, reason, ticket, now)
    except IntegrityError:  # another stop of the same slice committed first
        raise Conflict("selector: a slice it names is being stopped by someone else") from None
    reports = isolate(tk, targets) if targets else {}
    done_ms = round((time.perf_counter() - t_request) * 1000, 3)
    at = ctx.now()
    with transaction(ctx.sessions) as s:
        for st in out:
            if st.skipped:
                continue
            rep = reports.get(st.slice_id) or Report(gateway="nothing built yet")
            stored = s.get(EStop, st.estop_id)
            assert stored is not None
            snapshot = json.loads(stored.snapshot)
            snapshot["segments"] = {d: v.get("segments", {}) for d, v in rep.devices.items()}
            snapshot["nodes"] = {
                n: {"host": v.get("host"), "processes": v.get("processes", [])}
                for n, v in rep.nodes.items()
            }
            stored.snapshot = json.dumps(snapshot)
            body = rep.to_json()
            body["built"] = st.slice_id in reports
            body["timings_ms"]["request"] = done_ms
            stored.report = json.dumps(body)
            stored.isolated_ms = rep.timings_ms.get("isolated")
            stopped = s.get(Slice, st.slice_id)
            assert stopped is not None
            for device in rep.unreached:
                alarms.raise_service_alarm(
                    s,
                    Kind.ESTOP_DEVICE,
                    device,
                    device=device,
                    detail=(
                        f"emergency stop of slice {stopped.name} ({stopped.id}) could not "
                        f"reach device "
                        f"{device}: {rep.devices.get(device, {}).get('error', '')}; "
                        + _fallback_summary(rep.fallbacks, rep.not_isolated)
                    ),
                    now=at,
                    slices=[{"id": stopped.id, "name": stopped.name, "project": stopped.project}],
                )
            st.report = body
    for st in out:
        if st.skipped:
            continue
        audit.record(
            ctx.sessions,
            who,
            "estop",
            status=200,
            target=f"slice {st.slice_name}",
            slice_id=st.slice_id,
            project=_project_of(ctx, st.slice_id),
            detail={
                "reason": reason,
                "ticket": ticket,
                "selector": sel.to_json(),
                "isolated": st.report.get("isolated"),
                "unreached": st.report.get("unreached"),
                "collateral": st.report.get("collateral"),
            },
            at=at,
        )
    # What builds on the e-stop (federation: telling the peers) hears of it here. A hook
    # never blocks, fails or undoes the stop.
    for hook in getattr(ctx, "estop_hooks", ()):
        try:
            hook(ctx, out, who, reason)
        except Exception:
            log.exception("after an emergency stop, hook %r failed (the stop stands)", hook)
    return out


def _fallback_summary(fallbacks: list[dict[str, Any]], not_isolated: list[str]) -> str:
    parts = [f"{f['how']} ({f['at']})" for f in fallbacks]
    text = "isolated around it: " + "; ".join(parts) if parts else "no fallback needed"
    if not_isolated:
        text += "; NOT isolated: " + "; ".join(not_isolated)
    return text


def _checked_text(reason: str, ticket: str | None) -> tuple[str, str | None]:
    problems = []
    reason = (reason or "").strip()
    if not reason:
        problems.append(FieldError("reason", "say why (it is shown to the slice's owner)"))
    elif len(reason) > 500 or not reason.isprintable():
        problems.append(FieldError("reason", "at most 500 printable characters"))
    if ticket is not None:
        ticket = ticket.strip()
        if not ticket or len(ticket) > 100 or not ticket.isprintable():
            problems.append(FieldError("ticket", "1 to 100 printable characters"))
    if problems:
        raise InvalidInput(problems)
    return reason, ticket or None


def _project_of(ctx: Context, slice_id: int) -> str | None:
    with transaction(ctx.read_sessions) as s:
        sl = s.get(Slice, slice_id)
        return sl.project if sl is not None else None


def _counters(session: Session, chosen: Sequence[Slice]) -> dict[int, dict[str, Any]]:
    """Per slice, the last counters polled on the devices' ports it crosses (per-VLAN
    rows too, where the poller sees them): one query for every slice."""
    ports: dict[int, set[tuple[str, str]]] = {}
    for sl in chosen:
        ports[sl.id] = {
            (hop["device"], hop["port"]) for c in sl.circuits for hop in json.loads(c.mapping)
        }
    devices = {d for ps in ports.values() for d, _ in ps}
    if not devices:
        return {}
    polled = session.execute(
        select(Device.name, MonitoredInterface)
        .join(Device, MonitoredInterface.device_id == Device.id)
        .where(Device.name.in_(devices))
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for sid, mine in ports.items():
        for device, iface in polled:
            base = iface.name.split(".", 1)[0]
            if (device, iface.name) in mine or (device, base) in mine:
                out.setdefault(sid, {})[f"{device}:{iface.name}"] = {
                    "counters": json.loads(iface.counters or "{}"),
                    "seen": iface.last_seen.isoformat(),
                }
    return out


# -- reading ---------------------------------------------------------------------------------


def in_force(session: Session, slice_id: int) -> EStop | None:
    return session.scalar(
        select(EStop).where(EStop.slice_id == slice_id, EStop.lifted_at.is_(None))
    )


def latest(session: Session, slice_id: int) -> EStop | None:
    return session.scalar(
        select(EStop).where(EStop.slice_id == slice_id).order_by(EStop.id.desc()).limit(1)
    )


def history(session: Session, slice_id: int) -> list[EStop]:
    return list(session.scalars(select(EStop).where(EStop.slice_id == slice_id).order_by(EStop.id)))


def describe(row: EStop, *, staff: bool) -> dict[str, Any]:
    """What the slice's owner and project see (who, why, ticket, state); the facility's
    staff also see the isolation report and the forensic snapshot."""
    out: dict[str, Any] = {
        "id": row.id,
        "slice_id": row.slice_id,
        "state": "lifted" if row.lifted_at else "in-force",
        "at": row.at.isoformat(),
        "by": row.by,
        "reason": row.reason,
        "ticket": row.ticket,
        "forensic_hold": row.forensic_hold,
        "lifted_at": row.lifted_at.isoformat() if row.lifted_at else None,
        "lifted_by": row.lifted_by,
        "lift_reason": row.lift_reason,
    }
    if staff:
        out["via"] = row.via
        out["selector"] = json.loads(row.selector)
        out["isolated_ms"] = row.isolated_ms
        out["report"] = json.loads(row.report)
        out["snapshot"] = json.loads(row.snapshot)
    return out


# -- lift, hold --------------------------------------------------------------------------------


def lift(ctx: Context, tk: Toolkit, slice_ref: str, who: Principal, reason: str) -> dict[str, Any]:
    """Circuits back, nodes thawed, gateway open, ACTIVE again. A slice that is not shut
    down: 409 naming the slice, nothing changed. A restore that fails somewhere leaves
    the slice SHUTDOWN with the problems named (lifting again retries; it is idempotent)."""
    reason, _ = _checked_text(reason, None)
    with transaction(ctx.read_sessions) as s:
        sl = slices.get(s, slice_ref)
        row = in_force(s, sl.id)
        if sl.status is not S.SHUTDOWN or row is None:
            raise NotShutDown(
                f"slice: {sl.name} is {sl.status.value}, not under an emergency stop; "
                "nothing to lift"
            )
        report = json.loads(row.report)
        if not report.get("built", True):
            raise NotShutDown(
                f"slice: {sl.name} was stopped before it started, so there is nothing to "
                "restore; release it (its owner can book again)"
            )
        target = target_of(s, sl)
        slice_id, name, project = sl.id, sl.name, sl.project
    result = restore(tk, target, report)
    at = ctx.now()
    detail = {"reason": reason, "problems": result.problems, "timings_ms": result.timings_ms}
    if not result.ok:
        audit.record(ctx.sessions, who, "estop.lift", status=502, target=f"slice {name}",
                     slice_id=slice_id, project=project, detail=detail, at=at)  # fmt: skip
        raise LiftIncomplete(
            f"slice {name} stays shut down; lift it again once these are fixed: "
            + "; ".join(result.problems)
        )
    with transaction(ctx.sessions) as s:
        lifted = s.get(Slice, slice_id)
        row = in_force(s, slice_id)
        assert lifted is not None and row is not None
        move(lifted, S.ACTIVE, at, f"emergency stop lifted by {who.username}: {reason}")
        lifted.access = json.dumps(result.access)
        row.lifted_at, row.lifted_by, row.lift_reason = at, who.username, reason
        for device in json.loads(row.report).get("unreached", []):
            alarms.clear_service_alarm(s, Kind.ESTOP_DEVICE, device, at)
        out = describe(row, staff=True)
    audit.record(ctx.sessions, who, "estop.lift", status=200, target=f"slice {name}",
                 slice_id=slice_id, project=project, detail=detail, at=at)  # fmt: skip
    return out


class LiftIncomplete(Conflict):
    title = "Lift incomplete"
    type_slug = "lift-incomplete"


def set_hold(ctx: Context, slice_ref: str, who: Principal, on: bool) -> dict[str, Any]:
    """Forensic hold: the slice is kept past its window's end (nothing torn down) until
    the hold is removed or an operator releases it."""
    at = ctx.now()
    with transaction(ctx.sessions) as s:
        sl = slices.get(s, slice_ref)
        row = in_force(s, sl.id)
        if row is None:
            raise NotShutDown(f"slice: {sl.name} is not under an emergency stop")
        row.forensic_hold, row.hold_by = on, who.username if on else None
        out = describe(row, staff=True)
        slice_id, name, project = sl.id, sl.name, sl.project
    action = "estop.hold" if on else "estop.unhold"
    audit.record(ctx.sessions, who, action, status=200, target=f"slice {name}",
                 slice_id=slice_id, project=project, detail={}, at=at)  # fmt: skip
    return out


def on_hold(session: Session, slice_id: int) -> bool:
    row = in_force(session, slice_id)
    return row is not None and row.forensic_hold
