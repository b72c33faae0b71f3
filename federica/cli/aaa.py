"""federica login | logout | whoami | user … | project … | token … | audit … | accounting"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import sys

import click
from sqlalchemy import select

from federica.aaa import accounting, accounts, audit, tokens
from federica.aaa.login import Limits, check_password_login
from federica.aaa.models import Project, User
from federica.aaa.policy import Action, allowed_projects
from federica.cli import CliState, cli, pass_state
from federica.cli.auth import (
    allow,
    audited,
    echo_json,
    forget_token,
    store_token,
    stored_token,
    unix_user,
)
from federica.cli.params import DAYS, ID, VLAN
from federica.db import transaction
from federica.errors import FieldError, InvalidInput, Unauthorized
from federica.slices.calendar import Interval
from federica.slices.request import parse_instant


def _read_secret(prompt: str, from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt(prompt, hide_input=True))


@cli.command()
@click.option("--username", help="Your account (asked if not given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option(
    "--token-stdin",
    is_flag=True,
    help="Store an API token read from standard input instead (e.g. one from the "
    "browser's OIDC login).",
)
@click.option("--days", type=click.IntRange(1, 3650), help="Token lifetime (default: facility's).")
@pass_state
def login(
    state: CliState, username: str | None, password_stdin: bool, token_stdin: bool, days: int | None
) -> None:
    """Sign in: keep an API token for the CLI in ~/.config/federica (0600)."""
    now = state.context.now()
    settings = state.settings
    if token_stdin:
        secret = sys.stdin.readline().strip()
        with transaction(state.context.read_sessions) as s:
            user = tokens.resolve(s, secret, now).user.username
    else:
        name = username or str(click.prompt("username"))
        password = _read_secret("password", password_stdin)
        user_id = check_password_login(
            state.context.sessions,
            name,
            password,
            address=f"cli:{unix_user()}",
            now=now,
            limits=Limits(
                window=dt.timedelta(minutes=settings.login_window_min),
                per_username=settings.login_max_failures,
                per_address=settings.login_max_failures_per_address,
            ),
        )
        with transaction(state.context.sessions) as s:
            owner = accounts.get_user(s, user_id)
            _, secret = tokens.issue(
                s,
                owner,
                name=f"cli {unix_user()}@{socket.gethostname()}"[:64],
                scopes=tokens.parse_scopes(None, owner),
                lifetime=dt.timedelta(days=days or settings.token_default_days),
                max_lifetime=dt.timedelta(days=settings.token_max_days),
                now=now,
            )
            user = owner.username
    path = store_token(secret)
    click.echo(f"signed in as {user}; token kept in {path}")


@cli.command()
@pass_state
def logout(state: CliState) -> None:
    """Revoke the CLI's token (and every token made with it) and forget it."""
    secret = stored_token()
    if secret is not None:
        # An expired or revoked token is only forgotten.
        with transaction(state.context.sessions) as s, contextlib.suppress(Unauthorized):
            tokens.revoke(s, tokens.resolve(s, secret, state.context.now()), state.context.now())
    click.echo("signed out" if forget_token() else "not signed in")


@cli.command()
@pass_state
def whoami(state: CliState) -> None:
    """Who the CLI acts as, with which projects and scopes."""
    who = state.principal
    scopes = " ".join(sorted(s.value for s in who.scopes)) if who.scopes is not None else "all"
    projects = ", ".join(sorted(who.projects)) or "none"
    click.echo(f"{who.username} ({who.role.value}); projects: {projects}; scopes: {scopes}")


@cli.group(name="user")
def user_group() -> None:
    """Accounts (administrators)."""


@user_group.command(name="add")
@click.argument("username")
@click.option(
    "--role", type=click.Choice(["researcher", "operator", "admin"]), default="researcher"
)
@click.option("--name", "display_name", default="", help="Full name.")
@click.option("--email", default="")
@click.option("--password-stdin", is_flag=True, help="Set a password read from standard input.")
@click.option("--password-prompt", is_flag=True, help="Set a password, asked twice.")
@pass_state
def user_add(
    state: CliState,
    username: str,
    role: str,
    display_name: str,
    email: str,
    password_stdin: bool,
    password_prompt: bool,
) -> None:
    """Create an account (no password: it signs in through the identity provider)."""
    password = None
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif password_prompt:
        password = str(click.prompt("password", hide_input=True, confirmation_prompt=True))
    with audited(state, Action.USER_MANAGE, f"user {username}") as note:
        allow(state, Action.USER_MANAGE)
        note["detail"]["role"] = role
        with transaction(state.context.sessions) as s:
            user = accounts.create_user(
                s, username, role=role, password=password, display_name=display_name, email=email
            )
            click.echo(f"user {user.username} ({user.role.value}) created")


