"""Who may do what: a pure module (no I/O), used by every API route and CLI command.

A principal is a person (their facility role, their projects, and, when they come with an
API token, that token's scopes) or the local console (whoever can open the database, as
with any server's own administration tool). Decisions depend only on the principal, the
action and the project the target belongs to.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from federica.aaa.roles import Role


class Scope(enum.StrEnum):
    """What a token may be used for; its owner's role still limits it."""

    READ = "read"  # look at anything the owner may see
    SLICES = "slices"  # book, extend, release
    PROJECTS = "projects"  # a lead's member management; one's own tokens
    OPERATE = "operate"  # maintenance, quotas
    ADMIN = "admin"  # accounts and projects


class Action(enum.StrEnum):
    SUBSTRATE_READ = "substrate.read"
    SUBSTRATE_MANAGE = "substrate.manage"  # load the inventory
    CALENDAR_READ = "calendar.read"
    SLICE_READ = "slice.read"
    SLICE_CREATE = "slice.create"
    SLICE_CHANGE = "slice.change"  # extend, release
    MAINTENANCE_READ = "maintenance.read"
    MAINTENANCE_MANAGE = "maintenance.manage"
    QUOTA_READ = "quota.read"
    QUOTA_MANAGE = "quota.manage"
    PROJECT_READ = "project.read"
    PROJECT_MEMBERS = "project.members"
    PROJECT_MANAGE = "project.manage"  # create projects
    ACCOUNTING_READ = "accounting.read"
    USER_READ = "user.read"
    USER_MANAGE = "user.manage"
    ACCOUNT_READ = "account.read"  # one's own account and tokens
    TOKEN_OWN = "token.own"  # noqa: S105  (one's own tokens and account; no secret)
    AUDIT_READ = "audit.read"
    MONITORING_READ = "monitoring.read"  # the facility's devices, ports and links over time
    ALARM_READ = "alarm.read"  # alarms touching a project's slices (operators: all)
    ALARM_ACK = "alarm.ack"
    SLICE_ESTOP = "slice.estop"  # emergency stop, forensic hold and lift: staff only


# The scope an action needs from a token.
SCOPE_OF: dict[Action, Scope] = {
    Action.SUBSTRATE_READ: Scope.READ,
    Action.SUBSTRATE_MANAGE: Scope.OPERATE,
    Action.CALENDAR_READ: Scope.READ,
    Action.SLICE_READ: Scope.READ,
    Action.SLICE_CREATE: Scope.SLICES,
    Action.SLICE_CHANGE: Scope.SLICES,
    Action.MAINTENANCE_READ: Scope.READ,
    Action.MAINTENANCE_MANAGE: Scope.OPERATE,
    Action.QUOTA_READ: Scope.READ,
    Action.QUOTA_MANAGE: Scope.OPERATE,
    Action.PROJECT_READ: Scope.READ,
    Action.PROJECT_MEMBERS: Scope.PROJECTS,
    Action.PROJECT_MANAGE: Scope.ADMIN,
    Action.ACCOUNTING_READ: Scope.READ,
    Action.USER_READ: Scope.READ,
    Action.USER_MANAGE: Scope.ADMIN,
    Action.ACCOUNT_READ: Scope.READ,
    Action.TOKEN_OWN: Scope.PROJECTS,
    Action.AUDIT_READ: Scope.READ,
    Action.MONITORING_READ: Scope.READ,
    Action.ALARM_READ: Scope.READ,
    Action.ALARM_ACK: Scope.OPERATE,
    Action.SLICE_ESTOP: Scope.OPERATE,
}

# Actions any signed-in person may take on facility-wide things (no project involved).
_EVERYONE = {
    Action.SUBSTRATE_READ,
    Action.CALENDAR_READ,
    Action.MAINTENANCE_READ,
    Action.ACCOUNT_READ,
    Action.TOKEN_OWN,
}
# Actions on a project's things that its members may take.
_MEMBER = {
    Action.SLICE_READ,
    Action.SLICE_CREATE,
    Action.SLICE_CHANGE,
    Action.QUOTA_READ,
    Action.PROJECT_READ,
    Action.ACCOUNTING_READ,
    Action.ALARM_READ,
}
_LEAD = _MEMBER | {Action.PROJECT_MEMBERS}
_OPERATOR = (
    _EVERYONE
    | _MEMBER
    | {
        Action.MAINTENANCE_MANAGE,
        Action.SUBSTRATE_MANAGE,
        Action.QUOTA_MANAGE,
        Action.USER_READ,
        Action.AUDIT_READ,
        Action.MONITORING_READ,
        Action.ALARM_ACK,
        Action.SLICE_ESTOP,
    }
)
_ADMIN = set(Action)

