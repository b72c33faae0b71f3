"""Alarms as LibreNMS's users want them: most severe first, their age, the slices they
touch, filters, acknowledge (who, when); suppressed ones shown apart, not hidden."""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from federica.aaa.policy import Action
from federica.alarms import service as alarms
from federica.alarms.models import Alarm
from federica.alarms.severity import LEVELS, rank, severity
from federica.web.auth import current, guard
from federica.web.context import ctx, read_session, write_session
from federica.web.noc import noc

STATES = ("open", "all")


def age(since: dt.datetime, now: dt.datetime) -> str:
    s = max(0, int((now - since).total_seconds()))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 2 * 86400:
        return f"{s // 3600} h"
    return f"{s // 86400} d"


def row(a: Alarm, now: dt.datetime) -> dict[str, Any]:
    return {**alarms.describe(a), "severity": severity(a.kind), "age": age(a.raised_at, now)}


@noc.context_processor
def _alarm_count() -> dict[str, object]:
    """Every NOC page's header shows how many alarms are open (not suppressed)."""
    if not request.endpoint or request.endpoint == "noc.static" or current() is None:
        return {}
    with read_session() as s:
        counts = alarms.open_counts(s)
    return {"open_alarms": sum(n for (_, suppressed), n in counts.items() if not suppressed)}


def _filters() -> tuple[dict[str, str], dict[str, str]]:
    wanted = {k: request.args.get(k, "").strip() for k in ("state", "severity", "kind", "device")}
    errors = {}
    if wanted["state"] and wanted["state"] not in STATES:
        errors["f-state"] = f"{wanted['state']!r} is not one of {', '.join(STATES)}"
        wanted["state"] = ""
    if wanted["severity"] and wanted["severity"] not in LEVELS:
        errors["f-severity"] = f"{wanted['severity']!r} is not one of {', '.join(LEVELS)}"
        wanted["severity"] = ""
    return wanted, errors


def _selected(wanted: dict[str, str]) -> tuple[list[Alarm], list[Alarm], list[str]]:
    with read_session() as s:
        every = alarms.listing(s, include_cleared=wanted["state"] == "all")
        s.expunge_all()
    kinds = sorted({a.kind for a in every})
    chosen = [
        a
        for a in every
        if (not wanted["severity"] or severity(a.kind) == wanted["severity"])
        and (not wanted["kind"] or a.kind == wanted["kind"])
        and (not wanted["device"] or wanted["device"] in (a.device or "", a.link or ""))
    ]
    chosen.sort(key=lambda a: (a.cleared_at is not None, rank(a.kind), -a.raised_at.timestamp()))
    return (
        [a for a in chosen if not a.suppressed],
        [a for a in chosen if a.suppressed],
        kinds,
    )


@noc.get("/alarms")
@guard(Action.MONITORING_READ)
def alarm_list() -> ResponseReturnValue:
    wanted, errors = _filters()
    shown, suppressed, kinds = _selected(wanted)
    now = ctx().now()
    page = render_template(
        "noc/alarms.html",
        alarms=[row(a, now) for a in shown],
        suppressed=[row(a, now) for a in suppressed],
        filters=wanted,
        kinds=kinds,
        levels=LEVELS,
        errors=errors,
    )
    return page, 422 if errors else 200


@noc.get("/alarms.json")
@guard(Action.MONITORING_READ)
def alarm_list_json() -> ResponseReturnValue:
    wanted, errors = _filters()
    if errors:
        return {"status": 422, "errors": errors}, 422
    shown, suppressed, _ = _selected(wanted)
    now = ctx().now()
    return jsonify(
        {"alarms": [row(a, now) for a in shown], "suppressed": [row(a, now) for a in suppressed]}
    )


@noc.post("/alarms/<int:alarm_id>/ack")
@guard(Action.ALARM_ACK)
def acknowledge(alarm_id: int) -> ResponseReturnValue:
    who = current()
    assert who is not None
    with write_session() as s:
        alarms.acknowledge(s, alarm_id, who.username, ctx().now())
    back = request.form.get("next", "")
    target = back if back.startswith("/noc") else url_for("noc.alarm_list")
    return redirect(target, 303)