@user_group.command(name="list")
@pass_state
def user_list(state: CliState) -> None:
    allow(state, Action.USER_READ)
    with transaction(state.context.read_sessions) as s:
        for u in s.scalars(select(User).order_by(User.username)):
            d = accounts.describe_user(u)
            projects = ", ".join(f"{p} ({r})" for p, r in d["projects"].items()) or "-"
            state_ = "active" if u.active else "disabled"
            click.echo(f"{u.username:<20} {u.role.value:<10} {state_:<8} {projects}")


@user_group.command(name="set")
@click.argument("username")
@click.option("--role", type=click.Choice(["researcher", "operator", "admin"]))
@click.option("--active/--disabled", default=None, help="Enable or disable the account.")
@click.option("--password-stdin", is_flag=True, help="A new password from standard input.")
@pass_state
def user_set(
    state: CliState, username: str, role: str | None, active: bool | None, password_stdin: bool
) -> None:
    """Change an account's role, state or password. A new password or --disabled revokes
    every token of the account; a new role narrows them to the scopes it allows."""
    password = sys.stdin.readline().rstrip("\n") if password_stdin else None
    with audited(state, Action.USER_MANAGE, f"user {username}") as note:
        allow(state, Action.USER_MANAGE)
        note["detail"] |= {"role": role, "active": active, "password": password is not None}
        with transaction(state.context.sessions) as s:
            u = accounts.update_user(
                s,
                accounts.get_user(s, username),
                now=state.context.now(),
                role=role,
                active=active,
                password=password,
            )
            click.echo(f"user {u.username}: {u.role.value}, {'active' if u.active else 'disabled'}")


@user_group.command(name="link")
@click.argument("username")
@click.argument("issuer")
@click.argument("subject")
@pass_state
def user_link(state: CliState, username: str, issuer: str, subject: str) -> None:
    """Let USERNAME sign in through the identity provider ISSUER's account SUBJECT (its
    `sub` claim), e.g. when a local account's owner moves to the federated login."""
    with audited(state, Action.USER_MANAGE, f"user {username}") as note:
        allow(state, Action.USER_MANAGE)
        note["detail"] |= {"issuer": issuer, "subject": subject}
        with transaction(state.context.sessions) as s:
            accounts.link_identity(s, accounts.get_user(s, username), issuer, subject)
        click.echo(f"{username} now also signs in as {subject} at {issuer}")


@cli.group(name="project")
def project_group() -> None:
    """Projects and their members."""


@project_group.command(name="add")
@click.argument("name")
@click.option("--lead", help="The project's lead (a username).")
@click.option("--description", default="")
@pass_state
def project_add(state: CliState, name: str, lead: str | None, description: str) -> None:
    """Create a project (administrators)."""
    with audited(state, Action.PROJECT_MANAGE, f"project {name}") as note:
        allow(state, Action.PROJECT_MANAGE)
        note["project"] = name
        with transaction(state.context.sessions) as s:
            accounts.create_project(s, name, description=description, lead=lead)
        click.echo(f"project {name} created" + (f", led by {lead}" if lead else ""))


@project_group.command(name="list")
@pass_state
def project_list(state: CliState) -> None:
    """Projects you belong to (staff: all) and their members."""
    who = allow(state, Action.ACCOUNT_READ)
    visible = allowed_projects(who)
    with transaction(state.context.read_sessions) as s:
        query = select(Project).order_by(Project.name)
        if visible is not None:
            query = query.where(Project.name.in_(visible))
        for p in s.scalars(query):
            d = accounts.describe_project(p)
            members = ", ".join(f"{m['username']} ({m['role']})" for m in d["members"]) or "-"
            click.echo(f"{p.name:<20} {members}")


@project_group.command(name="member")
@click.argument("name")
@click.argument("username")
@click.option("--role", type=click.Choice(["member", "lead"]), default="member")
@click.option("--remove", is_flag=True, help="Remove them instead.")
@pass_state
def project_member(state: CliState, name: str, username: str, role: str, remove: bool) -> None:
    """Add USERNAME to project NAME (or change their role, or --remove them)."""
    with audited(state, Action.PROJECT_MEMBERS, f"project {name} member {username}") as note:
        allow(state, Action.PROJECT_MEMBERS, project=name)
        note["project"] = name
        note["detail"] |= {"username": username, "role": role, "remove": remove}
        with transaction(state.context.sessions) as s:
            project = accounts.get_project(s, name)
            user = accounts.get_user(s, username)
            if remove:
                accounts.remove_member(s, project, user)
                click.echo(f"{user.username} removed from {name}")
            else:
                accounts.set_member(s, project, user, role)
                click.echo(f"{user.username} is a {role} of {name}")


