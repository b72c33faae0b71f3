"""Fault information a peer may see (operation `monitoring`): the open alarms on the
border ports that face it, and those touching its guests' slices here — each guest slice
named by the peer's own request id, so the peer can tell which of its slices it is. Other
projects' slices are never shown.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.alarms import service as alarms
from federica.federation.agreement import API_VERSION
from federica.federation.guests import guest_project
from federica.federation.models import FederationPeer, GuestBooking
from federica.substrate.models import BorderPort, Device, PeerFacility, Port


def border_ports(session: Session, peer: FederationPeer) -> set[str]:
    rows = session.execute(
        select(Device.name, Port.name)
        .join(Port, Port.device_id == Device.id)
        .join(BorderPort, BorderPort.port_id == Port.id)
        .join(PeerFacility, BorderPort.peer_id == PeerFacility.id)
        .where(PeerFacility.name == peer.name)
    )
    return {f"{device}:{port}" for device, port in rows}


def for_peer(session: Session, peer: FederationPeer) -> dict[str, Any]:
    borders = border_ports(session, peer)
    guest = guest_project(peer)
    requests = dict(
        session.execute(
            select(GuestBooking.slice_id, GuestBooking.request_id).where(
                GuestBooking.peer == peer.name
            )
        ).all()
    )
    shown = []
    for alarm in alarms.listing(session):
        touched = [s for s in json.loads(alarm.slices) if s.get("project") == guest]
        on_border = alarm.subject in borders
        if not on_border and not touched:
            continue
        shown.append(
            {
                "kind": alarm.kind,
                "subject": alarm.subject,
                "detail": alarm.detail,
                "raised_at": alarm.raised_at.isoformat(),
                "border": on_border,
                "slices": [
                    {"name": s["name"], "request_id": requests.get(s["id"])} for s in touched
                ],
            }
        )
    return {"version": API_VERSION, "peer": peer.name, "alarms": shown}
