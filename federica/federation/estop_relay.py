"""E-stop propagation: an emergency stop of a federated slice at either facility shuts
its parts at the other.

* Here, the slice's home: each peer holding a part of it (a remote part, named by our
  request id) is told to stop that part (`POST /federation/v1/bookings/{id}/estop`).
* Here, the visited facility: the home facility of a guest booking that was stopped here
  is told (`POST /federation/v1/parts/{id}/estop`), and stops its own part too — a
  federated slice is one experiment, and the facility that stopped it judged it unsafe.

The local stop never waits for a peer and is never undone by one: `after_stop` (a hook on
the application context, run after `estop.stop`) only writes an outbox row per peer and
starts a delivery thread. A peer that cannot be reached leaves the row pending (its
error and attempts visible in `GET /api/v1/slices/{ref}/remote`, and a
`peer-estop-undelivered` alarm open); the leading worker retries it with back-off. A stop
is never relayed back to the peer that asked for it.

Receiving: a peer may stop only its own guests' bookings here (or the home slices of our
parts at it), and only if the agreement grants `estop`; anything else is 403/404.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.alarms import service as alarms
from federica.alarms.evaluate import Kind
from federica.config import Settings
from federica.db import transaction
from federica.errors import Conflict, FieldError, InvalidInput, NotFound
from federica.estop import service as estop
from federica.estop.isolate import Toolkit
from federica.federation import guests, identity
from federica.federation.agreement import API_VERSION
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import FederationPeer, GuestBooking, GuestState, RemotePart
from federica.federation.relay_models import EStopRelay, RelayDirection, RelayState
from federica.slices.models import Slice

log = logging.getLogger(__name__)
# A stop at the peer isolates its part before it answers: give it time.
RELAY_TIMEOUT_S = 120.0
# After the n-th failed attempt, wait BACKOFF_S[n-1] seconds (the last one thereafter).
BACKOFF_S = (5.0, 15.0, 30.0, 60.0, 120.0, 300.0)
# While one process delivers a row, no other takes it (longer than a call may last).
CLAIM_S = RELAY_TIMEOUT_S + 30.0
RELAYER = Principal("federation", Role.OPERATOR, via="federation")


class Context(Protocol):
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]

    def now(self) -> dt.datetime: ...


def origin_of(who: Principal) -> str | None:
    """The peer on whose word this stop was made (None: a person or service here)."""
    if who.via == "federation" and who.username.startswith("peer:"):
        return who.username.removeprefix("peer:")
    return None


# -- queueing (the hook) ------------------------------------------------------------------


def after_stop(
    ctx: Context, stopped: Sequence[estop.Stopped], who: Principal, reason: str
) -> list[int]:
    """Queue a relay to every peer holding a part of a slice just stopped (or its home),
    and deliver them at once in a thread of their own. Returns the queued rows' ids."""
    live = [st for st in stopped if not st.skipped]
    if not live:
        return []
    origin = origin_of(who)
    now = ctx.now()
    made: list[EStopRelay] = []
    with transaction(ctx.sessions) as s:
        for st in live:
            targets: list[tuple[str, str, RelayDirection]] = [
                (p.peer, p.request_id, RelayDirection.TO_VISITED)
                for p in s.scalars(
                    select(RemotePart).where(
                        RemotePart.slice_id == st.slice_id,
                        RemotePart.state != GuestState.ABORTED,
                    )
                )
            ]
            targets += [
                (b.peer, b.request_id, RelayDirection.TO_HOME)
                for b in s.scalars(
                    select(GuestBooking).where(
                        GuestBooking.slice_id == st.slice_id,
                        GuestBooking.state == GuestState.COMMITTED,
                    )
                )
            ]
            for peer, request_id, direction in targets:
                if peer == origin:
                    continue  # it knows: it asked
                row = EStopRelay(
                    slice_id=st.slice_id, estop_id=st.estop_id, peer=peer,
                    request_id=request_id, direction=direction, state=RelayState.PENDING,
                    by=who.username[:128], reason=reason[:500], attempts=0, last_error="",
                    next_attempt_at=now, answer="{}",
                )  # fmt: skip
                s.add(row)
                made.append(row)
        s.flush()
        ids = [r.id for r in made]
    if ids:
        # Not a daemon: a process that stops (the CLI's `federica estop`, a server shutting
        # down) finishes the call in flight rather than leave it claimed for CLAIM_S.
        threading.Thread(
            target=_deliver_quietly, args=(ctx, ids), name="estop-relay", daemon=False
        ).start()
    return ids


def _deliver_quietly(ctx: Context, ids: list[int]) -> None:
    try:
        deliver(ctx, ids)
    except Exception:  # the worker retries what is still pending
        log.exception("relaying emergency stops %s failed", ids)


# -- delivering ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Claimed:
    id: int
    slice_id: int
    peer: str
    request_id: str
    direction: RelayDirection
    by: str
    reason: str
    attempts: int


