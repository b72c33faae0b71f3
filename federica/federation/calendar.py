"""What a peer may learn of this facility's calendar: what is free over a window and the
earliest window a request fits, both bounded by the PoPs its agreement shows.

A peer never sees the hosts or links of a PoP its agreement hides, and a request it asks
about may pin nodes only to the PoPs it may see (every node pinned: a peer books where it
chose, never where this facility would have put it).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from federica.config import Settings
from federica.errors import FieldError, InvalidInput
from federica.federation.agreement import API_VERSION
from federica.federation.models import FederationPeer
from federica.slices import availability, service, windows
from federica.slices.calendar import Interval
from federica.slices.request import parse_instant

# The longest window a peer may ask about at once (the calendar index's work is linear in it).
MAX_WINDOW = dt.timedelta(days=31)


def window_of(
    start: str | None, end: str | None, *, now: dt.datetime, settings: Settings
) -> Interval:
    """The window a peer asks about, from its query: both ends required, UTC-aware, the
    start not in the past (now is taken), within the booking horizon."""
    errors: list[FieldError] = []
    parsed: dict[str, dt.datetime] = {}
    for field, raw in (("start", start), ("end", end)):
        if raw is None:
            errors.append(FieldError(field, "required: an ISO 8601 time with a zone"))
            continue
        try:
            parsed[field] = parse_instant(raw)
        except ValueError as exc:
            errors.append(FieldError(field, str(exc)))
    if errors:
        raise InvalidInput(errors)
    lo, hi = max(parsed["start"], now), parsed["end"]
    horizon = now + dt.timedelta(days=settings.booking_horizon_days)
    if hi <= lo:
        raise InvalidInput([FieldError("end", "must be after start (and after now)")])
    if hi - lo > MAX_WINDOW:
        raise InvalidInput([FieldError("end", f"a window is at most {MAX_WINDOW.days} days")])
    if hi > horizon:
        raise InvalidInput(
            [FieldError("end", f"beyond the booking horizon ({horizon:%Y-%m-%d %H:%M} UTC)")]
        )
    return Interval(lo, hi)


def free_over(session: Session, peer: FederationPeer, window: Interval) -> dict[str, Any]:
    """Per PoP the peer may see: each V-node host's free CPU and RAM at the busiest
    instant of the window (0 under maintenance, with why), and the links between them."""
    shown = peer.pop_names
    seen = availability.over(session, window)
    visible = {h.pop for h in seen.hosts} | {lk.a_pop for lk in seen.links}
    if shown is not None:
        visible &= set(shown)
    pops: dict[str, list[dict[str, Any]]] = {name: [] for name in sorted(visible)}
    for h in seen.hosts:
        if h.pop in pops:
            pops[h.pop].append(
                {
                    "host": h.name,
                    "cpu_cores": h.cpu,
                    "cpu_free": h.cpu_free,
                    "ram_mb": h.ram_mb,
                    "ram_free_mb": h.ram_free_mb,
                    "blocked": h.blocked,
                }
            )
    links = [
        {
            "a_pop": lk.a_pop,
            "b_pop": lk.b_pop,
            "capacity_mbps": lk.capacity_mbps,
            "free_mbps": lk.free_mbps,
            "blocked": lk.blocked,
        }
        for lk in seen.links
        if lk.a_pop in pops and lk.b_pop in pops and lk.a_pop != lk.b_pop
    ]
    return {
        "version": API_VERSION,
        "peer": peer.name,
        "start": window.start.isoformat(),
        "end": window.end.isoformat(),
        "pops": [
            {
                "name": name,
                "hosts": hosts,
                "cpu_free": sum(h["cpu_free"] for h in hosts),
                "ram_free_mb": sum(h["ram_free_mb"] for h in hosts),
            }
            for name, hosts in pops.items()
        ],
        "links": links,
    }


def check_pins(session: Session, peer: FederationPeer, document: Any) -> None:
    """Every node of a peer's request pinned to a PoP its agreement shows (the request's
    other checks are the booking's own)."""
    nodes = document.get("nodes") if isinstance(document, dict) else None
    if not isinstance(nodes, list):
        return  # parse_request names what is wrong with the document itself
    shown = peer.pop_names
    errors = []
    for i, node in enumerate(nodes):
        pop = node.get("pop") if isinstance(node, dict) else None
        if not isinstance(pop, str):
            errors.append(FieldError(f"nodes[{i}].pop", "a peer's request pins every node"))
        elif shown is not None and pop not in shown:
            errors.append(
                FieldError(f"nodes[{i}].pop", f"the agreement with {peer.name!r} shows no {pop!r}")
            )
    if errors:
        raise InvalidInput(errors)


def find_slot(
    session: Session,
    settings: Settings,
    peer: FederationPeer,
    document: Any,
    *,
    now: dt.datetime,
    after: dt.datetime | None,
) -> dict[str, Any]:
    """The earliest window of the request's length (at or after `after`) it fits in;
    books nothing."""
    check_pins(session, peer, document)
    slot = windows.find_slot(
        session, settings, document, now=now, after=after, embedder=service.DEFAULT_EMBEDDER
    )
    return {
        "version": API_VERSION,
        "peer": peer.name,
        "start": slot.window.start.isoformat(),
        "end": slot.window.end.isoformat(),
    }
