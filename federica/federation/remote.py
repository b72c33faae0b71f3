"""Booking across facilities (this facility is the home one): a slice whose nodes are
pinned to a peer's PoPs (`pop: beta/TYO`) is booked here for its local nodes and at each
peer for that peer's, in two phases.

1. The window is resolved once, so every facility books the same one.
2. Each peer holds its part (the user's identity in an assertion this facility signs),
   without this facility's calendar lock held over the network.
3. The local part is booked, with a record of each remote part, in one transaction.
4. Each peer commits its part. If any step fails, the holds are aborted (a hold that
   cannot be aborted times out at the peer) and the local part released.

A circuit between a local node and a peer's crosses the border: it is stitched at the
border port facing that peer (interdomain.py): the peer's hold is offered the border
tags this side can use and answers the one it chose.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from federica.aaa.policy import Principal
from federica.config import Settings
from federica.db import transaction
from federica.errors import FedericaError, FieldError, Forbidden, InvalidInput
from federica.failpoints import BETWEEN_HOLD_AND_COMMIT
from federica.failpoints import hit as failpoint
from federica.federation import assertion as assertions
from federica.federation import identity, interdomain, peers
from federica.federation.agreement import Operation
from federica.federation.client import PeerClient, PeerError
from federica.federation.models import FederationPeer, GuestState, RemotePart
from federica.federation.stitching import BorderEnd, StitchingEmbedder
from federica.slices import service
from federica.slices.embed import Embedder
from federica.slices.index import index_for
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.slices.request import load_document, parse_request

log = logging.getLogger(__name__)
# The peers' hold timeout is Settings.federation_hold_s (120 s by default, as in
# OpenNSA): long enough for the local booking on a busy controller; a hold not committed
# is released by the peer when it runs out.


@dataclass
class Split:
    local: dict[str, Any]
    # peer name -> its part of the request (pins without the peer's prefix)
    remote: dict[str, dict[str, Any]] = field(default_factory=dict)
    # circuits across the border (between a node here and one at a peer): interdomain.py
    cross: list[interdomain.Cross] = field(default_factory=list)


def pinned_remote(document: Any) -> bool:
    """Does the request pin a node to a peer's PoP (`peer/POP`)?"""
    nodes = document.get("nodes") if isinstance(document, dict) else None
    return isinstance(nodes, list) and any(
        isinstance(n, dict) and isinstance(n.get("pop"), str) and "/" in n["pop"] for n in nodes
    )


def split(document: dict[str, Any]) -> Split:
    nodes = document.get("nodes")
    assert isinstance(nodes, list)
    side: dict[str, str] = {}  # node name -> "" (here) or the peer's name
    local_nodes: list[Any] = []
    remote_nodes: dict[str, list[Any]] = {}
    errors: list[FieldError] = []
    for i, node in enumerate(nodes):
        pop = node.get("pop") if isinstance(node, dict) else None
        if isinstance(pop, str) and "/" in pop:
            peer, _, remote_pop = pop.partition("/")
            if not identity.NAME.match(peer) or not remote_pop or "/" in remote_pop:
                errors.append(FieldError(f"nodes[{i}].pop", "a peer's PoP is PEER/POP"))
                continue
            remote_nodes.setdefault(peer, []).append(dict(node, pop=remote_pop))
            side[str(node.get("name"))] = peer
        else:
            local_nodes.append(node)
            if isinstance(node, dict):
                side[str(node.get("name"))] = ""
    local_circuits: list[Any] = []
    remote_circuits: dict[str, list[Any]] = {}
    cross: list[interdomain.Cross] = []
    for i, circuit in enumerate(document.get("circuits") or []):
        ends = circuit.get("endpoints") if isinstance(circuit, dict) else None
        where = {side.get(str(e), "") for e in ends} if isinstance(ends, list) else {""}
        if len(where) > 1:
            crossing = _cross(i, circuit, side)
            if crossing is None:
                errors.append(
                    FieldError(
                        f"circuits[{i}].endpoints",
                        "a circuit across the border joins two nodes: one here, one at a peer",
                    )
                )
            else:
                cross.append(crossing)
            continue
        (at,) = where
        (remote_circuits.setdefault(at, []) if at else local_circuits).append(circuit)
    if not local_nodes:
        errors.append(FieldError("nodes", "at least one node here (the slice's home part)"))
    if errors:
        raise InvalidInput(errors)
    local = dict(document, nodes=local_nodes, circuits=local_circuits)
    out = Split(local, cross=cross)
    for peer, its_nodes in remote_nodes.items():
        out.remote[peer] = {
            "name": document.get("name"),
            "description": document.get("description", ""),
            "nodes": its_nodes,
            "circuits": remote_circuits.get(peer, []),
        }
    return out