def deliver(ctx: Context, only: Sequence[int] | None = None) -> dict[int, str]:
    """Deliver the relays that are due (all, or those of `only`); returns each one's
    state after this attempt. Rows another process is delivering are left to it."""
    now = ctx.now()
    with transaction(ctx.read_sessions) as s:
        query = select(EStopRelay.id).where(
            EStopRelay.state == RelayState.PENDING, EStopRelay.next_attempt_at <= now
        )
        if only is not None:
            query = query.where(EStopRelay.id.in_(list(only)))
        due = list(s.scalars(query.order_by(EStopRelay.id)))
    out: dict[int, str] = {}
    for relay_id in due:
        claimed = _claim(ctx, relay_id, now)
        if claimed is not None:
            out[relay_id] = _deliver_one(ctx, claimed)
    return out


def _claim(ctx: Context, relay_id: int, now: dt.datetime) -> _Claimed | None:
    with transaction(ctx.sessions) as s:
        taken = s.execute(
            update(EStopRelay)
            .where(
                EStopRelay.id == relay_id,
                EStopRelay.state == RelayState.PENDING,
                EStopRelay.next_attempt_at <= now,
            )
            .values(next_attempt_at=now + dt.timedelta(seconds=CLAIM_S))
            .execution_options(synchronize_session=False)
        )
        if getattr(taken, "rowcount", 0) != 1:
            return None
        row = s.get(EStopRelay, relay_id)
        assert row is not None
        return _Claimed(row.id, row.slice_id, row.peer, row.request_id, row.direction,
                        row.by, row.reason, row.attempts)  # fmt: skip


def _path(c: _Claimed) -> str:
    what = "bookings" if c.direction is RelayDirection.TO_VISITED else "parts"
    return f"/federation/v1/{what}/{c.request_id}/estop"


def _deliver_one(ctx: Context, c: _Claimed) -> str:
    subject = f"{c.peer}:{c.request_id}"
    error, status = "", None
    answer: dict[str, Any] = {}
    try:
        client = _client(ctx, c.peer)
        answer = client.post(_path(c), {"reason": c.reason, "by": c.by})
    except PeerError as exc:
        error, status = str(exc), exc.http_status
    except (NotFound, identity.NoIdentity) as exc:
        error, status = str(exc), 404
    now = ctx.now()
    refused = status is not None and 400 <= status < 500
    with transaction(ctx.sessions) as s:
        row = s.get(EStopRelay, c.id)
        assert row is not None
        sl = s.get(Slice, c.slice_id)
        slices = [{"id": sl.id, "name": sl.name, "project": sl.project}] if sl else []
        row.attempts = c.attempts + 1
        if not error:
            row.state, row.delivered_at = RelayState.DELIVERED, now
            row.answer, row.last_error = json.dumps(answer), ""
            alarms.clear_service_alarm(s, Kind.PEER_ESTOP, subject, now)
        else:
            row.last_error = error[:2000]
            if refused:
                row.state = RelayState.REFUSED
            else:
                wait = BACKOFF_S[min(c.attempts, len(BACKOFF_S) - 1)]
                row.next_attempt_at = now + dt.timedelta(seconds=wait)
            alarms.raise_service_alarm(
                s, Kind.PEER_ESTOP, subject, now=now, slices=slices,
                detail=(f"the emergency stop of slice {sl.name if sl else c.slice_id} "
                        f"{'was refused by' if refused else 'has not reached'} peer "
                        f"{c.peer!r} (attempt {c.attempts + 1}): {error}"),
            )  # fmt: skip
        state = row.state.value
    if not error or refused or c.attempts == 0:  # not every retry: the alarm says it
        audit.record(
            ctx.sessions, RELAYER, "federation.estop.relay",
            status=200 if not error else (status or 502), target=f"peer {c.peer}",
            slice_id=c.slice_id,
            detail={"peer": c.peer, "request_id": c.request_id, "direction": c.direction.value,
                    "by": c.by, "reason": c.reason, "attempt": c.attempts + 1,
                    "state": state, "error": error,
                    "remote_status": (answer.get("slice") or {}).get("status")},
            at=now,
        )  # fmt: skip
    return state


def _client(ctx: Context, peer_name: str) -> PeerClient:
    facility = identity.load(ctx.settings.data_dir)
    with transaction(ctx.read_sessions) as s:
        peer = s.scalar(select(FederationPeer).where(FederationPeer.name == peer_name))
        if peer is None:
            raise NotFound(f"{peer_name!r} is no longer a peer")
        files = facility.files
        return PeerClient(peer.url, peer.ca_pem, files.client_cert, files.client_key,
                          timeout_s=RELAY_TIMEOUT_S)  # fmt: skip


