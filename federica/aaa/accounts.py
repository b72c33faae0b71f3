"""Users and projects: create, change, look up; who a user is as a policy principal."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from federica import inputs
from federica.aaa import passwords, tokens
from federica.aaa.models import Identity, Membership, Project, ProjectRole, Role, User
from federica.aaa.policy import Principal, Scope
from federica.errors import Conflict, FieldError, InvalidInput, NotFound, shown

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,63}$")
PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def normalise_username(raw: str) -> str:
    return raw.strip().lower()


def _check_username(name: str) -> None:
    if not USERNAME.match(name):
        raise InvalidInput(
            [
                FieldError(
                    "username",
                    "1 to 64 characters: lower-case letters, digits and . _ @ -, "
                    "starting with a letter or digit",
                )
            ]
        )


def _check_profile(display_name: str | None, email: str | None) -> None:
    if display_name is not None and len(display_name) > 200:
        raise InvalidInput([FieldError("display_name", "at most 200 characters")])
    if email is not None and (len(email) > 254 or (email and "@" not in email)):
        raise InvalidInput([FieldError("email", "an e-mail address")])


def _role(raw: str | Role, field: str = "role") -> Role:
    try:
        return Role(raw)
    except ValueError:
        raise InvalidInput(
            [FieldError(field, f"{raw!r} is not one of {', '.join(r.value for r in Role)}")]
        ) from None


def create_user(
    session: Session,
    username: str,
    *,
    role: str | Role = Role.RESEARCHER,
    password: str | None = None,
    display_name: str = "",
    email: str = "",
) -> User:
    name = normalise_username(username)
    _check_username(name)
    chosen = _role(role)
    if password is not None:
        passwords.check_strength(password)
    _check_profile(display_name, email)
    if session.scalar(select(User.id).where(User.username == name)) is not None:
        raise Conflict(
            f"a user named {name!r} exists already",
            errors=[FieldError("username", "in use").as_dict()],
        )
    user = User(
        username=name,
        role=chosen,
        display_name=display_name,
        email=email,
        password_hash=passwords.hash_password(password) if password is not None else None,
    )
    session.add(user)
    session.flush()
    return user


def get_user(session: Session, ref: int | str) -> User:
    # A reference no account can have (too long, NUL, beyond an id …) is not looked up:
    # a database may refuse it as a parameter, and the answer is known.
    user: User | None = None
    if isinstance(ref, int) or inputs.looks_like_id(ref):
        user_id = inputs.id_or_none(ref)
        user = session.get(User, user_id) if user_id is not None else None
    elif USERNAME.fullmatch(normalise_username(ref)):
        user = session.scalar(select(User).where(User.username == normalise_username(ref)))
    if user is None:
        raise NotFound(f"no user {shown(ref)}")
    return user


def update_user(
    session: Session,
    user: User,
    *,
    now: dt.datetime,
    role: str | None = None,
    active: bool | None = None,
    password: str | None = None,
    display_name: str | None = None,
    email: str | None = None,
) -> User:
    """Checks every field before changing any. The account's tokens follow at once: a new
    password (a reset after a suspected theft, say) or disabling revokes them all; a new
    role narrows them to the scopes it allows (so promoting the account again later does
    not bring a dropped scope back)."""
    chosen = _role(role) if role is not None else None
    if password is not None:
        passwords.check_strength(password)
    _check_profile(display_name, email)
    if chosen is not None:
        user.role = chosen
        tokens.narrow_to_role(session, user, now)
    if active is not None:
        user.active = active
    if password is not None:
        user.password_hash = passwords.hash_password(password)
    if password is not None or active is False:
        tokens.revoke_all(session, user, now)
    if display_name is not None:
        user.display_name = display_name
    if email is not None:
        user.email = email
    session.flush()
    return user


def link_identity(session: Session, user: User, issuer: str, subject: str) -> Identity:
    """Let `user` sign in through an identity provider's account (issuer + subject)."""
    if not issuer.startswith(("https://", "http://")) or len(issuer) > 500:
        raise InvalidInput([FieldError("issuer", "the provider's issuer URL")])
    if not 1 <= len(subject) <= 255:
        raise InvalidInput([FieldError("subject", "1 to 255 characters")])
    taken = session.scalar(
        select(Identity).where(Identity.issuer == issuer, Identity.subject == subject)
    )
    if taken is not None:
        raise Conflict(f"that identity signs in as {taken.user.username!r} already")
    identity = Identity(user=user, issuer=issuer, subject=subject)
    session.add(identity)
    session.flush()
    return identity


