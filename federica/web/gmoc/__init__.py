"""The GENI monitoring datastore (GET /info/<type>/<id>, GET /data/?q=…): its own Flask app,
served on its TLS listener (listener.py) where collectors present a client certificate
chaining to the configured trust root, or a token.

Every request is identified again per request against the collector registry as it is now
(collectors.identify); refusals are audited (a 401 of nobody identified only counted, as
the REST API counts anonymous requests). Answers are plain JSON (GENI collectors parse
them as such), errors application/problem+json naming the field.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, g, jsonify, request

from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.context import Context
from federica.errors import BadRequest, FedericaError
from federica.federation import identity
from federica.gmoc import collectors, data, objects, query
from federica.gmoc.access import Viewer
from federica.gmoc.naming import Site
from federica.web.context import EXTENSION_KEY, ctx, read_session
from federica.web.problems import problem_response, register_problem_handlers

# The WSGI environ key under which the listener puts the verified client certificate (DER).
CLIENT_CERT = "federica.gmoc_cert"

gmoc = Blueprint("gmoc", __name__)


def create_gmoc_app(context: Context) -> Flask:
    app = Flask("federica.gmoc")
    app.config["MAX_CONTENT_LENGTH"] = context.settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = context
    register_problem_handlers(app)
    app.before_request(_identify)
    app.register_blueprint(gmoc)

    @app.after_request
    def _audit_refusals(response: Response) -> Response:
        if response.status_code in (401, 403):
            body = response.get_json(silent=True) or {}
            _audit(response.status_code, str(body.get("detail", "")))
        return response

    return app


def site() -> Site:
    """Who this datastore speaks for: the facility's federation identity (its name and URN
    authority), reached at FEDERICA_GMOC_URL (else the URL this request came to)."""
    settings = ctx().settings
    facility = identity.load(settings.data_dir)
    base = settings.gmoc_url.rstrip("/") or request.host_url.rstrip("/")
    return Site(facility.name, facility.authority, base, int(settings.monitor_interval_s))


def _identify() -> Response | None:
    bearer = None
    header = request.headers.get("Authorization", "")
    if header:
        scheme, _, secret = header.partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            return _refuse(BadRequest("send a token as 'Authorization: Bearer <token>'"))
        bearer = secret.strip()
    try:
        with read_session() as session:
            g.viewer = collectors.identify(
                session, request.environ.get(CLIENT_CERT), bearer, ctx().now()
            )
    except FedericaError as exc:
        return _refuse(exc)
    return None


def _refuse(exc: FedericaError) -> Response:
    return problem_response(exc.problem(), exc.headers)


def _audit(status: int, reason: str) -> None:
    viewer: Viewer | None = g.get("viewer")
    if viewer is None and status == 401:
        # Nobody identified: only counted (per day, route and status), so that strangers
        # cannot grow the append-only log.
        audit.count_anonymous(
            ctx().sessions,
            method=request.method,
            route=request.endpoint or "unknown",
            status=status,
            address=request.remote_addr or "",
            at=ctx().now(),
        )
        return
    who = Principal(
        viewer.name if viewer else "gmoc:unknown",
        Role.RESEARCHER,
        via="gmoc",
        address=request.remote_addr or "",
    )
    audit.record(
        ctx().sessions,
        who,
        "gmoc.refused",
        status=status,
        target=f"{request.method} {request.path}",
        detail={"reason": reason},
        at=ctx().now(),
    )


def _no_query(*allowed: str) -> None:
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise BadRequest(f"unknown query parameter(s) {unknown}", fields=unknown)


@gmoc.get("/info/<kind>/<path:obj_id>")
def info(kind: str, obj_id: str) -> Response:
    _no_query()
    # cheroot leaves an encoded '/' in PATH_INFO (waitress and Werkzeug decode it); ids
    # hold no '%', so what is left is that.
    obj_id = obj_id.replace("%2F", "/").replace("%2f", "/")
    with read_session() as session:
        body: dict[str, Any] = objects.get(session, site(), g.viewer, kind, obj_id, ctx().now())
    return jsonify(body)


@gmoc.get("/data/")
def data_() -> Response:
    _no_query("q")
    now = ctx().now()
    q = query.parse(request.args.get("q"), objects.us(now))
    with read_session() as session:
        body = data.answer(session, site(), g.viewer, q, now, ctx().settings)
    # Encoded by data.encode (orjson, no dict per point): an hour of 100 interfaces is
    # ~100,000 points, and the standard library's encoder spent more time on them than
    # everything else (docs/benchmarks.md).
    return Response(data.encode(body) + b"\n", mimetype="application/json")