@cli.group(name="token")
def token_group() -> None:
    """Your API tokens (for scripts and curl)."""


@token_group.command(name="create")
@click.option("--name", default="api", show_default=True)
@click.option("--scopes", help="Space- or comma-separated: read slices projects operate admin.")
@click.option("--days", type=DAYS, help="Lifetime in days (default: the facility's).")
@pass_state
def token_create(state: CliState, name: str, scopes: str | None, days: int | None) -> None:
    """Create a token for yourself; it is printed once and never again."""
    who = state.principal
    if who.user_id is None:
        raise InvalidInput(
            [FieldError("", "the operators' console has no account; `federica login` first")]
        )
    with audited(state, Action.TOKEN_OWN, "token") as note:
        allow(state, Action.TOKEN_OWN)
        now = state.context.now()
        with transaction(state.context.sessions) as s:
            user = accounts.get_user(s, who.user_id)
            # Made with the CLI's own token: within its scopes and its life.
            parent = tokens.get(s, who.token_id) if who.token_id is not None else None
            token, secret = tokens.issue(
                s,
                user,
                name=name,
                scopes=tokens.child_scopes(scopes, user, parent),
                lifetime=tokens.child_lifetime(
                    parent,
                    dt.timedelta(days=days) if days is not None else None,
                    dt.timedelta(days=state.settings.token_default_days),
                    now,
                ),
                max_lifetime=dt.timedelta(days=state.settings.token_max_days),
                now=now,
                parent=parent,
            )
            note["detail"] |= {"token_id": token.id, "prefix": token.prefix}
            click.echo(secret)
            click.echo(
                f"token {token.id} ({token.scopes}) until {token.expires_at:%Y-%m-%d %H:%M} UTC;"
                " it is not shown again",
                err=True,
            )


@token_group.command(name="list")
@pass_state
def token_list(state: CliState) -> None:
    who = allow(state, Action.ACCOUNT_READ)
    with transaction(state.context.read_sessions) as s:
        for t in tokens.of_user(s, who.user_id or 0):
            d = tokens.describe(t, state.context.now())
            click.echo(
                f"{t.id:>5}  {t.prefix}…  {d['state']:<8} {t.scopes:<30} "
                f"until {t.expires_at:%Y-%m-%d}  {t.name}"
            )


@token_group.command(name="revoke")
@click.argument("token_id", type=ID)
@pass_state
def token_revoke(state: CliState, token_id: int) -> None:
    with audited(state, Action.TOKEN_OWN, f"token {token_id}"):
        who = allow(state, Action.TOKEN_OWN)
        with transaction(state.context.sessions) as s:
            token = tokens.get(s, token_id)
            if token.user_id != who.user_id:
                allow(state, Action.USER_MANAGE)
            tokens.revoke(s, token, state.context.now())
        click.echo(f"token {token_id} revoked (and every token made with it)")


def _instant(raw: str | None, flag: str) -> dt.datetime | None:
    if raw is None:
        return None
    try:
        return parse_instant(raw)
    except ValueError as exc:
        raise InvalidInput([FieldError(flag, str(exc))]) from None


