"""Projects: members (leads manage them), quota use and accounting."""

from __future__ import annotations

from flask import redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from federica.aaa import accounting, accounts
from federica.aaa.policy import Action, decide
from federica.errors import FedericaError, FieldError, InvalidInput
from federica.slices import quota
from federica.web.auth import guard, note, require
from federica.web.context import ctx, read_session, write_session
from federica.web.portal import portal
from federica.web.targets import project_for, visible_projects


@portal.get("/projects")
@guard(Action.PROJECT_READ, per_target=True)
def projects() -> ResponseReturnValue:
    with read_session() as s:
        rows = [accounts.describe_project(p) for p in s.scalars(visible_projects())]
    return render_template("portal/projects.html", projects=rows)


@portal.get("/projects/<name>")
@guard(Action.PROJECT_READ, per_target=True)
def project_page(name: str) -> ResponseReturnValue:
    return _project_page(name)


def _project_page(
    name: str, errors: dict[str, str] | None = None, status: int = 200
) -> ResponseReturnValue:
    project_for(name, Action.PROJECT_READ)
    who = require()
    now = ctx().now()
    month = request.args.get("month", f"{now:%Y-%m}")
    try:
        period = accounting.month_period(month)
    except ValueError:
        errors = (errors or {}) | {"month": "a month such as 2026-11"}
        month, period = f"{now:%Y-%m}", accounting.month_period(f"{now:%Y-%m}")
        status = 422
    with read_session() as s:
        project = accounts.describe_project(accounts.get_project(s, name))
        use = quota.usage(s, name, now)
        report = accounting.report(s, period, frozenset({name}))
    page = render_template(
        "portal/project.html",
        project=project,
        use=use,
        report=report,
        totals=report.totals().get(name, dict.fromkeys(accounting.UNITS, 0.0)),
        units=accounting.UNITS,
        month=month,
        manage=decide(who, Action.PROJECT_MEMBERS, project=name).allowed,
        errors=errors or {},
    )
    return page, status


@portal.post("/projects/<name>/members")
@guard(Action.PROJECT_MEMBERS, per_target=True)
def set_member(name: str) -> ResponseReturnValue:
    project_for(name, Action.PROJECT_MEMBERS)
    username = request.form.get("username", "").strip()
    role = request.form.get("role", "member")
    note(project=name, username=username, role=role)
    try:
        if not username:
            raise InvalidInput([FieldError("username", "required")])
        with write_session() as s:
            project = accounts.get_project(s, name)
            accounts.set_member(s, project, accounts.get_user(s, username), role)
    except FedericaError as exc:
        if exc.status in (401, 403):
            raise
        field = exc.errors[0].field if isinstance(exc, InvalidInput) else "username"
        return _project_page(name, errors={field: exc.detail}, status=exc.status)
    return redirect(url_for("portal.project_page", name=name), 303)


@portal.post("/projects/<name>/members/<username>/remove")
@guard(Action.PROJECT_MEMBERS, per_target=True)
def remove_member(name: str, username: str) -> ResponseReturnValue:
    project_for(name, Action.PROJECT_MEMBERS)
    note(project=name, username=username)
    with write_session() as s:
        project = accounts.get_project(s, name)
        accounts.remove_member(s, project, accounts.get_user(s, username))
    return redirect(url_for("portal.project_page", name=name), 303)
