"""The audit log: record every state-changing action; search it; and answer "who held
VLAN v on link L (or port P) at time t?" in one query over the reservations, which keep
what each slice held (a released slice's reservations end when it was released).

Whatever a request carried, its entry fits its columns: every field is cut to its
column's size and its control characters are escaped before it is stored (PostgreSQL
refuses NUL), and the detail is bounded, so recording never fails on the input it
describes. Anonymous misses are counted, not recorded (`count_anonymous`)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, sessionmaker

from federica import inputs
from federica.aaa.models import AnonymousRequest, AuditEntry, User
from federica.aaa.policy import Principal
from federica.db import insert_rows
from federica.errors import FieldError, InvalidInput, NotFound
from federica.slices.models import Reservation, ReservationKind, Slice
from federica.substrate.models import Device, Link, Port

VLAN_KINDS = (ReservationKind.LINK_VLAN, ReservationKind.PORT_VLAN)
# Longest text value kept in an entry's detail, items kept of a list or mapping, and the
# whole detail's size (JSON).
DETAIL_TEXT = 500
DETAIL_ITEMS = 20
DETAIL_BYTES = 8000
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def result_of(status: int) -> str:
    if status < 400:
        return "ok"
    return "refused" if status < 500 else "failed"


def record(
    sessions: sessionmaker[Session],
    who: Principal | None,
    action: str,
    *,
    status: int,
    target: str = "",
    slice_id: int | None = None,
    project: str | None = None,
    detail: dict[str, Any] | None = None,
    via: str | None = None,
    address: str = "",
    at: dt.datetime,
) -> None:
    """Appends one entry in its own transaction, so refused and failed actions (whose
    own transaction rolled back) are recorded too."""
    values = entry_values(
        who, action, status=status, target=target, slice_id=slice_id, project=project,
        detail=detail, via=via, address=address, at=at,
    )  # fmt: skip
    with sessions() as s, s.begin():
        insert_entry(s, values)


def insert_entry_now(sessions: sessionmaker[Session], values: dict[str, Any]) -> None:
    """One entry (from `entry_values`) in its own transaction."""
    with sessions() as s, s.begin():
        insert_entry(s, values)


def entry_values(
    who: Principal | None,
    action: str,
    *,
    status: int,
    target: str = "",
    slice_id: int | None = None,
    project: str | None = None,
    detail: dict[str, Any] | None = None,
    via: str | None = None,
    address: str = "",
    at: dt.datetime,
) -> dict[str, Any]:
    """One entry's columns, each bounded to its column (see the module's docstring)."""
    return {
        "at": at,
        "actor": text(who.username if who is not None else "anonymous", 100),
        "actor_id": who.user_id if who is not None else None,
        "via": text(via or (who.via if who is not None else "api"), 16),
        "address": text(address or (who.address if who is not None else ""), 64),
        "action": text(action, 64),
        "target": text(target, 200),
        "slice_id": slice_id if slice_id is None or 0 < slice_id < 2**31 else None,
        "project": text(project, 64) if project is not None else None,
        "result": result_of(status),
        "status": status,
        "detail": bounded_detail(detail or {}),
    }


def insert_entry(session: Session, values: dict[str, Any]) -> None:
    """The entry as one plain INSERT in the session's transaction: a change and its entry
    commit together (a booking's; see web/auth.py `record_with`), or neither does."""
    insert_rows(session.connection(), cast(Table, AuditEntry.__table__), [values])


def text(value: str, limit: int) -> str:
    """At most `limit` characters, control characters and lone surrogates escaped."""
    cut = value[:limit]
    if cut.isprintable():
        return cut
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in cut)[:limit]


