"""One slice as the NOC sees it: where it is on the map, its people, its parts, its
emergency stop (reason and ticket, confirmed) with forensic hold and lift."""

from __future__ import annotations

import datetime as dt

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from federica.aaa.attribution import people_of
from federica.aaa.policy import Action
from federica.errors import FieldError, InvalidInput
from federica.estop import service as estop
from federica.monitoring.queries import Window
from federica.slices import service
from federica.slices.lifecycle import SliceStatus as S
from federica.slices.models import Slice
from federica.slicestats.queries import slice_metrics
from federica.web.api.estop import toolkit
from federica.web.auth import guard, note, require
from federica.web.context import ctx, read_session
from federica.web.noc import charts, noc
from federica.web.portal import figures
from federica.web.targets import slice_for


@noc.get("/slices/<ref>")
@guard(Action.MONITORING_READ)
def noc_slice(ref: str) -> ResponseReturnValue:
    return _page(ref)


def _page(ref: str, errors: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        body = service.describe(sl)
        drawing = figures.mapping(
            s,
            {n["name"]: n["v_node"] for n in body["nodes"]},
            {c["name"]: c["hops"] for c in body["circuits"]},
        )
        people = people_of(s, sl.id)
        traffic = _traffic(s, sl)
        row = estop.latest(s, sl.id)
        record = estop.describe(row, staff=True) if row is not None else None
    page = render_template(
        "noc/slice.html",
        sl=body,
        drawing=drawing,
        people=people,
        charts=traffic,
        estop=record,
        stoppable=body["status"] in {S.SCHEDULED.value, S.PROVISIONING.value, S.ACTIVE.value},
        shut_down=body["status"] == S.SHUTDOWN.value,
        errors=errors or {},
        form=request.form,
    )
    return page, status


# A slice's page shows its circuits' last half hour at the poller's pace or so.
TRAFFIC_SPAN = dt.timedelta(minutes=30)
TRAFFIC_STEP_S = 15


def _traffic(s: Session, sl: Slice) -> list[charts.Chart]:
    """Each circuit's traffic into and out of the slice's nodes (its edge hops' per-VLAN
    interfaces), and each node's CPU and memory, from what the poller stored."""
    end = ctx().now()
    start = end - TRAFFIC_SPAN
    body = slice_metrics(s, sl, Window(start, end, TRAFFIC_STEP_S), end, ctx().settings)
    out = []
    for c in body["circuits"]:
        points = [(dt.datetime.fromisoformat(p["start"]), p) for p in c["points"]]
        out.append(
            charts.chart(
                f"circuit {c['name']}: traffic",
                "b/s",
                start,
                end,
                {
                    "rx": [(at, p["rx_bps"]) for at, p in points],
                    "tx": [(at, p["tx_bps"]) for at, p in points],
                },
                {"rx": "series-rx", "tx": "series-tx"},
            )
        )
    for n in body["nodes"]:
        points = [(dt.datetime.fromisoformat(p["start"]), p) for p in n["points"]]
        out.append(
            charts.chart(
                f"node {n['name']} ({n['health']}): CPU",
                "cores",
                start,
                end,
                {"CPU": [(at, p["cpu_cores"]) for at, p in points]},
            )
        )
        out.append(
            charts.chart(
                f"node {n['name']}: memory",
                "B",
                start,
                end,
                {"memory": [(at, p["memory_bytes"]) for at, p in points]},
            )
        )
    return out


def _text(name: str) -> str:
    return request.form.get(name, "").strip()


@noc.post("/slices/<ref>/estop")
@guard(Action.SLICE_ESTOP)
def noc_estop(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_ESTOP)
        slice_id = str(sl.id)
    reason, ticket = _text("reason"), _text("ticket") or None
    note(reason=reason, ticket=ticket)
    try:
        if _text("confirm") != "yes":
            raise InvalidInput([FieldError("confirm", "tick the box to confirm the stop")])
        estop.stop(ctx(), toolkit(), estop.Selector(slice=slice_id), require(), reason, ticket)
    except InvalidInput as exc:
        return _page(ref, {f"f-{e.field}": e.message for e in exc.errors}, 422)
    return redirect(url_for("noc.noc_slice", ref=slice_id), 303)


@noc.post("/slices/<ref>/lift")
@guard(Action.SLICE_ESTOP)
def noc_lift(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        slice_id = str(slice_for(s, ref, Action.SLICE_ESTOP).id)
    reason = _text("lift_reason")
    note(reason=reason)
    try:
        estop.lift(ctx(), toolkit(), slice_id, require(), reason)
    except InvalidInput as exc:
        errors = {f"f-lift_{e.field}" if e.field == "reason" else f"f-{e.field}": e.message
                  for e in exc.errors}  # fmt: skip
        return _page(ref, errors, 422)
    return redirect(url_for("noc.noc_slice", ref=slice_id), 303)


@noc.post("/slices/<ref>/hold")
@guard(Action.SLICE_ESTOP)
def noc_hold(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        slice_id = str(slice_for(s, ref, Action.SLICE_ESTOP).id)
    on = _text("hold") == "on"
    note(hold=on)
    estop.set_hold(ctx(), slice_id, require(), on)
    return redirect(url_for("noc.noc_slice", ref=slice_id), 303)