def _cross(i: int, circuit: dict[str, Any], side: dict[str, str]) -> interdomain.Cross | None:
    ends = circuit.get("endpoints")
    name, bw = circuit.get("name"), circuit.get("bandwidth_mbps", 100)
    if not (isinstance(ends, list) and len(ends) == 2 and isinstance(name, str)):
        return None
    if not isinstance(bw, int) or isinstance(bw, bool):
        return None
    here = [str(e) for e in ends if side.get(str(e)) == ""]
    there = [str(e) for e in ends if side.get(str(e))]
    if len(here) != 1 or len(there) != 1:
        return None
    return interdomain.Cross(i, name, bw, here[0], side[there[0]], there[0])


def _client(facility: identity.Facility, peer: FederationPeer) -> PeerClient:
    files = facility.files
    return PeerClient(peer.url, peer.ca_pem, files.client_cert, files.client_key)


@dataclass
class Part:
    peer: str
    client: PeerClient
    audience: str  # the peer's facility URN (its advertisement says it)
    request_id: str
    request: dict[str, Any]
    answer: dict[str, Any] = field(default_factory=dict)
    # circuits across the border ending at this peer (its hold is a stitched one)
    borders: list[dict[str, Any]] = field(default_factory=list)

    def call(self, what: str, fn: Callable[[PeerClient], dict[str, Any]]) -> dict[str, Any]:
        try:
            return fn(self.client)
        except PeerError as exc:
            raise refused(f"{what} at peer {self.peer!r}: {exc}", exc.http_status,
                          _border_fields(self.peer, exc.problem)) from None  # fmt: skip


class PeerRefused(FedericaError):
    """A peer could not be asked its part (502)."""

    status = 502
    title = "A peer refused its part"
    type_slug = "peer-refused"


class PeerSaidNo(PeerRefused):
    """A peer refused its part: the request cannot be booked there as it is (the peer
    said why)."""

    status = 409


def refused(
    detail: str, peer_status: int | None, extra: dict[str, Any] | None = None
) -> PeerRefused:
    if peer_status is not None and 400 <= peer_status < 500:
        return PeerSaidNo(detail, **(extra or {}))
    return PeerRefused(detail)


def _border_fields(peer: str, problem: dict[str, Any]) -> dict[str, Any]:
    """A peer's refusal of a border tag: its hop and tags, passed on to the researcher."""
    if "hop" not in problem:
        return {}
    return {
        "facility": peer,
        "hop": f"{peer}:{problem.get('hop')}",
        "offered": problem.get("offered", ""),
        "free": problem.get("free", ""),
    }


