"""The peer API (/federation/v1/…): its own Flask app, served only on the mutual-TLS
listener (listener.py), so no peer endpoint is ever reachable without a peer certificate.

Every request is identified by the client certificate the TLS layer verified, against the
registry as it is now: a peer removed a moment ago is refused on a connection it opened
before. Every refusal is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request
from sqlalchemy.exc import IntegrityError

from federica import documents
from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.context import Context
from federica.errors import BadRequest, Conflict, FieldError, Forbidden, InvalidInput
from federica.federation import advertisement, faults, guests, identity, peers
from federica.federation import assertion as assertions
from federica.federation import calendar as peer_calendar
from federica.federation.agreement import API_VERSION, Operation
from federica.slices.request import MAX_REQUEST_BYTES, parse_instant
from federica.web.context import EXTENSION_KEY, ctx, read_session, write_session
from federica.web.problems import problem_response, register_problem_handlers

# The WSGI environ key under which the listener puts the verified client certificate (DER).
PEER_CERT = "federica.peer_cert"

federation_api = Blueprint("federation_api", __name__, url_prefix="/federation/v1")


def create_peer_app(context: Context) -> Flask:
    app = Flask("federica.federation")
    app.config["MAX_CONTENT_LENGTH"] = context.settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = context
    register_problem_handlers(app)
    app.before_request(_identify)
    app.register_blueprint(federation_api)

    @app.after_request
    def _audit_refusals(response: Response) -> Response:
        # The refusals the views and Flask make (404, 405, 413, 4xx of a known peer); the
        # ones of _identify are audited there, with their reason.
        if response.status_code >= 400 and not g.get("audited"):
            _audit(response.status_code, response.get_json(silent=True) or {})
        return response

    return app


def _principal() -> Principal:
    known: peers.Known | None = g.get("known")
    name = known.peer.name if known is not None and known.peer is not None else "unknown"
    address = request.remote_addr or ""
    return Principal(f"peer:{name}", Role.RESEARCHER, via="federation", address=address)


def _audit(status: int, body: dict[str, Any]) -> None:
    known: peers.Known | None = g.get("known")
    detail = {
        "reason": str(body.get("detail", "")),
        "certificate": known.subject if known is not None else "",
        "fingerprint": known.fingerprint if known is not None else "",
    }
    # Who the refused message spoke for, when its assertion got as far as being read.
    user: assertions.Assertion | None = g.get("asserted")
    if user is not None:
        detail |= {"user": user.user, "home": known.peer.name if known and known.peer else ""}
    audit.record(
        ctx().sessions,
        _principal(),
        "federation.refused",
        status=status,
        target=f"{request.method} {request.path}",
        detail=detail,
        at=ctx().now(),
    )
    g.audited = True


def _audit_done(
    action: str,
    status: int,
    who: assertions.Assertion | None,
    detail: dict[str, Any],
    *,
    slice_id: int | None = None,
    project: str | None = None,
) -> None:
    """A peer's action that changed something here: the user (by URN) and their home
    facility named."""
    peer = g.known.peer
    actor = _principal()
    if who is not None:
        actor = Principal(
            f"{who.username}@{peer.name}", Role.RESEARCHER, via="federation",
            address=request.remote_addr or "",
        )  # fmt: skip
        detail = {"user": who.user, "home": peer.name, "home_urn": who.issuer,
                  "home_projects": who.projects} | detail  # fmt: skip
    else:
        detail = {"home": peer.name} | detail
    audit.record(
        ctx().sessions, actor, action, status=status, target=f"{request.method} {request.path}",
        slice_id=slice_id, project=project, detail=detail, at=ctx().now(),
    )  # fmt: skip


def _identify() -> Response | None:
    with read_session() as session:
        known = peers.identify(session, request.environ.get(PEER_CERT), ctx().now())
        if known.peer is not None:
            session.expunge(known.peer)
    g.known = known
    if known.peer is None:
        error = Forbidden(f"not a registered peer: {known.reason}")
        _audit(error.status, error.problem())
        return problem_response(error.problem())
    return None


def _granted(operation: Operation) -> None:
    peer = g.known.peer
    if operation not in peer.operations:
        raise Forbidden(
            f"the agreement with {peer.name!r} ({peer.form.value}) does not grant "
            f"{operation.value!r}"
        )


def _no_query(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown query parameter(s) {unknown}", fields=unknown)


@federation_api.get("/advertisement")
def get_advertisement() -> Response:
    """What this facility offers the calling peer (never more than its agreement says)."""
    _no_query()
    _granted(Operation.ADVERTISEMENT)
    facility = identity.load(ctx().settings.data_dir)
    with read_session() as session:
        body = advertisement.advertise(session, facility, g.known.peer, ctx().now())
    return jsonify(body)


def _json_body() -> Any:
    return documents.load_json(request.get_data() or b"", limit=MAX_REQUEST_BYTES)


def _after_arg() -> Any:
    raw = request.args.get("after")
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise InvalidInput([FieldError("after", str(exc))]) from None


@federation_api.get("/availability")
def get_availability() -> Response:
    """What is free over ?start=&end= at the PoPs the calling peer may see."""
    _no_query("start", "end")
    _granted(Operation.AVAILABILITY)
    window = peer_calendar.window_of(
        request.args.get("start"), request.args.get("end"), now=ctx().now(),
        settings=ctx().settings,
    )  # fmt: skip
    with read_session() as session:
        return jsonify(peer_calendar.free_over(session, g.known.peer, window))


@federation_api.post("/slots")
def find_slot() -> Response:
    """The earliest window (of the request's length, at or after ?after=) in which the
    request, every node pinned to a PoP the peer may see, fits; books nothing."""
    _no_query("after")
    _granted(Operation.AVAILABILITY)
    after = _after_arg()
    document = _json_body()
    with read_session() as session:
        return jsonify(
            peer_calendar.find_slot(
                session, ctx().settings, g.known.peer, document, now=ctx().now(), after=after
            )
        )


@federation_api.post("/identity")
def check_identity() -> Response:
    """Verifies an identity assertion and says how this facility maps its user (the
    guest project of the calling peer); the assertion is used up."""
    _no_query()
    _granted(Operation.IDENTITY)
    body = _json_body()
    if not isinstance(body, dict) or set(body) != {"assertion"}:
        raise InvalidInput([FieldError("assertion", 'the body is {"assertion": JWS}')])
    peer = g.known.peer
    facility = identity.load(ctx().settings.data_dir)
    with write_session() as session:
        who = assertions.verify(session, body["assertion"], peer=peer, audience=facility.urn,
                                now=ctx().now())  # fmt: skip
        g.asserted = who
        assertions.consume(session, who, ctx().now())
    _audit_done("federation.identity", 200, who, {})
    return jsonify(
        {
            "version": API_VERSION,
            "user": who.user,
            "home": peer.name,
            "guest_username": f"{who.username}@{peer.name}",
            "guest_project": guests.guest_project(peer),
            "expires_at": who.expires_at.isoformat(),
        }
    )


def _expire_holds() -> None:
    with write_session() as session:
        expired = [(b.request_id, b.slice_id, b.peer, b.user_urn)
                   for b in guests.expire(session, ctx().now())]  # fmt: skip
    # Audited after the release committed (an audit entry is its own transaction).
    for request_id, slice_id, home, user in expired:
        audit.record(
            ctx().sessions, _principal(), "federation.expire", status=200,
            target=f"booking {request_id}", slice_id=slice_id,
            detail={"home": home, "user": user}, at=ctx().now(),
        )  # fmt: skip


def _ensure_guest_project() -> None:
    """Made in its own transaction, before the hold: concurrent first holds of one peer
    must not both insert it (the loser's unique violation is harmless)."""
    try:
        with write_session() as session:
            guests.ensure_project(session, g.known.peer)
    except (IntegrityError, Conflict):
        pass


@federation_api.post("/bookings")
def hold_booking() -> tuple[Response, int]:
    """Phase one: book the request here, held (not built) until the peer commits or
    aborts it, or `hold_seconds` pass. Repeating it (the same request id and request)
    answers the same booking."""
    _no_query()
    _granted(Operation.BOOKING)
    _granted(Operation.IDENTITY)
    body = _json_body()
    peer = g.known.peer
    facility = identity.load(ctx().settings.data_dir)
    _expire_holds()
    _ensure_guest_project()
    if isinstance(body, dict):
        # Read before the hold so that a refusal after it (quota, no room) names the user.
        try:
            with read_session() as session:
                g.asserted = assertions.verify(session, body.get("assertion"), peer=peer,
                                               audience=facility.urn, now=ctx().now())  # fmt: skip
        except assertions.AssertionRefused:
            pass  # the hold below refuses it, naming why
    with write_session() as session:
        held = guests.hold(session, ctx().settings, peer, body, audience=facility.urn,
                           now=ctx().now())  # fmt: skip
        answer = guests.describe(session, held.booking)
        slice_id, project = held.slice.id, held.slice.project
    if held.created:
        _audit_done("federation.hold", 201, held.assertion,
                    {"request_id": answer["request_id"], "slice": answer["slice"]["name"]},
                    slice_id=slice_id, project=project)  # fmt: skip
    return jsonify(answer), 201 if held.created else 200


@federation_api.get("/bookings/<request_id>")
def show_booking(request_id: str) -> Response:
    _no_query()
    _granted(Operation.BOOKING)
    _expire_holds()
    with read_session() as session:
        return jsonify(guests.describe(session, guests.get(session, g.known.peer, request_id)))


@federation_api.post("/bookings/<request_id>/commit")
def commit_booking(request_id: str) -> Response:
    """Phase two: the held booking stands (and is built at its start)."""
    _no_query()
    _granted(Operation.BOOKING)
    _expire_holds()
    with write_session() as session:
        booking = guests.commit(session, ctx().settings, g.known.peer, request_id, ctx().now())
        answer = guests.describe(session, booking)
        slice_id = booking.slice_id
    _audit_done("federation.commit", 200, None,
                {"request_id": request_id, "user": answer["user"]}, slice_id=slice_id)  # fmt: skip
    return jsonify(answer)


@federation_api.post("/bookings/<request_id>/abort")
def abort_booking(request_id: str) -> Response:
    """Phase two, the other way: the booking is released (a committed one too)."""
    _no_query()
    _granted(Operation.BOOKING)
    _expire_holds()
    with write_session() as session:
        booking = guests.abort(session, g.known.peer, request_id, ctx().now())
        answer = guests.describe(session, booking)
        slice_id = booking.slice_id
    _audit_done("federation.abort", 200, None,
                {"request_id": request_id, "user": answer["user"]}, slice_id=slice_id)  # fmt: skip
    return jsonify(answer)


@federation_api.get("/alarms")
def get_alarms() -> Response:
    """Open alarms on the border ports facing the calling peer and on its guests' slices."""
    _no_query()
    _granted(Operation.MONITORING)
    with read_session() as session:
        return jsonify(faults.for_peer(session, g.known.peer))


@federation_api.post("/bookings/<request_id>/estop")
def estop_booking(request_id: str) -> Response:
    """The calling peer (the slice's home) e-stopped its slice: its part here (the guest
    booking of that request id) is isolated at once, as this facility's e-stop does."""
    from federica.federation import estop_relay
    from federica.web.api.estop import toolkit

    _no_query()
    _granted(Operation.ESTOP)
    got = estop_relay.stop_guest(ctx(), toolkit(), g.known.peer, request_id, _json_body(),
                                 _principal())  # fmt: skip
    _audit_done("federation.estop", 200, None,
                {"request_id": request_id, "slice": got.slice_name, "stopped": got.stopped},
                slice_id=got.slice_id, project=got.project)  # fmt: skip
    return jsonify(got.answer)


@federation_api.post("/parts/<request_id>/estop")
def estop_part(request_id: str) -> Response:
    """The calling peer e-stopped our slice's part there (our request id): the slice is
    stopped here too."""
    from federica.federation import estop_relay
    from federica.web.api.estop import toolkit

    _no_query()
    _granted(Operation.ESTOP)
    got = estop_relay.stop_home(ctx(), toolkit(), g.known.peer, request_id, _json_body(),
                                _principal())  # fmt: skip
    _audit_done("federation.estop", 200, None,
                {"request_id": request_id, "slice": got.slice_name, "stopped": got.stopped},
                slice_id=got.slice_id, project=got.project)  # fmt: skip
    return jsonify(got.answer)


# The stitched bookings' routes (circuits across the border) join the blueprint.
from federica.web.federation import interdomain as _interdomain  # noqa: E402, F401
