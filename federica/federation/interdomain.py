"""Circuits across the border: one circuit of a slice from a node here to a node at a
peer, stitched at the border port facing that peer.

Home side (this facility books the slice; remote.py calls in here):
1. the circuit is split in two parts, each from its node to its side's border port;
2. a dry run here says which border tags this side's part could use (`offer_for`);
3. the peer holds its part with those tags offered (`POST /federation/v1/stitched-bookings`)
   and answers the tag it chose from the intersection with what it has free, or refuses
   (409) naming its border port and the tags it had free;
4. this side books its part with exactly that tag, then commits at the peer (remote.py's
   two phases, one window, one hold timeout).

Visited side (`hold_stitched`): a hold as guests.hold does, its circuits' border ends
embedded by the stitching embedder (stitching.py), the border ports being ones that face
the calling peer.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.config import Settings
from federica.db import transaction
from federica.errors import FieldError, InvalidInput
from federica.federation import guests, identity
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import (
    FederationPeer,
    GuestBooking,
    GuestState,
    RemotePart,
)
from federica.federation.stitching import (
    BorderEnd,
    NoCommonTag,
    StitchingEmbedder,
    border_of,
    format_tags,
    free_at,
    parse_tags,
    tags_of,
)
from federica.slices.calendar import Interval
from federica.slices.embed import Embedding
from federica.slices.index import CalendarIndex, index_for
from federica.slices.models import Slice
from federica.slices.request import parse_instant
from federica.substrate.models import BorderPort, Device, PeerFacility, Port

_BORDER_KEYS = {"circuit", "node", "port", "vlans", "bandwidth_mbps"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
MAX_BORDERS = 16


@dataclass(frozen=True)
class Cross:
    """A circuit of the request across the border (from split())."""

    index: int  # its position in the request's circuits
    name: str
    bandwidth_mbps: int
    local: str  # its node here
    peer: str
    remote: str  # its node at the peer


def window_of(document: Mapping[str, Any]) -> Interval:
    """The explicit window a federated request carries (start and end instants)."""
    window = document.get("window")
    try:
        assert isinstance(window, dict)
        return Interval(parse_instant(str(window["start"])), parse_instant(str(window["end"])))
    except (AssertionError, KeyError, ValueError):
        raise InvalidInput(
            [FieldError("request.window", "start and end instants (ISO 8601 with a zone)")]
        ) from None


# -- the visited side ------------------------------------------------------------------


def parse_borders(raw: Any, document: Any) -> list[BorderEnd]:
    if not isinstance(raw, list) or not 1 <= len(raw) <= MAX_BORDERS:
        raise InvalidInput([FieldError("borders", f"a list of 1 to {MAX_BORDERS} border ends")])
    nodes = document.get("nodes") if isinstance(document, dict) else None
    names = (
        {n.get("name") for n in nodes if isinstance(n, dict)} if isinstance(nodes, list) else set()
    )
    circuits = document.get("circuits") if isinstance(document, dict) else None
    taken = {c.get("name") for c in circuits or [] if isinstance(c, dict)}
    errors: list[FieldError] = []
    ends: list[BorderEnd] = []
    for i, b in enumerate(raw):
        at = f"borders[{i}]"
        if not isinstance(b, dict):
            errors.append(FieldError(at, "an object with circuit, node, port, vlans"))
            continue
        errors += [FieldError(f"{at}.{k}", "unknown field") for k in sorted(set(b) - _BORDER_KEYS)]
        circuit, node, port = b.get("circuit"), b.get("node"), b.get("port")
        if not isinstance(circuit, str) or not _NAME.match(circuit) or circuit in taken:
            errors.append(FieldError(f"{at}.circuit", "a circuit name not used in the request"))
        if node not in names:
            errors.append(FieldError(f"{at}.node", "a node of the request"))
        if not isinstance(port, str) or ":" not in port or len(port) > 200:
            errors.append(FieldError(f"{at}.port", "this facility's border port, DEVICE:PORT"))
        bw = b.get("bandwidth_mbps", 100)
        if not isinstance(bw, int) or isinstance(bw, bool) or not 1 <= bw <= 100_000:
            errors.append(FieldError(f"{at}.bandwidth_mbps", "1 to 100000"))
        try:
            tags = parse_tags(b.get("vlans"), f"{at}.vlans")
        except InvalidInput as exc:
            errors += exc.errors
            continue
        if errors:
            continue
        assert isinstance(circuit, str) and isinstance(port, str) and isinstance(node, str)
        taken.add(circuit)
        device, _, port_name = port.partition(":")
        ends.append(BorderEnd(circuit, node, device, port_name, bw, tags))
    if errors:
        raise InvalidInput(errors)
    return ends


def hold_stitched(
    session: Session,
    settings: Settings,
    peer: FederationPeer,
    body: Any,
    *,
    audience: str,
    now: dt.datetime,
) -> tuple[guests.Held, list[dict[str, Any]]]:
    """Phase one of a stitched booking: like guests.hold, its `borders` continued to the
    border ports facing the peer, each with a tag the peer offered (and free here)."""
    if not isinstance(body, dict):
        raise InvalidInput([FieldError("", "a JSON object with request_id, assertion, request")])
    rest = {k: v for k, v in body.items() if k != "borders"}
    ends = parse_borders(body.get("borders"), body.get("request"))
    document = rest.get("request")
    window = window_of(document if isinstance(document, dict) else {})
    embedder = StitchingEmbedder(index_for(session), window, ends, peer=peer.name)
    held = guests.hold(session, settings, peer, rest, audience=audience, now=now,
                       embedder=embedder)  # fmt: skip
    return held, border_tags(held.slice, ends)


def border_tags(sl: Slice, ends: Sequence[BorderEnd]) -> list[dict[str, Any]]:
    """Each border end as booked: the tag its circuit holds at the border port."""
    out = []
    for end in ends:
        circuit = next((c for c in sl.circuits if c.name == end.circuit), None)
        hops = json.loads(circuit.mapping) if circuit is not None else []
        vlan = next(
            (h["vlan"] for h in hops if (h["device"], h["port"]) == (end.device, end.port)), None
        )
        out.append({"circuit": end.circuit, "node": end.node, "port": end.label, "vlan": vlan})
    return out


def describe(session: Session, booking: GuestBooking) -> dict[str, Any]:
    """guests.describe, with each circuit that ends at a border port and its tag there."""
    answer = guests.describe(session, booking)
    sl = session.get(Slice, booking.slice_id)
    assert sl is not None
    index = index_for(session)
    borders = set(index.substrate.borders) if index.substrate is not None else set()
    stitched = []
    for c in sl.circuits:
        for h in json.loads(c.mapping):
            if (h["device"], h["port"]) in borders:
                stitched.append(
                    {"circuit": c.name, "port": f"{h['device']}:{h['port']}", "vlan": h["vlan"],
                     "state": c.state.value}
                )  # fmt: skip
    answer["stitching"] = stitched
    answer["slice"]["failure_reason"] = sl.failure_reason
    return answer


# -- the home side ---------------------------------------------------------------------


def border_facing(session: Session, peer: FederationPeer) -> tuple[str, str] | None:
    """This facility's border port facing the peer and the peer's port on the other side
    (the agreement's `--border`), if both are known."""
    rows = session.execute(
        select(Device.name, Port.name)
        .select_from(BorderPort)
        .join(Port, BorderPort.port_id == Port.id)
        .join(Device, Port.device_id == Device.id)
        .join(PeerFacility, BorderPort.peer_id == PeerFacility.id)
        .where(PeerFacility.name == peer.name)
        .order_by(Device.name, Port.name)
    ).all()
    for device, port in rows:
        label = f"{device}:{port}"
        there = peer.border_map.get(label)
        if there:
            return label, there
    return None


def local_ends(
    session: Session, crosses: Sequence[Cross], peers: Mapping[str, FederationPeer]
) -> dict[str, tuple[BorderEnd, str]]:
    """Per circuit across the border: its end here and the peer's border port."""
    out: dict[str, tuple[BorderEnd, str]] = {}
    errors = []
    for c in crosses:
        found = border_facing(session, peers[c.peer])
        if found is None:
            errors.append(
                FieldError(
                    f"circuits[{c.index}].endpoints",
                    f"no border port here faces peer {c.peer!r} with its port on the other "
                    "side known (topology `peer:` and `peer update --border`)",
                )
            )
            continue
        here, there = found
        device, _, port = here.partition(":")
        out[c.name] = (BorderEnd(c.name, c.local, device, port, c.bandwidth_mbps), there)
    if errors:
        raise InvalidInput(errors)
    return out


def offer_for(
    index: CalendarIndex, window: Interval, emb: Embedding, end: BorderEnd
) -> frozenset[int]:
    """The border tags this side's part could use, from a dry run's route: free at the
    border port, and (unless the port translates) on every hop of the route here."""
    border = border_of(index, end.label)
    assert border is not None
    _bw, tags = free_at(index, border, window)
    if border.translate:
        return tags
    view = index.view(window)
    links = {lk.name: lk for lk in view.links}
    uplinks = {(h.device, h.port): h for h in view.hosts.values()}
    usable = set(tags)
    for hop in emb.circuits[end.circuit].hops:
        if hop.link is not None and hop.link in links:
            usable &= tags_of(links[hop.link].vlans_free)
        elif (hop.device, hop.port) in uplinks:
            usable &= tags_of(uplinks[(hop.device, hop.port)].uplink_vlans_free)
    if not usable:
        raise NoCommonTag(
            end.label, frozenset(), tags, f"circuits.{end.circuit}",
            "no tag free at this border port is free along the route here",
        )  # fmt: skip
    return frozenset(usable)


def peer_borders(
    crosses: Sequence[Cross], ends: Mapping[str, tuple[BorderEnd, str]],
    offers: Mapping[str, frozenset[int]], peer: str,
) -> list[dict[str, Any]]:  # fmt: skip
    return [
        {"circuit": c.name, "node": c.remote, "port": ends[c.name][1],
         "vlans": format_tags(offers[c.name]), "bandwidth_mbps": c.bandwidth_mbps}
        for c in crosses if c.peer == peer
    ]  # fmt: skip


def chosen_tags(answer: Mapping[str, Any]) -> dict[str, int]:
    """The tags the peer chose, per circuit (its hold's answer)."""
    out = {}
    for s in answer.get("stitching") or []:
        if isinstance(s, dict) and isinstance(s.get("vlan"), int):
            out[str(s.get("circuit"))] = int(s["vlan"])
    return out


# -- provisioning across the border (the home side's worker) ---------------------------

PART_ACTIVE_WITHIN_S = 300.0
POLL_EVERY_S = 0.1


def stitched_parts(session: Session, slice_id: int) -> list[RemotePart]:
    """The slice's parts at peers that a circuit across the border joins to it."""
    rows = session.scalars(
        select(RemotePart).where(
            RemotePart.slice_id == slice_id, RemotePart.state == GuestState.COMMITTED
        )
    )
    return [r for r in rows if json.loads(r.answer).get("stitching")]


def wait_for_parts(
    sessions: sessionmaker[Session], settings: Settings, slice_id: int,
    within_s: float = PART_ACTIVE_WITHIN_S,
) -> str | None:  # fmt: skip
    """Once this facility's part is built: wait until every stitched part at a peer is
    active (None), or say which failed, at which facility and hop, or did not come up."""
    with sessions() as s:
        rows = stitched_parts(s, slice_id)
        if not rows:
            return None
        facility = identity.load(settings.data_dir)
        asks = []
        for row in rows:
            found = s.scalar(select(FederationPeer).where(FederationPeer.name == row.peer))
            if found is None:
                return f"peer {row.peer!r} is no longer a peer; its part cannot be checked"
            client = PeerClient(found.url, found.ca_pem, facility.files.client_cert,
                                facility.files.client_key)  # fmt: skip
            asks.append((row.peer, row.request_id, client))
    deadline = time.monotonic() + within_s
    waiting = list(asks)
    last: dict[str, str] = {}
    while waiting:
        for peer, request_id, client in list(waiting):
            try:
                answer = client.get(f"/federation/v1/stitched-bookings/{request_id}")
            except PeerError as exc:
                last[peer] = str(exc)
                continue
            _keep(sessions, request_id, answer)
            status = (answer.get("slice") or {}).get("status")
            if answer.get("state") == GuestState.ABORTED.value:
                return f"the part at {peer} was released there"
            if status == "active":
                waiting.remove((peer, request_id, client))
            elif status in ("failed", "ended", "cancelled"):
                return f"the part at {peer} {status}: {_failed_hop(answer)}"
            else:
                last[peer] = f"its slice is {status}"
        if waiting and time.monotonic() > deadline:
            late = ", ".join(f"{p} ({last.get(p, 'no answer')})" for p, _r, _c in waiting)
            return f"the part at {late} was not active within {within_s:.0f} s"
        if waiting:
            time.sleep(POLL_EVERY_S)
    return None


def _failed_hop(answer: Mapping[str, Any]) -> str:
    sl = answer.get("slice") or {}
    why = str(sl.get("failure_reason") or answer.get("failure_reason") or "no reason given")
    bad = [s for s in answer.get("stitching") or [] if s.get("state") == "failed"]
    hop = f" (border circuit {bad[0]['circuit']} at {bad[0]['port']})" if bad else ""
    return why + hop


def _keep(sessions: sessionmaker[Session], request_id: str, answer: dict[str, Any]) -> None:
    with transaction(sessions) as s:
        row = s.scalar(select(RemotePart).where(RemotePart.request_id == request_id))
        if row is not None:
            row.answer = json.dumps(answer)


def abort_parts(sessions: sessionmaker[Session], settings: Settings, slice_id: int) -> list[str]:
    """This facility's part failed (or a peer's did): the stitched parts at the peers are
    released there (their facilities tear them down). Returns what could not be."""
    with sessions() as s:
        rows = [(r.peer, r.request_id) for r in stitched_parts(s, slice_id)]
        if not rows:
            return []
        facility = identity.load(settings.data_dir)
        peers = {p.name: p for p in s.scalars(select(FederationPeer))}
    problems = []
    for name, request_id in rows:
        peer = peers.get(name)
        if peer is None:
            problems.append(f"{name}: no longer a peer")
            continue
        client = PeerClient(peer.url, peer.ca_pem, facility.files.client_cert,
                            facility.files.client_key)  # fmt: skip
        try:
            answer = client.abort(request_id)
        except PeerError as exc:
            problems.append(f"{name}: {exc}")
            continue
        with transaction(sessions) as s:
            row = s.scalar(select(RemotePart).where(RemotePart.request_id == request_id))
            if row is not None:
                row.state, row.answer = GuestState.ABORTED, json.dumps(answer)
    return problems
