"""Attribution, GENI's duty for every aggregate: from an address, a VLAN on a link, a port,
a node's name or a user, at a time, to the slices involved and the people answerable for
them. Read-only; operators' pages and the e-stop's selectors build on it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.aaa.audit import Place, held_query, place_condition
from federica.aaa.models import AuditEntry, Membership, Project, User
from federica.errors import FieldError, InvalidInput, NotFound
from federica.slices.models import Reservation, Slice, SliceNode
from federica.substrate.models import ComputeHost

# Requests seen from an address this long either side of the time still name their sender.
AUDIT_SLACK = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Person:
    username: str
    display_name: str
    email: str
    why: str  # "owner", "lead of demo", "member of demo", "requests from this address"


@dataclass
class Finding:
    slice_id: int
    slice: str
    project: str | None
    status: str
    start: dt.datetime
    end: dt.datetime
    matched: list[str] = field(default_factory=list)  # what about the slice matched
    people: list[Person] = field(default_factory=list)


@dataclass(frozen=True)
class Query:
    at: dt.datetime
    address: str | None = None  # an IP, optionally :port (a slice's gateway)
    vlan: int | None = None
    link: str | None = None
    port: str | None = None  # device:port
    node: str | None = None  # a slice node's name, or a V-node's
    user: str | None = None

    def check(self) -> None:
        errors: list[FieldError] = []
        if self.at.tzinfo is None:
            errors.append(FieldError("at", "give a time zone (e.g. Z or +01:00)"))
        if not any((self.address, self.vlan, self.link, self.port, self.node, self.user)):
            errors.append(
                FieldError("query", "give at least one of address, vlan, link, port, node, user")
            )
        if self.vlan is not None and not (self.link or self.port):
            errors.append(FieldError("vlan", "a VLAN is only unique on a link or a port"))
        if self.address:
            try:
                _split_address(self.address)
            except ValueError as exc:
                errors.append(FieldError("address", str(exc)))
        if errors:
            raise InvalidInput(errors)


def find(session: Session, q: Query) -> tuple[list[Finding], list[Person]]:
    """Slices matching every given criterion at q.at, each with its people; and, for an
    address, who sent requests to the facility from it around that time."""
    q.check()
    found: dict[int, Finding] | None = None

    def narrow(hits: dict[int, str]) -> None:
        nonlocal found
        if found is None:
            found = {sid: _finding(session, sid) for sid in hits}
        else:
            found = {sid: f for sid, f in found.items() if sid in hits}
        for sid, what in hits.items():
            if sid in found:
                found[sid].matched.append(what)

    if q.vlan is not None or q.link or q.port:
        narrow(_by_place(session, q))
    if q.node:
        narrow(_by_node(session, q.node, q.at))
    if q.user:
        narrow(_by_user(session, q.user, q.at))
    senders: list[Person] = []
    if q.address:
        narrow(_by_gateway(session, q.address, q.at))
        senders = _senders(session, q.address, q.at)
    results = sorted((found or {}).values(), key=lambda f: f.slice_id)
    for f in results:
        f.people = people_of(session, f.slice_id)
    return results, senders


def _finding(session: Session, slice_id: int) -> Finding:
    sl = session.get_one(Slice, slice_id)
    return Finding(sl.id, sl.name, sl.project, sl.status.value, sl.start, sl.end)


def _by_place(session: Session, q: Query) -> dict[int, str]:
    place = Place(link=q.link, port=q.port)
    if q.vlan is not None:
        rows = session.execute(held_query(session, q.vlan, place, q.at))
        where = q.link or q.port
        return {r.slice_id: f"VLAN {q.vlan} on {where}" for r in rows}
    condition = place_condition(session, place)
    rows = session.execute(
        select(Reservation.slice_id, Reservation.vlan)
        .where(condition, Reservation.start <= q.at, Reservation.end > q.at)
        .distinct()
    )
    where = q.link or q.port
    out: dict[int, str] = {}
    for sid, vlan in rows:
        out.setdefault(sid, f"held {where}" + (f" (VLAN {vlan})" if vlan else ""))
    return out


def _by_node(session: Session, name: str, at: dt.datetime) -> dict[int, str]:
    """A slice's node by its name, or every slice with a node on the V-node of that name."""
    held = (
        select(Reservation.slice_id)
        .where(Reservation.start <= at, Reservation.end > at)
        .scalar_subquery()
    )
    rows = session.execute(
        select(SliceNode.slice_id, SliceNode.name, ComputeHost.name)
        .join(ComputeHost, SliceNode.host_id == ComputeHost.id)
        .where((SliceNode.name == name) | (ComputeHost.name == name), SliceNode.slice_id.in_(held))
    )
    out: dict[int, str] = {}
    for sid, node, host in rows:
        out.setdefault(sid, f"node {node} on V-node {host}")
    return out


