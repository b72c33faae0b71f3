"""My slices, one slice (live status, mapping, access, timings), extend and release."""

from __future__ import annotations

import re
from typing import Any

from flask import jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from federica.aaa.policy import Action
from federica.errors import FedericaError
from federica.estop import service as estop
from federica.slices import runner, service, windows
from federica.slices.lifecycle import SliceStatus
from federica.slices.models import Slice
from federica.slices.request import parse_duration
from federica.web.auth import guard, may
from federica.web.context import ctx, read_session, write_session
from federica.web.portal import figures, portal
from federica.web.targets import slice_for, visible_slices

FINISHED = {SliceStatus.ENDED.value, SliceStatus.FAILED.value}
EXTEND_CHOICES = ("1h", "6h", "1d", "2d", "3d", "7d")


@portal.get("/slices")
@guard(Action.SLICE_READ, per_target=True)
def slices() -> ResponseReturnValue:
    status = request.args.get("status", "")
    project = request.args.get("project", "")
    text = request.args.get("q", "").strip()
    finished = request.args.get("finished") == "on"
    query = visible_slices()
    errors: dict[str, str] = {}
    if status and status not in {s.value for s in SliceStatus}:
        errors["f-status"] = f"{status!r} is not a slice status"
        status = ""
    if status:
        query = query.where(Slice.status == SliceStatus(status))
    elif not finished:
        query = query.where(Slice.status.not_in([SliceStatus.ENDED, SliceStatus.FAILED]))
    if project:
        query = query.where(Slice.project == project)
    if text:
        query = query.where(Slice.name.contains(text, autoescape=True))
    with read_session() as s:
        rows = [service.describe(sl) for sl in s.scalars(query.limit(200))]
        projects = sorted({p for p in s.scalars(visible_slices().with_only_columns(
            Slice.project).order_by(None).distinct()) if p})  # fmt: skip
    page = render_template(
        "portal/slices.html",
        slices=rows,
        statuses=[s.value for s in SliceStatus],
        projects=projects,
        filters={"status": status, "project": project, "q": text, "finished": finished},
        errors=errors,
    )
    return page, 422 if errors else 200


@portal.get("/slices/<ref>")
@guard(Action.SLICE_READ, per_target=True)
def slice_page(ref: str) -> ResponseReturnValue:
    return _slice_page(ref)


def _slice_page(
    ref: str, errors: dict[str, str] | None = None, message: str = "", status: int = 200
) -> ResponseReturnValue:
    now = ctx().now()
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        body = service.describe(sl)
        drawing = figures.mapping(
            s,
            {n["name"]: n["v_node"] for n in body["nodes"]},
            {c["name"]: c["hops"] for c in body["circuits"]},
        )
        extent = None
        if sl.status in windows.EXTENDABLE:
            extent = windows.extent(s, ctx().settings, sl, now)
        row = estop.in_force(s, sl.id)
        stop = estop.describe(row, staff=False) if row is not None else None
    page = render_template(
        "portal/slice.html",
        sl=body,
        estop=stop,
        drawing=drawing,
        extent=extent,
        extend_choices=EXTEND_CHOICES,
        errors=errors or {},
        message=message,
        timings=_timings(body["timings_ms"]),
        finished=body["status"] in FINISHED,
        # A failed slice too: releasing it removes what a failed start or end left.
        releasable=body["status"] not in {SliceStatus.ENDED.value, SliceStatus.RELEASING.value}
        and (stop is None or may(Action.SLICE_ESTOP)),
    )
    return page, status


def _timings(raw: dict[str, Any]) -> list[tuple[str, str, float]]:
    """(stage, phase, ms) in order: the booking's phases, then provisioning's."""
    rows: list[tuple[str, str, float]] = []
    for stage, phases in raw.items():
        if isinstance(phases, dict):
            rows += [(stage, k, float(v)) for k, v in phases.items() if isinstance(v, int | float)]
        elif isinstance(phases, int | float):
            rows.append(("", stage, float(phases)))
    return rows


@portal.get("/slices/<ref>/status.json")
@guard(Action.SLICE_READ, per_target=True)
def slice_status(ref: str) -> ResponseReturnValue:
    """What the slice page polls: it reloads itself when this changes."""
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        return jsonify(
            {
                "status": sl.status.value,
                "changes": len(sl.history),
                "end": sl.end.isoformat(),
                "nodes": {n.name: n.state.value for n in sl.nodes},
            }
        )


@portal.post("/slices/<ref>/extend")
@guard(Action.SLICE_CHANGE, per_target=True)
def extend(ref: str) -> ResponseReturnValue:
    by_text = request.form.get("by", "").strip()
    if not re.fullmatch(r"\d+[mhdw]", by_text):
        return _slice_page(ref, errors={"by": "a length such as 3h or 2d"}, status=422)
    try:
        with write_session() as s:
            sl = slice_for(s, ref, Action.SLICE_CHANGE)
            sl = windows.extend(
                s, ctx().settings, sl, now=ctx().now(), by=parse_duration(by_text), to=None
            )
            end = sl.end
    except FedericaError as exc:
        if exc.status in (401, 403, 404):
            raise
        return _slice_page(ref, errors={"by": exc.detail}, status=exc.status)
    return redirect(url_for("portal.slice_page", ref=ref, extended=end.isoformat()), 303)


@portal.post("/slices/<ref>/release")
@guard(Action.SLICE_CHANGE, per_target=True)
def release(ref: str) -> ResponseReturnValue:
    with write_session() as s:
        runner.request_release(
            s, slice_for(s, ref, Action.SLICE_CHANGE), ctx().now(), staff=may(Action.SLICE_ESTOP)
        )
    return redirect(url_for("portal.slice_page", ref=ref), 303)