def create_project(
    session: Session, name: str, *, description: str = "", lead: str | None = None
) -> Project:
    if not PROJECT.match(name):
        raise InvalidInput(
            [FieldError("name", "1 to 64 characters: letters, digits and . _ -, no leading symbol")]
        )
    if len(description) > 500:
        raise InvalidInput([FieldError("description", "at most 500 characters")])
    lead_user = get_user(session, lead) if lead is not None else None
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(
            f"a project named {name!r} exists already",
            errors=[FieldError("name", "in use").as_dict()],
        )
    project = Project(name=name, description=description)
    session.add(project)
    session.flush()
    if lead_user is not None:
        session.add(Membership(project=project, user=lead_user, role=ProjectRole.LEAD))
        session.flush()
    return project


def get_project(session: Session, name: str) -> Project:
    project = (
        session.scalar(select(Project).where(Project.name == name))
        if PROJECT.fullmatch(name)  # no project has another name: not looked up
        else None
    )
    if project is None:
        raise NotFound(f"no project {shown(name)}")
    return project


def project_exists(session: Session, name: str) -> bool:
    return session.scalar(select(func.count()).where(Project.name == name)) == 1


def set_member(
    session: Session,
    project: Project,
    user: User,
    role: str | ProjectRole = ProjectRole.MEMBER,
    *,
    source: str = "local",
) -> Membership:
    try:
        chosen = ProjectRole(role)
    except ValueError:
        raise InvalidInput(
            [
                FieldError(
                    "role", f"{role!r} is not one of {', '.join(r.value for r in ProjectRole)}"
                )
            ]
        ) from None
    m = session.get(Membership, (project.id, user.id))
    if m is None:
        m = Membership(project=project, user=user, role=chosen, source=source)
        session.add(m)
    else:
        m.role = chosen
    session.flush()
    return m


def remove_member(session: Session, project: Project, user: User) -> None:
    m = session.get(Membership, (project.id, user.id))
    if m is None:
        raise NotFound(f"{user.username!r} is not a member of project {project.name!r}")
    session.delete(m)
    session.flush()


def principal(
    user: User,
    *,
    scopes: frozenset[Scope] | None = None,
    via: str = "api",
    address: str = "",
    token_id: int | None = None,
) -> Principal:
    projects = frozenset(m.project.name for m in user.memberships)
    leads = frozenset(m.project.name for m in user.memberships if m.role is ProjectRole.LEAD)
    return Principal(
        username=user.username,
        role=user.role,
        user_id=user.id,
        projects=projects,
        leads=leads,
        scopes=scopes,
        via=via,
        address=address,
        token_id=token_id,
    )


def describe_user(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "role": user.role.value,
        "active": user.active,
        "password_login": user.password_hash is not None,
        "identities": [{"issuer": i.issuer, "subject": i.subject} for i in user.identities],
        "projects": {m.project.name: m.role.value for m in user.memberships},
        "created_at": user.created_at.isoformat(),
    }


def describe_project(project: Project) -> dict[str, Any]:
    return {
        "name": project.name,
        "description": project.description,
        "members": [
            {"username": m.user.username, "role": m.role.value, "source": m.source}
            for m in sorted(project.members, key=lambda m: m.user.username)
        ],
        "created_at": project.created_at.isoformat(),
    }
