"""The operators' NOC in the browser: the facility at a glance (map, device health, link
load), alarms, slices, attribution, and device and link pages with their charts.

Operators and admins only (Action.MONITORING_READ and, per page, what it changes); a
researcher gets 403 on every page. Same sign-in, CSRF check, Content-Security-Policy and
templates as the researcher portal: it is the portal's operator half."""

from __future__ import annotations

from flask import Blueprint, Response, g, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException

from federica.errors import FedericaError, Unauthorized
from federica.web.auth import STATE_CHANGING
from federica.web.noc.charts import human
from federica.web.portal import CSP
from federica.web.portal.session import check_csrf

noc = Blueprint(
    "noc",
    __name__,
    url_prefix="/noc",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

noc.add_app_template_global(human, "human")


@noc.before_request
def _csrf() -> None:
    if request.method in STATE_CHANGING:
        check_csrf()


@noc.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "noc.static":
        response.headers["Cache-Control"] = "no-store"
    return response


def _wants_json() -> bool:
    return request.path.endswith(".json")


@noc.errorhandler(Unauthorized)
def _sign_in_first(exc: Unauthorized) -> ResponseReturnValue:
    if _wants_json():
        return {"status": 401, "detail": exc.detail}, 401
    target = request.full_path if request.method == "GET" else request.path
    if g.get("session_ended"):
        return redirect(url_for("portal.login", next=target.rstrip("?"), ended="1"), 303)
    return redirect(url_for("portal.login", next=target.rstrip("?")), 303)


@noc.errorhandler(FedericaError)
def _problem(exc: FedericaError) -> ResponseReturnValue:
    if _wants_json():
        return exc.problem(), exc.status
    return render_template("portal/error.html", title=exc.title, detail=exc.detail), exc.status


@noc.errorhandler(HTTPException)
def _http(exc: HTTPException) -> ResponseReturnValue:
    status = exc.code or 500
    body = render_template("portal/error.html", title=exc.name, detail=exc.description)
    allow = dict(exc.get_headers()).get("Allow")
    return body, status, {"Allow": allow} if allow else {}


from federica.web.noc import (  # noqa: E402,F401  (register the pages)
    pages_alarms,
    pages_facility,
    pages_operations,
    pages_people,
)