def book_across(
    sessions: sessionmaker[Session],
    settings: Settings,
    raw: Any,
    *,
    now: Callable[[], dt.datetime],
    actor: Principal,
) -> tuple[service.Booked, list[dict[str, Any]]]:
    """Books the slice here and at the peers its nodes are pinned to; returns the local
    booking and each peer's answer."""
    document = load_document(raw) if isinstance(raw, str | bytes) else raw
    if not isinstance(document, dict) or not pinned_remote(document):
        raise InvalidInput([FieldError("nodes", "no node is pinned to a peer's PoP")])
    if not assertions.USERNAME.match(actor.username):
        raise Forbidden("booking at a peer needs a signed-in user (the peer is told who)")
    facility = identity.load(settings.data_dir)
    parts_of = split(document)
    # One window for every facility: resolved here, sent as explicit instants.
    _req, window = parse_request(
        parts_of.local, now=now(), max_duration=dt.timedelta(days=settings.max_slice_days)
    )
    span = {"start": window.start.isoformat(), "end": window.end.isoformat()}
    parts = _parts(sessions, parts_of, span, facility)
    embedder: StitchingEmbedder | None = None
    ends: dict[str, tuple[BorderEnd, str]] = {}
    if parts_of.cross:
        ends, offers = _offers(sessions, settings, parts_of, span, now, actor)
        for part in parts:
            part.borders = interdomain.peer_borders(parts_of.cross, ends, offers, part.peer)
    keys = list(document.get("ssh_keys") or [])
    hold_s = settings.federation_hold_s
    held: list[Part] = []
    try:
        for part in parts:
            token = assertions.sign(
                facility,
                username=actor.username,
                projects=sorted(actor.projects),
                attributes={"ssh_keys": keys},
                audience=part.audience,
                now=now(),
            )
            if part.borders:
                part.answer = part.call(
                    "hold", partial(PeerClient.hold_stitched, request_id=part.request_id,
                                    assertion=token, request=part.request,
                                    hold_seconds=hold_s, borders=part.borders)
                )  # fmt: skip
            else:
                part.answer = part.call(
                    "hold", partial(PeerClient.hold, request_id=part.request_id, assertion=token,
                                    request=part.request, hold_seconds=hold_s)
                )  # fmt: skip
            held.append(part)
        if ends:
            embedder = _stitched(sessions, ends, held, span)
        booked = _book_local(
            sessions, settings, dict(parts_of.local, window=span), now, actor, held, embedder
        )
    except BaseException:
        _abort(held)
        raise
    assert booked.slice is not None
    failpoint(BETWEEN_HOLD_AND_COMMIT)  # a testing aid: failpoints.py
    try:
        for part in held:
            stitching = part.answer.get("stitching")
            part.answer = part.call(
                "commit", partial(PeerClient.commit, request_id=part.request_id)
            )
            if stitching:  # the border circuits' tags, as the hold answered them
                part.answer["stitching"] = stitching
    except PeerRefused:
        _abort(held)
        with transaction(sessions) as s:
            sl = s.get(Slice, booked.slice.id)
            if sl is not None:
                service.release(s, sl, now=now(), reason="a peer did not commit its part")
            _mark(s, held, GuestState.ABORTED)
        raise
    with transaction(sessions) as s:
        _mark(s, held, GuestState.COMMITTED)
    return booked, [describe_part(p.peer, p.request_id, p.answer) for p in held]


def describe_part(peer: str, request_id: str, answer: dict[str, Any]) -> dict[str, Any]:
    return (
        {"peer": peer, "request_id": request_id}
        | {k: answer.get(k) for k in ("state", "hold_until", "user", "slice")}
        | ({"stitching": answer["stitching"]} if answer.get("stitching") else {})
    )


def _parts(
    sessions: sessionmaker[Session], split_of: Split, span: dict[str, str],
    facility: identity.Facility,
) -> list[Part]:  # fmt: skip
    out = []
    for name, request in sorted(split_of.remote.items()):
        with sessions() as s:
            peer = s.scalar(select(FederationPeer).where(FederationPeer.name == name))
            if peer is None:
                raise InvalidInput([FieldError("nodes", f"no peer {name!r} (pinned {name}/POP)")])
            if Operation.BOOKING not in peer.operations:
                raise Forbidden(f"the agreement with peer {name!r} does not grant booking")
            client = _client(facility, peer)
        part = Part(name, client, "", f"{facility.name}-{secrets.token_hex(12)}",
                    dict(request, window=span))  # fmt: skip
        ad = part.call("advertisement", PeerClient.advertisement)
        part.audience = str((ad.get("facility") or {}).get("urn", ""))
        out.append(part)
    return out


def _book_local(
    sessions: sessionmaker[Session], settings: Settings, local: dict[str, Any],
    now: Callable[[], dt.datetime], actor: Principal, held: list[Part],
    embedder: Embedder | None = None,
) -> service.Booked:  # fmt: skip
    with transaction(sessions) as s:
        booked = service.book(
            s, settings, local, now=now(), actor=actor,
            embedder=embedder or service.DEFAULT_EMBEDDER,
        )  # fmt: skip
        assert booked.slice is not None
        for part in held:
            s.add(
                RemotePart(
                    slice_id=booked.slice.id,
                    peer=part.peer,
                    request_id=part.request_id,
                    remote_slice=str((part.answer.get("slice") or {}).get("name", "")),
                    state=GuestState.HELD,
                    nodes=json.dumps([n.get("name") for n in part.request.get("nodes", [])]),
                    answer=json.dumps(part.answer),
                )
            )
        s.flush()
    return booked


