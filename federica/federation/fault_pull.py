"""Peers' alarms, kept here as this facility's own (kind `peer-alarm`): the leading worker
asks each peer for the alarms it shows us (`GET /federation/v1/alarms`) every
`peer_alarms_every_s`, opens one alarm here per alarm there, naming the peer, what it is
on and the local slices it affects, and clears ours when the peer's clears.

A slice here is affected by a peer's alarm when the alarm names its part at the peer (our
request id), or, for an alarm on a border port facing us, when the slice has a part at
that peer (the border link joins its two halves) or holds our side of that border.
A peer that cannot be asked leaves its alarms here as they were (and is logged).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.alarms import service as alarms
from federica.alarms.evaluate import Kind
from federica.alarms.models import Alarm
from federica.config import Settings
from federica.db import transaction
from federica.federation import faults, identity
from federica.federation.agreement import Operation
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import FederationPeer, GuestState, RemotePart
from federica.slices.lifecycle import HOLDING
from federica.slices.models import Reservation, Slice
from federica.substrate.models import Device, Port

log = logging.getLogger(__name__)


class Context(Protocol):
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]

    def now(self) -> dt.datetime: ...


def subject_of(peer: str, alarm: dict[str, Any]) -> str:
    """Ours for the peer's alarm: one per peer, kind and subject there."""
    return f"{peer}:{alarm.get('kind', '')}:{alarm.get('subject', '')}"[:160]


def pull_all(ctx: Context) -> dict[str, str]:
    """Ask every peer; per peer, how many of its alarms are open here now, or why it
    could not be asked."""
    with transaction(ctx.read_sessions) as s:
        names = [
            p.name
            for p in s.scalars(select(FederationPeer).order_by(FederationPeer.name))
            if Operation.MONITORING in p.operations
        ]
    out: dict[str, str] = {}
    for name in names:
        try:
            out[name] = f"{pull(ctx, name)} open"
        except (PeerError, identity.NoIdentity) as exc:
            log.warning("peer %s's alarms could not be read: %s", name, exc)
            out[name] = f"not asked: {exc}"
    return out


def pull(ctx: Context, peer_name: str) -> int:
    """The peer's alarms now, mirrored here; returns how many are open."""
    facility = identity.load(ctx.settings.data_dir)
    with transaction(ctx.read_sessions) as s:
        peer = s.scalar(select(FederationPeer).where(FederationPeer.name == peer_name))
        if peer is None:
            return 0
        files = facility.files
        client = PeerClient(peer.url, peer.ca_pem, files.client_cert, files.client_key)
    answer = client.alarms()
    now = ctx.now()
    with transaction(ctx.sessions) as s:
        peer = s.scalar(select(FederationPeer).where(FederationPeer.name == peer_name))
        if peer is None:  # removed while we asked
            return 0
        by_request, with_parts = _parts_at(s, peer_name)
        at_border = _holding_border(s, peer, now)
        seen = set()
        for alarm in answer.get("alarms", []):
            if not isinstance(alarm, dict):
                continue
            subject = subject_of(peer_name, alarm)
            seen.add(subject)
            named = [
                by_request[x["request_id"]]
                for x in alarm.get("slices", [])
                if isinstance(x, dict) and x.get("request_id") in by_request
            ]
            border = bool(alarm.get("border"))
            touched = {x["id"]: x for x in named + (with_parts + at_border if border else [])}
            where = "its border port facing us " if border else ""
            alarms.raise_service_alarm(
                s, Kind.PEER_ALARM, subject, now=now,
                detail=(f"at peer {peer_name}: {alarm.get('kind')} on {where}"
                        f"{alarm.get('subject')} (raised there "
                        f"{alarm.get('raised_at')}): {alarm.get('detail', '')}"),
                slices=sorted(touched.values(), key=lambda x: (x["name"], x["id"])),
            )  # fmt: skip
        for row in s.scalars(
            select(Alarm).where(
                Alarm.kind == Kind.PEER_ALARM.value,
                Alarm.cleared_at.is_(None),
                Alarm.subject.startswith(f"{peer_name}:", autoescape=True),
            )
        ):
            if row.subject not in seen:
                row.cleared_at = now
    return len(seen)


def _parts_at(
    session: Session, peer_name: str
) -> tuple[dict[str, dict[str, Any]], list[dict[str, Any]]]:
    """Our request ids at the peer -> their local slices; and the live slices with a part
    there."""
    rows = session.execute(
        select(RemotePart.request_id, RemotePart.state, Slice.id, Slice.name, Slice.project,
               Slice.status)
        .join(Slice, Slice.id == RemotePart.slice_id)
        .where(RemotePart.peer == peer_name)
    ).all()  # fmt: skip
    by_request = {}
    live = []
    for request_id, state, sid, name, project, status in rows:
        ref = {"id": sid, "name": name, "project": project}
        by_request[request_id] = ref
        if state is not GuestState.ABORTED and status in HOLDING:
            live.append(ref)
    return by_request, live


def _holding_border(session: Session, peer: FederationPeer, now: dt.datetime) -> list[Any]:
    """The slices holding our side of a border port facing the peer now."""
    ports = faults.border_ports(session, peer)
    if not ports:
        return []
    ids = []
    for spec in ports:
        device, _, port = spec.partition(":")
        ids += list(
            session.scalars(
                select(Port.id).join(Device).where(Device.name == device, Port.name == port)
            )
        )
    rows = session.execute(
        select(Slice.id, Slice.name, Slice.project)
        .join(Reservation, Reservation.slice_id == Slice.id)
        .where(
            Slice.status.in_([s.value for s in HOLDING]),
            Reservation.start <= now,
            Reservation.end > now,
            Reservation.port_id.in_(ids),
        )
        .distinct()
    )
    return [{"id": i, "name": n, "project": p} for i, n, p in rows]
