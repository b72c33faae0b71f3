"""Bookings a peer's users make here (this facility is the visited one), in two phases:
a hold (booked, waiting, not built) that the peer commits or aborts before it times out.

The user is who the home facility's signed assertion says; they book in this facility's
guest project for that peer (`guest-<peer>`), as a member of it only, so this facility's
own policy and quotas apply as to any researcher, and the peer's guest quota bounds how
many bookings its users hold here at once. The peer names each booking by its own request
id: a hold or commit repeated (a lost answer, a retry) is answered, not done twice.
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from federica.aaa import accounts, audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.config import Settings
from federica.db import transaction
from federica.errors import Conflict, FieldError, InvalidInput, NotFound
from federica.federation import assertion as assertions
from federica.federation.agreement import API_VERSION
from federica.federation.calendar import check_pins
from federica.federation.models import FederationPeer, GuestBooking, GuestState
from federica.slices import events, runner, service
from federica.slices.calendar import Interval
from federica.slices.embed import Embedder
from federica.slices.lifecycle import HOLDING, SliceStatus
from federica.slices.models import Slice
from federica.slices.quota import QuotaExceeded

REQUEST_ID = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
DEFAULT_HOLD = dt.timedelta(seconds=60)
MAX_HOLD = dt.timedelta(minutes=10)
_BODY_KEYS = {"request_id", "assertion", "request", "hold_seconds"}


def guest_project(peer: FederationPeer) -> str:
    return f"guest-{peer.name}"


@dataclass(frozen=True)
class Held:
    booking: GuestBooking
    slice: Slice
    assertion: assertions.Assertion | None  # None: a repeated hold, answered as it was
    created: bool


def _request_hash(document: Any) -> str:
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def parse_body(body: Any) -> tuple[str, Any, dict[str, Any], dt.timedelta]:
    if not isinstance(body, dict):
        raise InvalidInput([FieldError("", "a JSON object with request_id, assertion, request")])
    errors = [FieldError(k, "unknown field") for k in sorted(set(body) - _BODY_KEYS)]
    request_id = body.get("request_id")
    if not isinstance(request_id, str) or not REQUEST_ID.match(request_id):
        errors.append(FieldError("request_id", "8 to 64 characters of A-Z a-z 0-9 _ -"))
    document = body.get("request")
    if not isinstance(document, dict):
        errors.append(FieldError("request", "the slice request (a JSON object)"))
    seconds = body.get("hold_seconds", int(DEFAULT_HOLD.total_seconds()))
    top = int(MAX_HOLD.total_seconds())
    if not isinstance(seconds, int) or isinstance(seconds, bool) or not 1 <= seconds <= top:
        errors.append(FieldError("hold_seconds", f"a whole number of seconds, 1 to {top}"))
    if errors:
        raise InvalidInput(errors)
    assert isinstance(request_id, str) and isinstance(document, dict)
    return request_id, body.get("assertion"), document, dt.timedelta(seconds=seconds)


def _find(session: Session, peer: FederationPeer, request_id: str) -> GuestBooking | None:
    return session.scalar(
        select(GuestBooking).where(
            GuestBooking.peer == peer.name, GuestBooking.request_id == request_id
        )
    )


def get(session: Session, peer: FederationPeer, request_id: str) -> GuestBooking:
    found = _find(session, peer, request_id) if REQUEST_ID.match(request_id) else None
    if found is None:
        raise NotFound(f"no booking of {peer.name!r} with request id {request_id[:64]!r}")
    return found


def expire(session: Session, now: dt.datetime) -> list[GuestBooking]:
    """Release every hold whose time ran out (the peer neither committed nor aborted)."""
    stale = list(
        session.scalars(
            select(GuestBooking).where(
                GuestBooking.state == GuestState.HELD, GuestBooking.hold_until <= now
            )
        )
    )
    for booking in stale:
        sl = session.get(Slice, booking.slice_id)
        if sl is not None:
            service.release(session, sl, now=now, reason="the peer's hold timed out")
        booking.state = GuestState.ABORTED
    session.flush()
    return stale


def held_by(session: Session, peer: FederationPeer, now: dt.datetime) -> int:
    """How many bookings the peer's users hold here now (held or committed, not over)."""
    count = session.scalar(
        select(func.count(GuestBooking.id))
        .join(Slice, Slice.id == GuestBooking.slice_id)
        .where(
            GuestBooking.peer == peer.name,
            GuestBooking.state.in_([GuestState.HELD, GuestState.COMMITTED]),
            Slice.status.in_(HOLDING),
            Slice.end > now,
        )
    )
    return int(count or 0)


def ensure_project(session: Session, peer: FederationPeer) -> None:
    project = guest_project(peer)
    if not accounts.project_exists(session, project):
        accounts.create_project(
            session, project, description=f"guests from peer facility {peer.name}"
        )


def _guest(session: Session, peer: FederationPeer, who: assertions.Assertion) -> Principal:
    """The visiting user as this facility sees them: a researcher in the peer's guest
    project only (their home projects are recorded, not trusted here)."""
    project = guest_project(peer)
    ensure_project(session, peer)
    return Principal(
        username=f"{who.username}@{peer.name}",
        role=Role.RESEARCHER,
        projects=frozenset({project}),
        via="federation",
    )