def _offers(
    sessions: sessionmaker[Session], settings: Settings, parts_of: Split, span: dict[str, str],
    now: Callable[[], dt.datetime], actor: Principal,
) -> tuple[dict[str, tuple[BorderEnd, str]], dict[str, frozenset[int]]]:  # fmt: skip
    """Each border circuit's end here and the border tags this side could use (a dry run
    of the local part, nothing booked)."""
    with sessions() as s:
        names = {c.peer for c in parts_of.cross}
        rows = {
            p.name: p
            for p in s.scalars(select(FederationPeer).where(FederationPeer.name.in_(names)))
        }
        ends = interdomain.local_ends(s, parts_of.cross, rows)
        window = interdomain.window_of({"window": span})
        index = index_for(s)
        dry = StitchingEmbedder(index, window, [e for e, _ in ends.values()])
        booked = service.book(s, settings, dict(parts_of.local, window=span), now=now(),
                              actor=actor, dry_run=True, embedder=dry)  # fmt: skip
        offers = {
            name: interdomain.offer_for(index, window, booked.embedding, end)
            for name, (end, _there) in ends.items()
        }
        s.rollback()
    return ends, offers


def _stitched(
    sessions: sessionmaker[Session], ends: dict[str, tuple[BorderEnd, str]], held: list[Part],
    span: dict[str, str],
) -> StitchingEmbedder:  # fmt: skip
    """The local part's embedder: each border circuit with exactly the tag its peer
    chose."""
    chosen: dict[str, int] = {}
    for part in held:
        chosen |= interdomain.chosen_tags(part.answer)
    missing = sorted(set(ends) - set(chosen))
    if missing:
        raise PeerRefused(f"the peer answered no border tag for circuit(s) {missing}")
    with sessions() as s:
        index = index_for(s)
    fixed = [
        dataclasses.replace(end, allowed=frozenset({chosen[name]}))
        for name, (end, _there) in ends.items()
    ]
    return StitchingEmbedder(index, interdomain.window_of({"window": span}), fixed)


def _abort(held: list[Part]) -> None:
    """Best effort: a hold not aborted times out at the peer."""
    for part in held:
        try:
            part.client.abort(part.request_id)
        except PeerError as exc:
            log.warning("abort at peer %s of %s failed (its hold times out): %s",
                        part.peer, part.request_id, exc)  # fmt: skip


def _mark(session: Session, held: list[Part], state: GuestState) -> None:
    ids = [p.request_id for p in held]
    answers = {p.request_id: p.answer for p in held}
    for row in session.scalars(select(RemotePart).where(RemotePart.request_id.in_(ids))):
        row.state = state
        row.answer = json.dumps(answers[row.request_id])


def remote_parts(session: Session, slice_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(RemotePart).where(RemotePart.slice_id == slice_id).order_by(RemotePart.id)
    )
    return [
        describe_part(r.peer, r.request_id, json.loads(r.answer)) | {"state": r.state.value}
        for r in rows
    ]


def release_remote(
    sessions: sessionmaker[Session], settings: Settings, slice_id: int
) -> list[dict[str, Any]]:
    """The slice was released here: its parts at the peers are aborted (released) too."""
    with sessions() as s:
        rows = list(
            s.scalars(
                select(RemotePart).where(
                    RemotePart.slice_id == slice_id, RemotePart.state != GuestState.ABORTED
                )
            )
        )
        if not rows:
            return []  # the common case: nothing at a peer (and no identity needed)
        facility = identity.load(settings.data_dir)
        targets = []
        for row in rows:
            peer = s.scalar(select(FederationPeer).where(FederationPeer.name == row.peer))
            if peer is not None:
                targets.append((row.request_id, row.peer, _client(facility, peer)))
    out = []
    for request_id, name, client in targets:
        try:
            answer = client.abort(request_id)
        except PeerError as exc:
            log.warning("releasing %s at peer %s failed: %s", request_id, name, exc)
            continue
        with transaction(sessions) as s:
            done = s.scalar(select(RemotePart).where(RemotePart.request_id == request_id))
            if done is not None:
                done.state, done.answer = GuestState.ABORTED, json.dumps(answer)
        out.append(describe_part(name, request_id, answer))
    return out


