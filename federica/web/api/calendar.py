"""Calendars of resources, maintenance windows (operators) and project quotas over REST."""

from __future__ import annotations

import datetime as dt

from flask import jsonify
from flask.typing import ResponseReturnValue

from federica.aaa import accounts
from federica.aaa.policy import Action
from federica.errors import FieldError, InvalidInput
from federica.slices import maintenance, quota
from federica.web.api import api
from federica.web.api.models import MaintenanceRequest, QuotaRequest, given, parse_body
from federica.web.api.openapi import document
from federica.web.api.slices import _time_arg
from federica.web.auth import guard, note
from federica.web.context import ctx, read_session, write_session
from federica.web.targets import project_for

WEEK = dt.timedelta(days=7)


def _range() -> tuple[dt.datetime, dt.datetime]:
    start, end = _time_arg("from"), _time_arg("to")
    if start is None:  # the week before `to`, or from now
        start = end - WEEK if end is not None else ctx().now()
    end = end or start + WEEK
    if end <= start:
        raise InvalidInput([FieldError("to", "must be after from")])
    return start, end


@api.get("/calendar/links/<name>")
@document(
    "Calendar",
    "Who holds a link when (?from=&to=, default the next 7 days), and its maintenance",
    param="name",
    tag="calendar",
    query=("from:string", "to:string"),
)
@guard(Action.CALENDAR_READ)
def link_calendar(name: str) -> ResponseReturnValue:
    start, end = _range()
    with read_session() as s:
        return jsonify(maintenance.resource_calendar(s, "link", name, start, end))


@api.get("/calendar/hosts/<name>")
@document(
    "Calendar",
    "Who holds a V-node when (?from=&to=, default the next 7 days), and its maintenance",
    param="name",
    tag="calendar",
    query=("from:string", "to:string"),
)
@guard(Action.CALENDAR_READ)
def host_calendar(name: str) -> ResponseReturnValue:
    start, end = _range()
    with read_session() as s:
        return jsonify(maintenance.resource_calendar(s, "host", name, start, end))


@api.get("/maintenance")
@document("MaintenanceList", "Maintenance windows not over yet", tag="calendar")
@guard(Action.MAINTENANCE_READ)
def list_maintenance() -> ResponseReturnValue:
    with read_session() as s:
        return jsonify([maintenance.describe(m) for m in maintenance.upcoming(s, ctx().now())])


@api.post("/maintenance")
@document(
    "Maintenance",
    "Block a PoP, device, link or V-node for maintenance (operators); lists the slices "
    "that already hold it then",
    tag="calendar",
    body="MaintenanceRequest",
    status=201,
)
@guard(Action.MAINTENANCE_MANAGE)
def create_maintenance() -> ResponseReturnValue:
    body = parse_body(MaintenanceRequest)
    with write_session() as s:
        mw, slices = maintenance.create(
            s,
            target_kind=body.target_kind,
            target=body.target,
            start=body.start,
            end=body.end,
            reason=body.reason,
            now=ctx().now(),
        )
        return jsonify(maintenance.describe(mw) | {"affected_slices": slices}), 201


@api.delete("/maintenance/<int:window_id>")
@document("Cancelled", "Cancel a maintenance window", param="window_id", tag="calendar")
@guard(Action.MAINTENANCE_MANAGE)
def delete_maintenance(window_id: int) -> ResponseReturnValue:
    with write_session() as s:
        maintenance.cancel(s, window_id, ctx().now())
        return jsonify({"id": window_id, "cancelled": True})


@api.put("/quotas/<project>")
@document(
    "Quota",
    "Set a project's limits (operators): any of vcpu_hours_per_month, max_nodes, "
    "max_bandwidth_mbps (a whole number, or null: unlimited); keys left out stay",
    param="project",
    tag="calendar",
    body="QuotaRequest",
)
@guard(Action.QUOTA_MANAGE)
def set_quota(project: str) -> ResponseReturnValue:
    body = given(parse_body(QuotaRequest))
    note(project=project, **body)
    with write_session() as s:
        accounts.get_project(s, project)
        quota.set_limits(s, project, quota.parse_limits(body, quota.limits_of(s, project)))
    return show_quota(project)


@api.get("/quotas/<project>")
@document(
    "Quota", "A project's limits and its use (this month; now)", param="project", tag="calendar"
)
@guard(Action.QUOTA_READ, per_target=True)
def show_quota(project: str) -> ResponseReturnValue:
    project_for(project, Action.QUOTA_READ)
    with read_session() as s:
        accounts.get_project(s, project)
        return jsonify(quota.usage(s, project, ctx().now()))
