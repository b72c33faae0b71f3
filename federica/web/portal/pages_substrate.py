"""The substrate: PoPs and links drawn with the capacity free over a chosen window, the
V-nodes' CPU and RAM, and the calendar of one link or V-node."""

from __future__ import annotations

import datetime as dt

from flask import render_template, request
from flask.typing import ResponseReturnValue

from federica import inputs
from federica.aaa.policy import Action
from federica.errors import FieldError, InvalidInput
from federica.slices import availability, maintenance
from federica.slices.calendar import Interval
from federica.slices.request import parse_instant
from federica.web.auth import guard
from federica.web.context import ctx, read_session
from federica.web.portal import figures, portal
from federica.web.portal.forms import local_minutes

MAX_HOURS = 24 * 90
MAX_DAYS = 62


def _this_minute() -> dt.datetime:
    return ctx().now().replace(second=0, microsecond=0)


def _instant(name: str, default: dt.datetime) -> dt.datetime:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    try:
        return parse_instant(raw if raw[-1:] == "Z" or "+" in raw[10:] else raw + "Z")
    except ValueError as exc:
        raise InvalidInput([FieldError(name, str(exc))]) from None


def _whole(name: str, default: int, top: int) -> int:
    raw = request.args.get(name, "").strip() or str(default)
    return inputs.whole(raw, name, 1, top)


@portal.get("/substrate")
@guard(Action.SUBSTRATE_READ)
def substrate() -> ResponseReturnValue:
    errors: dict[str, str] = {}
    try:
        start = _instant("at", _this_minute())
        hours = _whole("hours", 1, MAX_HOURS)
    except InvalidInput as exc:
        errors = {e.field: e.message for e in exc.errors}
        start, hours = _this_minute(), 1
    window = Interval(start, start + dt.timedelta(hours=hours))
    with read_session() as s:
        av = availability.over(s, window)
        drawing = figures.free_capacity(s, av)
    page = render_template(
        "portal/substrate.html",
        av=av,
        drawing=drawing,
        at=local_minutes(start.isoformat()),
        hours=hours,
        errors=errors,
    )
    return page, 422 if errors else 200


@portal.get("/substrate/calendar/<kind>/<name>")
@guard(Action.CALENDAR_READ)
def calendar(kind: str, name: str) -> ResponseReturnValue:
    errors: dict[str, str] = {}
    try:
        start = _instant("from", _this_minute().replace(hour=0, minute=0))
        days = _whole("days", 7, MAX_DAYS)
    except InvalidInput as exc:
        errors = {e.field: e.message for e in exc.errors}
        start, days = _this_minute().replace(hour=0, minute=0), 7
    end = start + dt.timedelta(days=days)
    with read_session() as s:
        cal = maintenance.resource_calendar(s, kind, name, start, end)
    span = (end - start).total_seconds()

    def bar(a: str, b: str) -> tuple[float, float]:
        """Where a booking sits on the 0 to 1000 wide timeline."""
        lo = max(dt.datetime.fromisoformat(a), start)
        hi = min(dt.datetime.fromisoformat(b), end)
        x = (lo - start).total_seconds() / span * 1000
        return round(x, 1), round(max((hi - lo).total_seconds() / span * 1000, 2), 1)

    ticks = [(round(i / days * 1000, 1), start + dt.timedelta(days=i)) for i in range(days)]
    page = render_template(
        "portal/calendar.html",
        kind=kind,
        name=name,
        cal=cal,
        bar=bar,
        ticks=ticks,
        start=start,
        end=end,
        start_value=local_minutes(start.isoformat()),
        days=days,
        errors=errors,
    )
    return page, 422 if errors else 200