def _by_user(session: Session, username: str, at: dt.datetime) -> dict[int, str]:
    user = session.scalar(select(User).where(User.username == username.strip().lower()))
    if user is None:
        raise NotFound(f"user: no user {username!r}")
    projects = [m.project.name for m in user.memberships]
    rows = session.execute(
        select(Slice.id, Slice.owner_id, Slice.project)
        .join(Reservation, Reservation.slice_id == Slice.id)
        .where(
            (Slice.owner_id == user.id) | Slice.project.in_(projects),
            Reservation.start <= at,
            Reservation.end > at,
        )
        .distinct()
    )
    return {
        sid: "booked by them" if owner == user.id else f"of their project {project}"
        for sid, owner, project in rows
    }


def _split_address(text: str) -> tuple[str, int | None]:
    """ "192.0.2.1", "192.0.2.1:40022", "2001:db8::1" or "[2001:db8::1]:40022"."""
    text = text.strip()
    host, port = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest.removeprefix(":")
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    address = str(ipaddress.ip_address(host))  # a ValueError names what is wrong
    if port and not (port.isdigit() and 0 < int(port) < 65536):
        raise ValueError(f"{port!r} is not a port number")
    return address, int(port) if port else None


def _by_gateway(session: Session, text: str, at: dt.datetime) -> dict[int, str]:
    """Slices whose gateway (their one way in from outside) listened at that address."""
    address, port = _split_address(text)
    rows = session.execute(
        select(Slice.id, Slice.access)
        .join(Reservation, Reservation.slice_id == Slice.id)
        .where(Reservation.start <= at, Reservation.end > at)
        .distinct()
    )
    out: dict[int, str] = {}
    for sid, access in rows:
        info: dict[str, Any] = json.loads(access or "{}")
        host, listen = info.get("host"), info.get("port")
        if host == address and (port is None or listen == port):
            out[sid] = f"its gateway listened at {host}:{listen}"
    return out


def _senders(session: Session, text: str, at: dt.datetime) -> list[Person]:
    address, _ = _split_address(text)
    rows = session.execute(
        select(AuditEntry.actor)
        .where(
            AuditEntry.address == address,
            AuditEntry.at >= at - AUDIT_SLACK,
            AuditEntry.at < at + AUDIT_SLACK,
        )
        .distinct()
    )
    names = sorted({actor for (actor,) in rows if actor})
    users = {u.username: u for u in session.scalars(select(User).where(User.username.in_(names)))}
    return [
        Person(n, users[n].display_name, users[n].email, "requests from this address")
        for n in names
        if n in users
    ]


def people_of(session: Session, slice_id: int) -> list[Person]:
    """Who answers for a slice: its owner, then its project's leads and members."""
    sl = session.get_one(Slice, slice_id)
    people: dict[str, Person] = {}
    if sl.owner is not None:
        people[sl.owner.username] = Person(
            sl.owner.username, sl.owner.display_name, sl.owner.email, "owner"
        )
    if sl.project:
        members = session.execute(
            select(User, Membership.role)
            .join(Membership, Membership.user_id == User.id)
            .join(Project, Membership.project_id == Project.id)
            .where(Project.name == sl.project)
            .order_by(User.username)
        )
        for user, role in members:
            why = f"{role.value} of {sl.project}"
            people.setdefault(
                user.username, Person(user.username, user.display_name, user.email, why)
            )
    return list(people.values())


def describe(finding: Finding) -> dict[str, Any]:
    return {
        "slice_id": finding.slice_id,
        "slice": finding.slice,
        "project": finding.project,
        "status": finding.status,
        "start": finding.start.isoformat(),
        "end": finding.end.isoformat(),
        "matched": finding.matched,
        "people": [vars(p) for p in finding.people],
    }