DEFAULT_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.RESEARCHER: frozenset({Scope.READ, Scope.SLICES, Scope.PROJECTS}),
    Role.OPERATOR: frozenset({Scope.READ, Scope.SLICES, Scope.PROJECTS, Scope.OPERATE}),
    Role.ADMIN: frozenset(Scope),
}


@dataclass(frozen=True)
class Principal:
    username: str
    role: Role
    user_id: int | None = None
    projects: frozenset[str] = frozenset()
    leads: frozenset[str] = frozenset()
    # None: not limited by a token (a browser session, or the local console).
    scopes: frozenset[Scope] | None = None
    via: str = "api"
    address: str = ""
    token_id: int | None = None


def console(unix_user: str) -> Principal:
    """The operators' console: the CLI run by someone who can open the database."""
    return Principal(f"local:{unix_user}", Role.ADMIN, via="cli")


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def decide(
    who: Principal | None,
    action: Action,
    *,
    project: str | None = None,
    owner_id: int | None = None,
) -> Decision:
    """May `who` take `action` on something of `project` (None: facility-wide, or a slice
    without a project) that `owner_id` booked?"""
    if who is None:
        return Decision(False, "sign in first (an API token or a session)")
    by_role = _by_role(who, action, project, owner_id)
    if by_role.allowed and (missing := scope_problem(who, action)):
        return Decision(False, missing)
    return by_role


def scope_problem(who: Principal, action: Action) -> str:
    """Why the principal's token does not cover the action ("" if it does)."""
    if who.scopes is not None and SCOPE_OF[action] not in who.scopes:
        return f"this token lacks the scope {SCOPE_OF[action].value!r}"
    return ""


def _by_role(who: Principal, action: Action, project: str | None, owner_id: int | None) -> Decision:
    if who.role is Role.ADMIN and action in _ADMIN:
        return Decision(True)
    if who.role is Role.OPERATOR and action in _OPERATOR:
        return Decision(True)
    if action in _EVERYONE:
        return Decision(True)
    if action in _MEMBER and owner_id is not None and owner_id == who.user_id:
        return Decision(True)  # one's own slice, even after leaving its project
    if project is not None:
        if project in who.leads and action in _LEAD:
            return Decision(True)
        if project in who.projects and action in _MEMBER:
            return Decision(True)
        if action in _LEAD and project in who.projects:
            return Decision(False, f"only the leads of project {project!r} may change its members")
        if action in _LEAD:
            return Decision(False, f"you are not a member of project {project!r}")
    return Decision(False, f"{who.role.value}s may not {_describe(action)}")


def _describe(action: Action) -> str:
    noun, _, verb = action.value.partition(".")
    return f"{verb} {noun}s" if verb in {"read", "manage"} else f"{verb} {noun}"


def can_see(who: Principal | None, project: str | None, owner_id: int | None = None) -> bool:
    """May `who` learn that a thing of `project` (booked by `owner_id`) exists at all? The
    facility's staff, the project's members, the person who booked it. Where not, the web
    answers as if it did not exist (404), so ids and names cannot be probed."""
    if who is None:
        return False
    if who.role in (Role.ADMIN, Role.OPERATOR):
        return True
    if owner_id is not None and owner_id == who.user_id:
        return True
    return project is not None and project in who.projects


def allowed_projects(who: Principal) -> frozenset[str] | None:
    """The projects whose slices `who` may list (None: all)."""
    if who.role in (Role.ADMIN, Role.OPERATOR):
        return None
    return who.projects | who.leads


def booking_project(who: Principal, requested: str | None) -> tuple[str | None, str]:
    """The project a booking is charged to, or (None, why not). A researcher in exactly
    one project may leave it out; the facility's staff may book without one."""
    if requested is not None:
        d = decide(who, Action.SLICE_CREATE, project=requested)
        return (requested, "") if d.allowed else (None, d.reason)
    if who.role in (Role.ADMIN, Role.OPERATOR):
        return None, ""
    mine = sorted(who.projects | who.leads)
    if len(mine) == 1:
        return mine[0], ""
    if not mine:
        return None, "you are not a member of any project; ask a project lead to add you"
    return None, f"say which project: you are a member of {', '.join(mine)}"
