"""Accounting (project members, staff) and the audit log (staff) over REST."""

from __future__ import annotations

from flask import Response, jsonify, request
from flask.typing import ResponseReturnValue

from federica import inputs
from federica.aaa import accounting, audit
from federica.aaa.policy import Action, allowed_projects
from federica.errors import FieldError, InvalidInput
from federica.slices.calendar import Interval
from federica.web.api import api
from federica.web.api.openapi import document
from federica.web.api.slices import _time_arg
from federica.web.auth import guard, require
from federica.web.context import ctx, read_session
from federica.web.targets import project_for

VLAN_RANGE = (1, 4094)
MAX_LIMIT = 5000


def _period() -> Interval:
    month = request.args.get("month")
    if month is not None:
        try:
            return accounting.month_period(month)
        except ValueError as exc:
            raise InvalidInput([FieldError("month", str(exc))]) from None
    start = _time_arg("from")
    end = _time_arg("to")
    if start is None and end is None:
        return accounting.month_period(f"{ctx().now():%Y-%m}")
    if start is None or end is None:
        raise InvalidInput(
            [
                FieldError(
                    "from" if start is None else "to",
                    "give both from and to (ISO 8601), or month=YYYY-MM",
                )
            ]
        )
    if end <= start:
        raise InvalidInput([FieldError("to", "must be after from")])
    return Interval(start, end)


@api.get("/accounting")
@document(
    "Accounting",
    "Resource use per slice and per project over a period (?month=YYYY-MM, or ?from=&to=; "
    "default this month), ?project= to narrow, ?format=csv for CSV",
    tag="accounts",
    query=("month:string", "from:string", "to:string", "project:string", "format:string"),
    csv=True,
)
@guard(Action.ACCOUNTING_READ, per_target=True)
def accounting_report() -> ResponseReturnValue:
    period = _period()
    fmt = request.args.get("format", "json")
    if fmt not in {"json", "csv"}:
        raise InvalidInput([FieldError("format", f"json or csv, not {fmt!r}")])
    project = request.args.get("project")
    visible = allowed_projects(require())
    if project is not None:
        project_for(project, Action.ACCOUNTING_READ)
        scope: frozenset[str] | None = frozenset({project})
    else:
        scope = visible
    with read_session() as s:
        rep = accounting.report(s, period, scope)
    if fmt == "csv":
        name = f"federica-accounting-{period.start:%Y%m%d}-{period.end:%Y%m%d}.csv"
        return Response(
            rep.as_csv(),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return jsonify(rep.as_json())


def _int_arg(name: str, lo: int, hi: int) -> int | None:
    raw = request.args.get(name)
    return None if raw is None else inputs.whole(raw, name, lo, hi)


def _place() -> audit.Place:
    link, port = request.args.get("link"), request.args.get("port")
    if link is not None and port is not None:
        raise InvalidInput([FieldError("port", "give link or port, not both")])
    return audit.Place(link=link, port=port)


@api.get("/audit")
@document(
    "AuditList",
    "The audit log, newest first (staff): ?slice= ?user= ?vlan= with ?link= or ?port= "
    "?since= ?until= ?action= ?limit=",
    tag="accounts",
    query=(
        "slice:string", "user:string", "vlan:integer", "link:string", "port:string",
        "since:string", "until:string", "action:string", "limit:integer",
    ),
)  # fmt: skip
@guard(Action.AUDIT_READ)
def audit_log() -> ResponseReturnValue:
    with read_session() as s:
        entries = audit.search(
            s,
            slice_ref=request.args.get("slice"),
            user=request.args.get("user"),
            vlan=_int_arg("vlan", *VLAN_RANGE),
            place=_place(),
            since=_time_arg("since"),
            until=_time_arg("until"),
            action=request.args.get("action"),
            limit=_int_arg("limit", 1, MAX_LIMIT) or 200,
        )
        return jsonify([audit.describe(e) for e in entries])


@api.get("/audit/held")
@document(
    "HeldBy",
    "Who held a VLAN on a link (or a port) at a time (staff): ?vlan=&link=|port=&at=",
    tag="accounts",
    query=("vlan:integer", "link:string", "port:string", "at:string"),
)
@guard(Action.AUDIT_READ)
def held_by() -> ResponseReturnValue:
    vlan = _int_arg("vlan", *VLAN_RANGE)
    place = _place()
    if vlan is None:
        raise InvalidInput([FieldError("vlan", "required")])
    if place.link is None and place.port is None:
        raise InvalidInput([FieldError("link", "give link or port")])
    at = _time_arg("at") or ctx().now()
    with read_session() as s:
        return jsonify(
            {"vlan": vlan, "at": at.isoformat(), "held_by": audit.held_by(s, vlan, place, at)}
        )
