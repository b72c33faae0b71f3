"""The slices on the facility with the people answerable for them, and attribution: from
an address, a VLAN on a link, a port, a node or a user at a time to slices and people."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from flask import render_template, request
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from federica import inputs
from federica.aaa import attribution
from federica.aaa.policy import Action
from federica.errors import FieldError, InvalidInput, NotFound
from federica.slices.lifecycle import SliceStatus as S
from federica.slices.models import Slice
from federica.slices.request import parse_instant
from federica.web.auth import guard
from federica.web.context import ctx, read_session
from federica.web.noc import noc

CURRENT = (S.SCHEDULED, S.PROVISIONING, S.ACTIVE, S.SHUTDOWN, S.RELEASING)


def _footprint(sl: Slice) -> dict[str, Any]:
    pops = sorted({n.host.pop.name for n in sl.nodes})
    links: set[str] = set()
    for c in sl.circuits:
        links.update(h["link"] for h in json.loads(c.mapping or "[]") if h.get("link"))
    return {"pops": pops, "links": sorted(links)}


@noc.get("/slices")
@guard(Action.MONITORING_READ)
def slice_list() -> ResponseReturnValue:
    status = request.args.get("status", "").strip()
    errors = {}
    wanted: tuple[S, ...] = CURRENT
    if status:
        try:
            wanted = (S(status),)
        except ValueError:
            errors["f-status"] = f"{status!r} is not a slice status"
    with read_session() as s:
        rows = [
            {
                "id": sl.id,
                "name": sl.name,
                "project": sl.project,
                "owner": sl.owner.username if sl.owner else None,
                "status": sl.status.value,
                "start": sl.start,
                "end": sl.end,
                **_footprint(sl),
            }
            for sl in s.scalars(
                select(Slice).where(Slice.status.in_(wanted)).order_by(Slice.start).limit(500)
            ).unique()
        ]
    page = render_template(
        "noc/slices.html",
        slices=rows,
        statuses=[st.value for st in S],
        status=status,
        errors=errors,
    )
    return page, 422 if errors else 200


def _query() -> attribution.Query | None:
    args = {k: request.args.get(k, "").strip() for k in
            ("at", "address", "vlan", "link", "port", "node", "user")}  # fmt: skip
    if not any(v for k, v in args.items() if k != "at"):
        return None
    errors: list[FieldError] = []
    at = ctx().now()
    if args["at"]:
        raw = args["at"]
        try:
            at = parse_instant(raw if raw[-1:] == "Z" or "+" in raw[10:] else raw + "Z")
        except ValueError as exc:
            errors.append(FieldError("at", str(exc)))
    vlan = None
    if args["vlan"]:
        try:
            vlan = inputs.whole(args["vlan"], "vlan", 1, 4094)
        except InvalidInput as exc:
            errors.extend(exc.errors)
    if errors:
        raise InvalidInput(errors)
    return attribution.Query(
        at=at,
        address=args["address"] or None,
        vlan=vlan,
        link=args["link"] or None,
        port=args["port"] or None,
        node=args["node"] or None,
        user=args["user"] or None,
    )


@noc.get("/attribution")
@guard(Action.AUDIT_READ)
def attribution_page() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    findings: list[dict[str, Any]] | None = None
    senders: list[attribution.Person] = []
    try:
        q = _query()
        if q is not None:
            with read_session() as s:
                found, senders = attribution.find(s, q)
            findings = [attribution.describe(f) for f in found]
    except InvalidInput as exc:
        errors = {f"f-{e.field}": e.message for e in exc.errors}
    except NotFound as exc:  # an unknown user, link or port: say which, on the form
        errors = {"f-query": exc.detail}
    form = {k: request.args.get(k, "") for k in
            ("at", "address", "vlan", "link", "port", "node", "user")}  # fmt: skip
    if not form["at"]:
        form["at"] = ctx().now().astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")
    page = render_template(
        "noc/attribution.html", form=form, findings=findings, senders=senders, errors=errors
    )
    return page, 422 if errors else 200
