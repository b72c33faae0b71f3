"""Every error leaves as application/problem+json (RFC 9457)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, json, request
from sqlalchemy import exc as sa
from werkzeug.exceptions import HTTPException

from federica.errors import FedericaError, ServiceUnavailable, correlation_id

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


def database_unavailable(exc: BaseException) -> bool:
    """The database cannot be reached or dropped the connection (restarting, failing
    over, or busy: SQLite's "database is locked"): the caller should try again. Other
    database errors (a refused row, bad SQL) are bugs."""
    if isinstance(exc, sa.OperationalError | sa.InterfaceError | sa.TimeoutError):
        return True
    return isinstance(exc, sa.DBAPIError) and exc.connection_invalidated


def unavailable_problem(exc: BaseException) -> Response:
    """503 with Retry-After; the log gets the driver's message, the caller a reference."""
    ref = correlation_id()
    log.warning(
        "database unavailable on %s %s [ref %s]: %s",
        request.method,
        request.path,
        ref,
        type(exc).__name__,
        exc_info=log.isEnabledFor(logging.DEBUG),
    )
    problem = ServiceUnavailable(
        f"the database is not reachable just now; try again (reference {ref})", retry_after_s=2
    )
    return problem_response(problem.problem(), problem.headers)


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

    @app.errorhandler(sa.DBAPIError)
    @app.errorhandler(sa.TimeoutError)
    def _database(exc: Exception) -> Response:
        if database_unavailable(exc):
            return unavailable_problem(exc)
        return _unexpected(exc)

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