def _local_request(
    peer: FederationPeer, document: dict[str, Any], who: assertions.Assertion
) -> dict[str, Any]:
    """The request as booked here: in the guest project, named after the peer, and the
    user's SSH keys from the assertion (the peer vouches for them)."""
    local = copy.deepcopy(document)
    name = local.get("name")
    if isinstance(name, str):
        local["name"] = f"{peer.name}-{name}"[:32].rstrip("-")
    local["project"] = guest_project(peer)
    local["ssh_keys"] = list(who.ssh_keys)
    return local


def hold(
    session: Session,
    settings: Settings,
    peer: FederationPeer,
    body: Any,
    *,
    audience: str,
    now: dt.datetime,
    embedder: Embedder | None = None,
) -> Held:
    """`embedder`: another than the default (a stitched hold's: interdomain.py)."""
    request_id, token, document, hold_for = parse_body(body)
    who = assertions.verify(session, token, peer=peer, audience=audience, now=now)
    digest = _request_hash(document)
    existing = _find(session, peer, request_id)
    if existing is not None:
        if existing.request_hash != digest:
            raise Conflict(
                f"request id {request_id} was used for another request",
                errors=[FieldError("request_id", "used for another request").as_dict()],
            )
        sl = session.get(Slice, existing.slice_id)
        assert sl is not None
        return Held(existing, sl, None, created=False)
    check_pins(session, peer, document)
    assertions.consume(session, who, now)
    actor = _guest(session, peer, who)
    booked = service.book(
        session, settings, _local_request(peer, document, who), now=now, actor=actor,
        embedder=embedder or service.DEFAULT_EMBEDDER,
    )  # fmt: skip
    sl = booked.slice
    assert sl is not None
    # Counted under the calendar lock the booking took: concurrent holds cannot both
    # take the last of the quota.
    if held_by(session, peer, now) >= peer.guest_quota:
        raise QuotaExceeded(
            f"peer {peer.name!r} may hold {peer.guest_quota} bookings here at once "
            "(its guest quota)",
            quota="guest bookings",
            errors=[FieldError("guest_quota", "reached").as_dict()],
        )
    # Held, not built: the slice's start waits for the commit.
    events.cancel_pending(sl, now, "held for the peer's commit")
    booking = GuestBooking(
        peer=peer.name,
        request_id=request_id,
        request_hash=digest,
        slice_id=sl.id,
        user_urn=who.user,
        state=GuestState.HELD,
        hold_until=now + hold_for,
    )
    session.add(booking)
    session.flush()
    return Held(booking, sl, who, created=True)


def commit(
    session: Session, settings: Settings, peer: FederationPeer, request_id: str, now: dt.datetime
) -> GuestBooking:
    booking = get(session, peer, request_id)
    if booking.state is GuestState.COMMITTED:
        return booking
    if booking.state is GuestState.ABORTED:
        raise Conflict(f"booking {request_id} was aborted (or its hold timed out); book again")
    if booking.hold_until <= now:  # timed out since the last sweep; the next releases it
        raise Conflict(f"booking {request_id}: its hold timed out at {booking.hold_until:%H:%M:%S}")
    sl = session.get(Slice, booking.slice_id)
    assert sl is not None
    booking.state = GuestState.COMMITTED
    sl.events.extend(events.for_window(Interval(max(sl.start, now), sl.end), settings))
    sl.note(now, f"committed by peer {peer.name}")
    session.flush()
    return booking


def abort(
    session: Session, peer: FederationPeer, request_id: str, now: dt.datetime
) -> GuestBooking:
    booking = get(session, peer, request_id)
    if booking.state is GuestState.ABORTED:
        return booking
    sl = session.get(Slice, booking.slice_id)
    if sl is not None:
        if sl.status in (SliceStatus.SCHEDULED, SliceStatus.ENDED):
            service.release(session, sl, now=now, reason=f"aborted by peer {peer.name}")
        else:  # built (or being built): a worker takes it down
            runner.request_release(session, sl, now)
    booking.state = GuestState.ABORTED
    session.flush()
    return booking


def describe(session: Session, booking: GuestBooking) -> dict[str, Any]:
    sl = session.get(Slice, booking.slice_id)
    assert sl is not None
    shown = service.describe(sl)
    return {
        "version": API_VERSION,
        "request_id": booking.request_id,
        "state": booking.state.value,
        "hold_until": booking.hold_until.isoformat(),
        "user": booking.user_urn,
        "slice": {
            key: shown[key] for key in ("id", "name", "status", "project", "start", "end", "access")
        }
        | {
            "nodes": [
                {k: n[k] for k in ("name", "pop", "v_node", "state", "interfaces")}
                for n in shown["nodes"]
            ]
        },
    }


EXPIRER = Principal("federation", Role.OPERATOR, via="worker")


def expire_due(sessions: sessionmaker[Session], now: dt.datetime) -> list[str]:
    """The leading worker's duty: free every hold that ran out, even when no peer calls
    again (its home died between the phases); each release audited. Returns their ids."""
    with transaction(sessions) as session:
        expired = [(b.request_id, b.slice_id, b.peer, b.user_urn)
                   for b in expire(session, now)]  # fmt: skip
    for request_id, slice_id, home, user in expired:
        audit.record(
            sessions, EXPIRER, "federation.expire", status=200, target=f"booking {request_id}",
            slice_id=slice_id, detail={"home": home, "user": user}, at=now,
        )  # fmt: skip
    return [r for r, *_ in expired]
