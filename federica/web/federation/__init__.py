"""The peer API (/federation/v1/…): its own Flask app, served only on the mutual-TLS
listener (listener.py), so no peer endpoint is ever reachable without a peer certificate.

Every request is identified by the client certificate the TLS layer verified, against the
registry as it is now: a peer removed a moment ago is refused on a connection it opened
before. Every refusal is audited.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.context import Context
from federica.errors import BadRequest, Forbidden
from federica.federation import advertisement, identity, peers
from federica.federation.agreement import Operation
from federica.web.context import EXTENSION_KEY, ctx, read_session
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
    audit.record(
        ctx().sessions,
        _principal(),
        "federation.refused",
        status=status,
        target=f"{request.method} {request.path}",
        detail={
            "reason": str(body.get("detail", "")),
            "certificate": known.subject if known is not None else "",
            "fingerprint": known.fingerprint if known is not None else "",
        },
        at=ctx().now(),
    )
    g.audited = True


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