def current_parts(
    sessions: sessionmaker[Session], settings: Settings, slice_id: int
) -> list[dict[str, Any]]:
    """Each remote part as its peer says now (kept as the last answer); a peer that
    cannot be asked: the last answer, with why."""
    with sessions() as s:
        rows = list(
            s.scalars(
                select(RemotePart).where(RemotePart.slice_id == slice_id).order_by(RemotePart.id)
            )
        )
        if not rows:
            return []
        facility = identity.load(settings.data_dir)
        asks = []
        for row in rows:
            peer = s.scalar(select(FederationPeer).where(FederationPeer.name == row.peer))
            client = _client(facility, peer) if peer is not None else None
            asks.append((row.request_id, row.peer, client, json.loads(row.answer)))
    out = []
    for request_id, name, client, last in asks:
        if client is None:
            out.append(describe_part(name, request_id, last) | {"error": "no longer a peer"})
            continue
        try:
            if last.get("stitching"):  # with its border circuits and their states
                answer = client.get(f"/federation/v1/stitched-bookings/{request_id}")
            else:
                answer = client.booking(request_id)
        except PeerError as exc:
            out.append(describe_part(name, request_id, last) | {"error": str(exc)})
            continue
        with transaction(sessions) as s:
            kept = s.scalar(select(RemotePart).where(RemotePart.request_id == request_id))
            if kept is not None:
                kept.answer = json.dumps(answer)
                if answer.get("state") in GuestState.__members__.values():
                    kept.state = GuestState(answer["state"])
        out.append(describe_part(name, request_id, answer))
    return out


def peer_alarms(
    sessions: sessionmaker[Session], settings: Settings, peer_name: str
) -> dict[str, Any]:
    """The peer's alarms for this facility, each guest slice there named by the local
    slice it is part of."""
    facility = identity.load(settings.data_dir)
    with sessions() as s:
        peer = peers.get(s, peer_name)
        client = _client(facility, peer)
    answer = client.alarms()
    with sessions() as s:
        local = dict(
            s.execute(
                select(RemotePart.request_id, Slice.name)
                .join(Slice, Slice.id == RemotePart.slice_id)
                .where(RemotePart.peer == peer_name)
            ).all()
        )
    for alarm in answer.get("alarms", []):
        alarm["local_slices"] = sorted(
            {
                local[s["request_id"]]
                for s in alarm.get("slices", [])
                if s.get("request_id") in local
            }
        )
    return answer


INTERRUPTED = (
    "its booking across facilities was interrupted between the phases (this controller "
    "stopped before telling the peers to commit; their holds ran out)"
)


def settle_interrupted(
    sessions: sessionmaker[Session], settings: Settings, now: dt.datetime
) -> list[int]:
    """The leading worker's duty at the home facility: a booking whose process died
    between the phases left its local part booked and its peers' parts `held` here,
    while each peer frees its hold when it runs out. Once twice the hold timeout has
    passed (no live booking can still commit: the peers' holds are gone), the local part
    is released and the peers are told (best effort: their holds ran out anyway).
    Returns the slices settled."""
    cutoff = now - 2 * dt.timedelta(seconds=settings.federation_hold_s)
    with transaction(sessions) as s:
        stale = list(
            s.scalars(
                select(RemotePart).where(
                    RemotePart.state == GuestState.HELD, RemotePart.created_at <= cutoff
                )
            )
        )
        slice_ids = sorted({r.slice_id for r in stale})
        for sid in slice_ids:
            sl = s.get(Slice, sid)
            if sl is not None and sl.status is SliceStatus.SCHEDULED:
                service.release(s, sl, now=now, reason=INTERRUPTED)
                log.warning("slice %d (%s) released: %s", sl.id, sl.name, INTERRUPTED)
    for sid in slice_ids:
        release_remote(sessions, settings, sid)  # marks those the peer answered
    if slice_ids:
        with transaction(sessions) as s:
            for row in s.scalars(
                select(RemotePart).where(
                    RemotePart.slice_id.in_(slice_ids), RemotePart.state == GuestState.HELD
                )
            ):
                row.state = GuestState.ABORTED  # unreachable peer: its hold ran out there
    return slice_ids


def retry_releases(
    sessions: sessionmaker[Session], settings: Settings, now: dt.datetime
) -> list[int]:
    """The leading worker's duty at the home facility (the outbox of releases): a slice
    released or failed here before its window's end whose parts at the peers were not
    all told (a peer was down then) is released there again, until each peer answered.
    A peer that comes back so learns it and takes its part down. Returns the slices
    retried."""
    with sessions() as s:
        slice_ids = sorted(
            set(
                s.scalars(
                    select(RemotePart.slice_id)
                    .join(Slice, Slice.id == RemotePart.slice_id)
                    .where(
                        RemotePart.state == GuestState.COMMITTED,
                        Slice.status.in_([SliceStatus.ENDED, SliceStatus.FAILED]),
                        Slice.end > now,
                    )
                )
            )
        )
    for sid in slice_ids:
        release_remote(sessions, settings, sid)
    return slice_ids
