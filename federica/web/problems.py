"""Every error leaves as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException

from federica.errors import FedericaError, correlation_id

PROBLEM_JSON = "application/problem+json"
log = logging.getLogger(__name__)


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> Response:
    body.setdefault("instance", request.path)
    return Response(
        json.dumps(body), status=int(body["status"]), mimetype=PROBLEM_JSON, headers=headers
    )


def _allow(exc: HTTPException) -> dict[str, str] | None:
    """A 405 says which methods the resource has (RFC 9110 §15.5.6)."""
    allow = dict(exc.get_headers()).get("Allow")
    return {"Allow": allow} if allow else None


def register_problem_handlers(app: Flask) -> None:
    @app.errorhandler(FedericaError)
    def _federica(exc: FedericaError) -> Response:
        return problem_response(exc.problem(), exc.headers)

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> Response:
        status = exc.code or 500
        slug = (exc.name or "error").lower().replace(" ", "-")
        return problem_response(
            {
                "type": f"https://federica.example/problems/{slug}",
                "title": exc.name,
                "status": status,
                "detail": exc.description or exc.name,
            },
            _allow(exc),
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # The exception's text stays in the log (it may hold SQL and its parameters); the
        # client gets the reference that finds it there.
        ref = correlation_id()
        log.exception("unhandled error on %s %s [ref %s]", request.method, request.path, ref)
        return problem_response(
            {
                "type": "https://federica.example/problems/internal-error",
                "title": "Internal error",
                "status": 500,
                "detail": "the controller failed unexpectedly; the operators can find it in "
                f"the log under {ref}",
                "correlation_id": ref,
            }
        )
