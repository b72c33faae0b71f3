"""What operators manage besides alarms: maintenance windows, projects' quotas, the audit
log, and (admins) people's roles and whether their accounts are active. The same services
and checks as the REST API and the CLI; each change audited like any request."""

from __future__ import annotations

from typing import Any

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from federica import inputs
from federica.aaa import accounts, audit
from federica.aaa.models import Project, User
from federica.aaa.policy import Action
from federica.aaa.roles import Role
from federica.errors import FieldError, InvalidInput
from federica.slices import maintenance, quota
from federica.slices.models import MaintenanceTarget
from federica.web.auth import guard, note
from federica.web.context import ctx, read_session, write_session
from federica.web.noc import noc

AUDIT_PAGE = 100


def _form_errors(exc: InvalidInput) -> dict[str, str]:
    return {f"f-{e.field}": e.message for e in exc.errors}


@noc.get("/maintenance")
@guard(Action.MAINTENANCE_MANAGE)
def maintenance_page() -> ResponseReturnValue:
    return _maintenance()


def _maintenance(
    errors: dict[str, str] | None = None, affected: list[str] | None = None
) -> ResponseReturnValue:
    with read_session() as s:
        windows = [maintenance.describe(m) for m in maintenance.upcoming(s, ctx().now())]
    page = render_template(
        "noc/maintenance.html",
        windows=windows,
        kinds=[k.value for k in MaintenanceTarget],
        form=request.form if errors else {},
        errors=errors or {},
        affected=affected,
    )
    return page, 422 if errors else 200


@noc.post("/maintenance")
@guard(Action.MAINTENANCE_MANAGE)
def create_maintenance() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip() for k in
            ("target_kind", "target", "start", "end", "reason")}  # fmt: skip
    note(maintenance=form)
    try:
        with write_session() as s:
            mw, slices = maintenance.create(
                s,
                target_kind=form["target_kind"],
                target=form["target"],
                start=_utc(form["start"]) if form["start"] else "now",
                end=_utc(form["end"]),
                reason=form["reason"],
                now=ctx().now(),
            )
    except InvalidInput as exc:
        return _maintenance(_form_errors(exc))
    note(window_id=mw.id)
    if slices:  # they keep what they hold: the operator decides, so show them
        return _maintenance(affected=slices)
    return redirect(url_for("noc.maintenance_page"), 303)


def _utc(value: str) -> str:
    """A datetime-local field's value is UTC on these pages (as every time shown)."""
    return value if not value or value[-1:] == "Z" or "+" in value[10:] else value + "Z"


@noc.post("/maintenance/<int:window_id>/cancel")
@guard(Action.MAINTENANCE_MANAGE)
def cancel_maintenance(window_id: int) -> ResponseReturnValue:
    with write_session() as s:
        maintenance.cancel(s, window_id, ctx().now())
    return redirect(url_for("noc.maintenance_page"), 303)


@noc.get("/quotas")
@guard(Action.QUOTA_MANAGE)
def quotas_page() -> ResponseReturnValue:
    return _quotas()


def _quotas(errors: dict[str, str] | None = None, failed: str = "") -> ResponseReturnValue:
    with read_session() as s:
        names = list(s.scalars(select(Project.name).order_by(Project.name)))
        rows = [quota.usage(s, name, ctx().now()) for name in names]
    page = render_template(
        "noc/quotas.html", rows=rows, errors=errors or {}, failed=failed, form=request.form
    )
    return page, 422 if errors else 200


@noc.post("/quotas/<project>")
@guard(Action.QUOTA_MANAGE)
def set_quota(project: str) -> ResponseReturnValue:
    body: dict[str, Any] = {}
    errors: list[FieldError] = []
    for name in ("vcpu_hours_per_month", "max_nodes", "max_bandwidth_mbps"):
        raw = request.form.get(name, "").strip()
        if not raw:
            body[name] = None  # an empty field: no limit
            continue
        try:
            body[name] = inputs.whole(raw, name, 0, 2**31 - 1)
        except InvalidInput as exc:
            errors.extend(exc.errors)
    note(project=project, **body)
    try:
        if errors:
            raise InvalidInput(errors)
        with write_session() as s:
            accounts.get_project(s, project)
            quota.set_limits(s, project, quota.parse_limits(body, quota.limits_of(s, project)))
    except InvalidInput as exc:
        return _quotas(_form_errors(exc), failed=project)
    return redirect(url_for("noc.quotas_page"), 303)


@noc.get("/audit")
@guard(Action.AUDIT_READ)
def audit_page() -> ResponseReturnValue:
    wanted = {k: request.args.get(k, "").strip() for k in ("user", "slice", "action")}
    with read_session() as s:
        entries = audit.search(
            s,
            slice_ref=wanted["slice"] or None,
            user=wanted["user"] or None,
            action=wanted["action"] or None,
            limit=AUDIT_PAGE,
        )
        rows = [audit.describe(e) for e in entries]
    return render_template("noc/audit.html", rows=rows, filters=wanted, limit=AUDIT_PAGE)


@noc.get("/people")
@guard(Action.USER_MANAGE)
def people_page() -> ResponseReturnValue:
    return _people()


def _people(errors: dict[str, str] | None = None, failed: str = "") -> ResponseReturnValue:
    with read_session() as s:
        users = [accounts.describe_user(u) for u in s.scalars(select(User).order_by(User.username))]
        projects = [
            accounts.describe_project(p) for p in s.scalars(select(Project).order_by(Project.name))
        ]
    page = render_template(
        "noc/people.html",
        users=users,
        projects=projects,
        roles=[r.value for r in Role],
        errors=errors or {},
        failed=failed,
    )
    return page, 422 if errors else 200


@noc.post("/people/<username>")
@guard(Action.USER_MANAGE)
def change_person(username: str) -> ResponseReturnValue:
    role = request.form.get("role", "").strip() or None
    active_raw = request.form.get("active", "").strip()
    note(username=username, role=role, active=active_raw or None)
    try:
        if active_raw not in ("", "yes", "no"):
            raise InvalidInput([FieldError("active", f"{active_raw!r} is not yes or no")])
        with write_session() as s:
            user = accounts.get_user(s, username)
            accounts.update_user(
                s,
                user,
                now=ctx().now(),
                role=role,
                active=None if not active_raw else active_raw == "yes",
            )
    except InvalidInput as exc:
        return _people(_form_errors(exc), failed=username)
    return redirect(url_for("noc.people_page"), 303)
