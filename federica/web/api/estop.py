"""The emergency stop over REST: stop a slice or every slice a selector names, see its
record, put it on forensic hold, lift it. Stopping, holding and lifting are for the
facility's operators (Action.SLICE_ESTOP); the slice's owner and project see the record
and its reason."""

from __future__ import annotations

import threading
from typing import Any

from flask import current_app, jsonify
from flask.typing import ResponseReturnValue

from federica.aaa.policy import Action
from federica.errors import FieldError, InvalidInput, NotFound
from federica.estop import service as estop
from federica.estop.isolate import Toolkit
from federica.estop.toolkit import make_toolkit
from federica.slices.request import parse_instant
from federica.web.api import api
from federica.web.api.models import (
    EStopRequest,
    EStopSelection,
    HoldRequest,
    LiftRequest,
    parse_body,
)
from federica.web.api.openapi import document
from federica.web.auth import guard, may, note, require
from federica.web.context import ctx, read_session
from federica.web.targets import slice_for

TOOLKIT_KEY = "federica.estop"
_guard = threading.Lock()


def toolkit() -> Toolkit:
    """One per app: its NETCONF sessions stay open between stops."""
    with _guard:
        tk = current_app.extensions.get(TOOLKIT_KEY)
        if tk is None:
            tk = current_app.extensions[TOOLKIT_KEY] = make_toolkit(ctx(), seen_by="web")
        return tk


def _result(stopped: list[estop.Stopped]) -> dict[str, Any]:
    return {
        "stopped": [
            {
                "slice_id": st.slice_id,
                "slice": st.slice_name,
                "estop_id": st.estop_id or None,
                "skipped": st.skipped or None,
                "isolated": st.report.get("isolated") if not st.skipped else None,
                "report": st.report or None,
            }
            for st in stopped
        ]
    }


@api.post("/slices/<ref>/estop")
@document(
    "EStopResult",
    "Emergency stop of one slice: isolated at once (data and control plane), kept for "
    "forensics, SHUTDOWN until an operator lifts or releases it",
    param="ref",
    tag="estop",
    body="EStopRequest",
)
@guard(Action.SLICE_ESTOP)
def estop_slice(ref: str) -> ResponseReturnValue:
    body = parse_body(EStopRequest)
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_ESTOP)
        ref_id = str(sl.id)
    note(reason=body.reason, ticket=body.ticket)
    stopped = estop.stop(
        ctx(), toolkit(), estop.Selector(slice=ref_id), require(), body.reason, body.ticket
    )
    return jsonify(_result(stopped))


@api.post("/estop")
@document(
    "EStopResult",
    "Emergency stop of every slice a selector names (a slice, a project's or a user's "
    "slices, or whoever held a port, link, V-node or VLAN at a time)",
    tag="estop",
    body="EStopSelection",
)
@guard(Action.SLICE_ESTOP)
def estop_selection() -> ResponseReturnValue:
    body = parse_body(EStopSelection)
    at = None
    if body.at is not None:
        try:
            at = parse_instant(body.at)
        except ValueError as exc:
            raise InvalidInput([FieldError("at", str(exc))]) from None
    sel = estop.Selector(
        slice=body.slice,
        project=body.project,
        user=body.user,
        port=body.port,
        link=body.link,
        vnode=body.vnode,
        vlan=body.vlan,
        at=at,
    )
    note(reason=body.reason, ticket=body.ticket, selector=sel.to_json())
    stopped = estop.stop(ctx(), toolkit(), sel, require(), body.reason, body.ticket)
    return jsonify(_result(stopped))


@api.get("/slices/<ref>/estop")
@document(
    "EStopRecord",
    "The slice's latest emergency stop (its owner and project see who, why and the "
    "ticket; operators also the isolation report and the forensic snapshot)",
    param="ref",
    tag="estop",
)
@guard(Action.SLICE_READ, per_target=True)
def show_estop(ref: str) -> ResponseReturnValue:
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_READ)
        row = estop.latest(s, sl.id)
        if row is None:
            raise NotFound(f"slice {sl.name} has never been emergency-stopped")
        return jsonify(estop.describe(row, staff=may(Action.SLICE_ESTOP)))


@api.post("/slices/<ref>/estop/lift")
@document(
    "EStopRecord",
    "Lift the emergency stop: circuits back, nodes thawed, gateway open, ACTIVE again",
    param="ref",
    tag="estop",
    body="LiftRequest",
)
@guard(Action.SLICE_ESTOP)
def lift_estop(ref: str) -> ResponseReturnValue:
    body = parse_body(LiftRequest)
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_ESTOP)
        ref_id = str(sl.id)
    note(reason=body.reason)
    return jsonify(estop.lift(ctx(), toolkit(), ref_id, require(), body.reason))


@api.post("/slices/<ref>/estop/hold")
@document(
    "EStopRecord",
    "Forensic hold on (kept past its window's end) or off (torn down at its end as usual)",
    param="ref",
    tag="estop",
    body="HoldRequest",
)
@guard(Action.SLICE_ESTOP)
def hold_estop(ref: str) -> ResponseReturnValue:
    body = parse_body(HoldRequest)
    with read_session() as s:
        sl = slice_for(s, ref, Action.SLICE_ESTOP)
        ref_id = str(sl.id)
    note(hold=body.hold)
    return jsonify(estop.set_hold(ctx(), ref_id, require(), body.hold))