def _bounded(value: Any, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return text(value, DETAIL_TEXT)
    if depth < 3 and isinstance(value, dict):
        items = list(value.items())[:DETAIL_ITEMS]
        return {text(str(k), 64): _bounded(v, depth + 1) for k, v in items}
    if depth < 3 and isinstance(value, list | tuple | set | frozenset):
        return [_bounded(v, depth + 1) for v in list(value)[:DETAIL_ITEMS]]
    return text(str(value), DETAIL_TEXT)


def bounded_detail(detail: dict[str, Any]) -> str:
    """The detail as JSON (ASCII: any character survives any database), at most
    DETAIL_BYTES long and still JSON."""
    dumped = json.dumps(_bounded(detail, 0), sort_keys=True)
    if len(dumped) <= DETAIL_BYTES:
        return dumped
    return json.dumps({"truncated": dumped[: DETAIL_BYTES // 2]})


def count_anonymous(
    sessions: sessionmaker[Session],
    *,
    method: str,
    route: str,
    status: int,
    address: str,
    at: dt.datetime,
) -> None:
    """One more anonymous request of this kind today (one row per day, method, route and
    status, whatever the caller sends: the table cannot be flooded)."""
    values = {
        "day": at.date(),
        "method": method if method in METHODS else "OTHER",
        "route": text(route, 64),
        "status": status,
        "count": 1,
        "last_at": at,
        "last_address": text(address, 64),
    }
    with sessions() as s, s.begin():
        postgres = s.get_bind().dialect.name == "postgresql"
        insert = postgresql.insert if postgres else sqlite.insert
        stmt = insert(AnonymousRequest).values(**values)
        s.execute(
            stmt.on_conflict_do_update(
                index_elements=["day", "method", "route", "status"],
                set_={
                    "count": AnonymousRequest.count + 1,
                    "last_at": stmt.excluded.last_at,
                    "last_address": stmt.excluded.last_address,
                },
            )
        )


def anonymous_counts(session: Session, since: dt.date | None = None) -> list[dict[str, Any]]:
    """The counted anonymous requests, newest day first."""
    query = select(AnonymousRequest).order_by(
        AnonymousRequest.day.desc(), AnonymousRequest.count.desc()
    )
    if since is not None:
        query = query.where(AnonymousRequest.day >= since)
    return [
        {
            "day": r.day.isoformat(),
            "method": r.method,
            "route": r.route,
            "status": r.status,
            "count": r.count,
            "last_at": r.last_at.isoformat(),
            "last_address": r.last_address,
        }
        for r in session.scalars(query)
    ]


@dataclass(frozen=True)
class Place:
    """A link by name (either end order: "mil-prg" finds "prg-mil") or a port
    ("device:port")."""

    link: str | None = None
    port: str | None = None


def place_condition(session: Session, place: Place) -> Any:
    if place.link is not None:
        names = {place.link, "-".join(reversed(place.link.split("-", 1)))}
        link_ids = list(session.scalars(select(Link.id).where(Link.name.in_(names))))
        if not link_ids:
            raise NotFound(f"link: no link {place.link!r}")
        return Reservation.link_id.in_(link_ids)
    if place.port is not None:
        device, _, port = place.port.partition(":")
        port_id = session.scalar(
            select(Port.id).join(Device).where(Device.name == device, Port.name == port)
        )
        if port_id is None:
            raise NotFound(f"port: no port {place.port!r} (device:port)")
        return or_(
            Reservation.port_id == port_id,
            Reservation.link_id.in_(
                select(Link.id).where(or_(Link.port_a_id == port_id, Link.port_b_id == port_id))
            ),
        )
    return None


def held_query(session: Session, vlan: int, place: Place, at: dt.datetime) -> Any:
    if not 1 <= vlan <= 4094:
        raise InvalidInput([FieldError("vlan", "a VLAN tag is 1 to 4094")])
    if at.tzinfo is None:
        raise InvalidInput([FieldError("at", "give a time zone (e.g. Z or +01:00)")])
    owner = aliased(User)
    query = (
        select(
            Reservation.start,
            Reservation.end,
            Reservation.kind,
            Link.name.label("link"),
            Slice.id.label("slice_id"),
            Slice.name.label("slice"),
            Slice.project,
            Slice.status,
            owner.username,
            owner.display_name,
            owner.email,
        )
        .join(Slice, Reservation.slice_id == Slice.id)
        .outerjoin(owner, Slice.owner_id == owner.id)
        .outerjoin(Link, Reservation.link_id == Link.id)
        .where(
            Reservation.kind.in_(VLAN_KINDS),
            Reservation.vlan == vlan,
            Reservation.start <= at,
            Reservation.end > at,
        )
        .order_by(Reservation.start)
    )
    condition = place_condition(session, place)
    return query if condition is None else query.where(condition)


def held_by(session: Session, vlan: int, place: Place, at: dt.datetime) -> list[dict[str, Any]]:
    """Who held the tag there and then: one SQL query (reservations ⋈ slices ⋈ users)."""
    return [
        {
            "slice_id": row.slice_id,
            "slice": row.slice,
            "project": row.project,
            "status": row.status.value,
            "user": row.username,
            "display_name": row.display_name,
            "email": row.email,
            "link": row.link,
            "held_from": row.start.isoformat(),
            "held_until": row.end.isoformat(),
        }
        for row in session.execute(held_query(session, vlan, place, at))
    ]


def search(
    session: Session,
    *,
    slice_ref: str | None = None,
    user: str | None = None,
    vlan: int | None = None,
    place: Place = Place(),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    action: str | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """Entries newest first, at times in [since, until). A VLAN, a link or a port narrows
    them to the slices that ever held it."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(max(1, min(limit, 5000)))
    if slice_ref is not None:
        ids = (
            [inputs.id_or_none(slice_ref) or 0]
            if inputs.looks_like_id(slice_ref)
            else list(session.scalars(select(Slice.id).where(Slice.name == slice_ref)))
        )
        query = query.where(AuditEntry.slice_id.in_(ids))
    if user is not None:
        query = query.where(AuditEntry.actor == user.strip().lower())
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if vlan is not None or place.link is not None or place.port is not None:
        holders = select(Reservation.slice_id)
        if vlan is not None:
            holders = holders.where(Reservation.kind.in_(VLAN_KINDS), Reservation.vlan == vlan)
        condition = place_condition(session, place)
        if condition is not None:
            holders = holders.where(condition)
        query = query.where(AuditEntry.slice_id.in_(holders))
    return list(session.scalars(query))


def describe(entry: AuditEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "via": entry.via,
        "address": entry.address,
        "action": entry.action,
        "target": entry.target,
        "slice_id": entry.slice_id,
        "project": entry.project,
        "result": entry.result,
        "status": entry.status,
        "detail": json.loads(entry.detail or "{}"),
    }
