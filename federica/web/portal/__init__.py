"""The researcher portal: server-rendered pages (Jinja) over the same services and policy
as the REST API, signed in with a session cookie, every form CSRF-checked, and every
asset served from here (the Content-Security-Policy allows no other host)."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from federica.errors import FedericaError, Unauthorized
from federica.web.auth import STATE_CHANGING, current
from federica.web.portal.session import check_csrf, csrf_token

portal = Blueprint(
    "portal",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/portal-static",
)

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "object-src 'none'"
)


def serve_pages(bp: Blueprint) -> None:
    """What every blueprint of browser pages (the portal, the NOC) owes its users: a CSRF
    check on every state-changing request, the security headers, and errors as pages
    (or as problems for the pages' own JSON), a missing sign-in sent to sign in."""
    bp.before_request(_csrf)
    bp.after_request(_headers)
    bp.register_error_handler(Unauthorized, _sign_in_first)
    bp.register_error_handler(FedericaError, _problem)
    bp.register_error_handler(HTTPException, _http)


def _csrf() -> None:
    if request.method in STATE_CHANGING:
        check_csrf()


def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if not (request.endpoint or "").endswith(".static"):
        response.headers["Cache-Control"] = "no-store"  # pages carry personal data
    return response


@portal.app_template_filter("when")
def _when(value: str | dt.datetime | None) -> str:
    """An instant as the portal shows it everywhere: UTC to the minute."""
    if not value:
        return "—"
    at = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    return at.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


@portal.app_context_processor
def _globals() -> dict[str, object]:
    return {"who": current(), "csrf_token": csrf_token}


def _sign_in_first(exc: Unauthorized) -> ResponseReturnValue:
    if request.path.endswith(".json"):
        return {"status": 401, "detail": exc.detail}, 401
    target = request.full_path if request.method == "GET" else request.path
    if g.get("session_ended"):
        return redirect(url_for("portal.login", next=target.rstrip("?"), ended="1"), 303)
    return redirect(url_for("portal.login", next=target.rstrip("?")), 303)


def _problem(exc: FedericaError) -> ResponseReturnValue:
    if request.path.endswith(".json"):
        return exc.problem(), exc.status
    return render_template("portal/error.html", title=exc.title, detail=exc.detail), exc.status


def _http(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    body = render_template("portal/error.html", title=exc.name, detail=exc.description)
    allow = dict(exc.get_headers()).get("Allow")  # a 405 names the methods it has
    return body, status, {"Allow": allow} if allow else {}


serve_pages(portal)


from federica.web.portal import (  # noqa: E402,F401  (register the pages)
    pages_account,
    pages_editor,
    pages_projects,
    pages_slices,
    pages_substrate,
)
