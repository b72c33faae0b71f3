"""OpenID Connect login: map a provider's verified claims to a user (and projects).

The protocol itself (discovery, authorization code with PKCE, ID token signature, issuer,
audience and nonce checks) is authlib's, wired in web/api/login.py. Here: the first login
of an identity (issuer + subject) creates a researcher account named by the configured
claim; later logins find it by the identity, never by the name, so a provider cannot take
over a local account by sending its username.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.aaa import accounts
from federica.aaa.models import Identity, Membership, Project, ProjectRole, User
from federica.config import Settings
from federica.errors import Conflict, Unauthorized

_INVALID = re.compile(r"[^a-z0-9._@-]+")


def username_from(claims: Mapping[str, Any], claim: str) -> str:
    raw = str(claims.get(claim) or claims.get("email") or claims["sub"])
    name = _INVALID.sub("-", raw.strip().lower()).strip("-._@")[:64]
    return name or "user"


def user_from_claims(
    session: Session, settings: Settings, issuer: str, claims: Mapping[str, Any]
) -> User:
    subject = str(claims.get("sub") or "")
    if not subject:
        raise Unauthorized("the identity provider sent no subject (sub) claim")
    identity = session.scalar(
        select(Identity).where(Identity.issuer == issuer, Identity.subject == subject)
    )
    if identity is not None:
        user = identity.user
    else:
        name = username_from(claims, settings.oidc_username_claim)
        if session.scalar(select(User.id).where(User.username == name)) is not None:
            raise Conflict(
                f"the username {name!r} belongs to another account; an administrator can "
                f"link your identity to it (federica user link {name} {issuer} {subject})"
            )
        user = accounts.create_user(session, name)
        session.add(Identity(user=user, issuer=issuer, subject=subject))
    if not user.active:
        raise Unauthorized("this account is disabled")
    user.display_name = str(claims.get("name") or user.display_name)[:200]
    email = str(claims.get("email") or "")
    if "@" in email and len(email) <= 254:
        user.email = email
    if settings.oidc_projects_claim:
        _sync_projects(session, user, issuer, claims.get(settings.oidc_projects_claim))
    session.flush()
    return user


def _sync_projects(session: Session, user: User, issuer: str, claimed: Any) -> None:
    """Memberships granted by this issuer follow its claim; those added locally stay.
    Claimed names that are not projects here are ignored."""
    names = {str(v) for v in claimed} if isinstance(claimed, list | tuple) else set()
    projects = {p.name: p for p in session.scalars(select(Project).where(Project.name.in_(names)))}
    current = {m.project.name: m for m in user.memberships}
    for name, project in projects.items():
        if name not in current:
            session.add(
                Membership(project=project, user=user, role=ProjectRole.MEMBER, source=issuer)
            )
    for name, m in current.items():
        if m.source == issuer and name not in projects:
            session.delete(m)
    session.flush()
    session.refresh(user)