def status_for(session: Session, slice_id: int) -> dict[str, dict[str, Any]]:
    """Per request id, the latest relay of an emergency stop of this slice."""
    rows = session.scalars(
        select(EStopRelay).where(EStopRelay.slice_id == slice_id).order_by(EStopRelay.id)
    )
    return {
        r.request_id: {
            "state": r.state.value,
            "direction": r.direction.value,
            "attempts": r.attempts,
            "last_error": r.last_error or None,
            "delivered_at": r.delivered_at.isoformat() if r.delivered_at else None,
            "next_attempt_at": (
                r.next_attempt_at.isoformat() if r.state is RelayState.PENDING else None
            ),
        }
        for r in rows
    }


# -- receiving ----------------------------------------------------------------------------


def checked_body(body: Any) -> tuple[str, str]:
    """The reason and who stopped it at the peer, or 422 naming each field."""
    if not isinstance(body, dict):
        raise InvalidInput([FieldError("body", 'the body is {"reason": …, "by": …}')])
    extra = sorted(set(body) - {"reason", "by"})
    problems = [FieldError(k, "not a field of this message") for k in extra]
    reason, by = body.get("reason"), body.get("by")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > 500:
        problems.append(FieldError("reason", "1 to 500 characters: why it was stopped"))
    elif not reason.isprintable():
        problems.append(FieldError("reason", "printable characters only"))
    if not isinstance(by, str) or not by.strip() or len(by) > 128 or not by.isprintable():
        problems.append(FieldError("by", "1 to 128 printable characters: who stopped it"))
    if problems:
        raise InvalidInput(problems)
    assert isinstance(reason, str) and isinstance(by, str)
    return reason.strip(), by.strip()


@dataclass
class Received:
    slice_id: int
    slice_name: str
    project: str | None
    stopped: bool  # False: it was not running (already shut down, ended, not committed)
    answer: dict[str, Any]


def stop_guest(
    ctx: Context, tk: Toolkit, peer: FederationPeer, request_id: str, body: Any,
    who: Principal,
) -> Received:  # fmt: skip
    """This facility is the visited one: the home facility `peer` stopped its slice and
    asks us to stop its part here (its guest booking `request_id`)."""
    reason, by = checked_body(body)
    with transaction(ctx.read_sessions) as s:
        booking = guests.get(s, peer, request_id)  # 404 unless it is this peer's
        slice_id = booking.slice_id
    text = f"emergency stop at peer {peer.name} by {by}: {reason}"
    stopped = _stop_here(ctx, tk, slice_id, who, text)
    with transaction(ctx.read_sessions) as s:
        booking = guests.get(s, peer, request_id)
        answer = guests.describe(s, booking) | {"stopped": stopped}
        sl = s.get(Slice, slice_id)
        assert sl is not None
        return Received(sl.id, sl.name, sl.project, stopped, answer)


def stop_home(
    ctx: Context, tk: Toolkit, peer: FederationPeer, request_id: str, body: Any,
    who: Principal,
) -> Received:  # fmt: skip
    """This facility is the home one: `peer` stopped our part there (remote part
    `request_id`); the slice's part here is stopped too."""
    reason, by = checked_body(body)
    now = ctx.now()
    with transaction(ctx.sessions) as s:
        part = s.scalar(
            select(RemotePart).where(
                RemotePart.peer == peer.name, RemotePart.request_id == request_id
            )
        )
        if part is None or not guests.REQUEST_ID.match(request_id):
            raise NotFound(f"no part of a slice here at {peer.name!r} with request id "
                           f"{request_id[:64]!r}")  # fmt: skip
        last = json.loads(part.answer or "{}")
        there = dict(last.get("slice") or {})
        there["status"] = "shutdown"
        part.answer = json.dumps(
            last | {"slice": there, "estop": {"at": now.isoformat(), "by": by, "reason": reason}}
        )
        slice_id = part.slice_id
    text = f"its part at peer {peer.name} was emergency-stopped by {by}: {reason}"
    stopped = _stop_here(ctx, tk, slice_id, who, text)
    with transaction(ctx.read_sessions) as s:
        sl = s.get(Slice, slice_id)
        assert sl is not None
        answer = {
            "version": API_VERSION,
            "request_id": request_id,
            "stopped": stopped,
            "slice": {"name": sl.name, "status": sl.status.value},
        }
        return Received(sl.id, sl.name, sl.project, stopped, answer)


def _stop_here(ctx: Context, tk: Toolkit, slice_id: int, who: Principal, text: str) -> bool:
    """Stop the slice if it runs (or is booked); a slice already shut down or over is
    left as it is (the call is idempotent)."""
    with transaction(ctx.read_sessions) as s:
        sl = s.get(Slice, slice_id)
        if sl is None or sl.status not in estop.STOPPABLE:
            return False
    try:
        estop.stop(ctx, tk, estop.Selector(slice=str(slice_id)), who, text[:500])
    except Conflict:  # stopped by someone else a moment ago
        return False
    return True