@cli.group(name="audit", invoke_without_command=True)
@click.option("--slice", "slice_ref", help="A slice (id or name).")
@click.option("--user", help="Who acted (username, or local:<unix user>).")
@click.option("--vlan", type=click.IntRange(1, 4094), help="Slices that held this VLAN tag.")
@click.option("--link", help="… on this link (e.g. mil-prg).")
@click.option("--port", help="… on this port (device:port).")
@click.option("--since", help="ISO 8601 time.")
@click.option("--until", help="ISO 8601 time.")
@click.option("--action", help="e.g. slice.change")
@click.option("--limit", type=click.IntRange(1, 5000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def audit_group(
    ctx: click.Context,
    slice_ref: str | None,
    user: str | None,
    vlan: int | None,
    link: str | None,
    port: str | None,
    since: str | None,
    until: str | None,
    action: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The audit log, newest first (operators); `audit held` answers who held a VLAN."""
    if ctx.invoked_subcommand is not None:
        return
    state = ctx.find_object(CliState)
    assert state is not None
    allow(state, Action.AUDIT_READ)
    with transaction(state.context.read_sessions) as s:
        entries = [
            audit.describe(e)
            for e in audit.search(
                s,
                slice_ref=slice_ref,
                user=user,
                vlan=vlan,
                place=audit.Place(link=link, port=port),
                since=_instant(since, "--since"),
                until=_instant(until, "--until"),
                action=action,
                limit=limit,
            )
        ]
    if as_json:
        echo_json(entries)
        return
    for e in entries:
        slice_ = f" slice {e['slice_id']}" if e["slice_id"] else ""
        click.echo(
            f"{e['at'][:19]}  {e['actor']:<16} {e['via']:<6} {e['action']:<20} "
            f"{e['result']:<8}{slice_} {e['target']}"
        )


@audit_group.command(name="held")
@click.option("--vlan", type=VLAN, required=True)
@click.option("--link", help="A link by name (either end order).")
@click.option("--port", help="A port (device:port).")
@click.option("--at", "at_", help="ISO 8601 time (default now).")
@click.option("--json", "as_json", is_flag=True)
@pass_state
def audit_held(
    state: CliState,
    vlan: int,
    link: str | None,
    port: str | None,
    at_: str | None,
    as_json: bool,
) -> None:
    """Who held VLAN --vlan on --link (or --port) at --at."""
    allow(state, Action.AUDIT_READ)
    if (link is None) == (port is None):
        raise InvalidInput([FieldError("--link", "give --link or --port (one of them)")])
    at = _instant(at_, "--at") or state.context.now()
    with transaction(state.context.read_sessions) as s:
        rows = audit.held_by(s, vlan, audit.Place(link=link, port=port), at)
    if as_json:
        echo_json(rows)
        return
    where = f"link {link}" if link else f"port {port}"
    if not rows:
        click.echo(f"nobody held VLAN {vlan} on {where} at {at:%Y-%m-%d %H:%M} UTC")
    for r in rows:
        who = r["user"] or "the facility (console)"
        click.echo(
            f"VLAN {vlan} on {where} at {at:%Y-%m-%d %H:%M} UTC: slice {r['slice_id']} "
            f"{r['slice']!r} of project {r['project'] or '-'}, booked by {who}"
            f"{' <' + r['email'] + '>' if r['email'] else ''}, held {r['held_from'][:16]} → "
            f"{r['held_until'][:16]}"
        )


@cli.command(name="accounting")
@click.option("--month", help="YYYY-MM (default this month).")
@click.option("--from", "from_", help="ISO 8601 (with --to, instead of --month).")
@click.option("--to", help="ISO 8601.")
@click.option("--project", help="Only this project.")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table")
@pass_state
def accounting_cmd(
    state: CliState,
    month: str | None,
    from_: str | None,
    to: str | None,
    project: str | None,
    fmt: str,
) -> None:
    """Resource use per slice and per project: node-hours, vCPU-hours, RAM GB-hours,
    link Mb/s-hours."""
    who = allow(state, Action.ACCOUNTING_READ, project=project) if project else state.principal
    if from_ or to:
        start, end = _instant(from_, "--from"), _instant(to, "--to")
        if start is None or end is None or end <= start:
            raise InvalidInput([FieldError("--to", "give --from and a later --to")])
        period = Interval(start, end)
    else:
        try:
            period = accounting.month_period(month or f"{state.context.now():%Y-%m}")
        except ValueError:
            raise InvalidInput([FieldError("--month", "YYYY-MM")]) from None
    scope = frozenset({project}) if project else allowed_projects(who)
    with transaction(state.context.read_sessions) as s:
        rep = accounting.report(s, period, scope)
    if fmt == "csv":
        click.echo(rep.as_csv(), nl=False)
    elif fmt == "json":
        echo_json(rep.as_json())
    else:
        click.echo(f"{'project':<20} {'node-h':>10} {'vCPU-h':>10} {'RAM GB-h':>10} {'Mb/s-h':>12}")
        for name, t in rep.totals().items():
            click.echo(
                f"{name or '(facility)':<20} {t['node_hours']:>10.1f} {t['vcpu_hours']:>10.1f} "
                f"{t['ram_gb_hours']:>10.1f} {t['link_mbps_hours']:>12.1f}"
            )


from federica.cli import audit_records  # noqa: E402,F401  (its commands join the audit group)
