"""API tokens: scoped, expiring, revocable, stored hashed, shown once.

A token made with another token (its parent: the API token that called POST /tokens, or
the portal session whose form was used) never outlives it, never holds a scope it lacks,
and is revoked with it, so a stolen short-lived credential cannot be turned into a
long-lived one. A portal session is a token of kind "session": the browser's cookie, never
a bearer token. Changes to the account act on its tokens at once: a new password and
disabling revoke them all, a new role narrows their scopes to what it allows.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, bindparam, select
from sqlalchemy.orm import Session, joinedload

from federica.aaa.models import ApiToken, Membership, Project, ProjectRole, TokenKind, User
from federica.aaa.policy import DEFAULT_SCOPES, Principal, Scope
from federica.errors import FieldError, Forbidden, InvalidInput, NotFound, Unauthorized

PREFIX = "fed_"
SESSION_PREFIX = "fes_"  # a portal session id: refused as a bearer token
PREFIXES = {TokenKind.API: PREFIX, TokenKind.SESSION: SESSION_PREFIX}
# last_used_at is written at most this often per token: a busy script must not turn
# every read into a write.
TOUCH_EVERY = dt.timedelta(minutes=5)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_scopes(raw: Iterable[str] | str | None, user: User) -> frozenset[Scope]:
    """Requested scopes (None: all the owner's role can use), each one the role allows."""
    allowed = DEFAULT_SCOPES[user.role]
    if raw is None:
        return allowed
    if isinstance(raw, str):
        items = raw.replace(",", " ").split()
    elif isinstance(raw, list | tuple | set | frozenset):
        items = list(raw)
    else:
        raise InvalidInput([FieldError("scopes", "a list of scope names")])
    scopes: set[Scope] = set()
    for item in items:
        try:
            scope = Scope(str(item))
        except ValueError:
            raise InvalidInput(
                [
                    FieldError(
                        "scopes", f"{item!r} is not one of {', '.join(s.value for s in Scope)}"
                    )
                ]
            ) from None
        if scope not in allowed:
            raise InvalidInput(
                [FieldError("scopes", f"a {user.role.value} cannot hold {scope.value!r}")]
            )
        scopes.add(scope)
    if not scopes:
        raise InvalidInput([FieldError("scopes", "name at least one scope")])
    return frozenset(scopes)


def issue(
    session: Session,
    user: User,
    *,
    name: str,
    scopes: frozenset[Scope],
    lifetime: dt.timedelta,
    max_lifetime: dt.timedelta,
    now: dt.datetime,
    parent: ApiToken | None = None,
    kind: TokenKind = TokenKind.API,
) -> tuple[ApiToken, str]:
    """A new token and its secret, which is never stored and cannot be shown again.
    With a parent: no scope it lacks, no later expiry (InvalidInput naming the field)."""
    if not 1 <= len(name) <= 64:
        raise InvalidInput([FieldError("name", "1 to 64 characters")])
    if lifetime <= dt.timedelta(0):
        raise InvalidInput([FieldError("expires_in_days", "must be positive")])
    if lifetime > max_lifetime:
        raise InvalidInput(
            [FieldError("expires_in_days", f"at most {max_lifetime.days} days on this facility")]
        )
    if parent is not None:
        if parent.user_id != user.id:
            raise ValueError("a token's parent belongs to the same account")
        if not scopes <= scopes_of(parent):
            raise Forbidden("a token can only create tokens with a subset of its own scopes")
        if now + lifetime > parent.expires_at:
            raise InvalidInput(
                [
                    FieldError(
                        "expires_in_days",
                        f"at most until {parent.expires_at:%Y-%m-%d %H:%M} UTC, when the "
                        f"{_noun(parent)} that creates it ends",
                    )
                ]
            )
    secret = PREFIXES[kind] + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        parent_id=parent.id if parent is not None else None,
        kind=kind,
        name=name,
        prefix=secret[: len(PREFIXES[kind]) + 6],
        token_hash=digest(secret),
        scopes=" ".join(sorted(s.value for s in scopes)),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(token)
    session.flush()
    return token, secret


def _noun(token: ApiToken) -> str:
    return "portal session" if token.kind is TokenKind.SESSION else "token"


def child_lifetime(
    parent: ApiToken | None, wanted: dt.timedelta | None, default: dt.timedelta, now: dt.datetime
) -> dt.timedelta:
    """The lifetime asked for; none asked: the default, cut to the parent's remaining life."""
    if wanted is not None:
        return wanted
    if parent is None:
        return default
    return min(default, parent.expires_at - now)


def child_scopes(
    raw: Iterable[str] | str | None, user: User, parent: ApiToken | None
) -> frozenset[Scope]:
    """The scopes asked for (each one the role allows); none asked: the parent's (or,
    without a parent, all the role allows)."""
    if raw is None and parent is not None:
        return scopes_of(parent) & DEFAULT_SCOPES[user.role]
    return parse_scopes(raw, user)


def resolve(
    session: Session, secret: str, now: dt.datetime, kind: TokenKind = TokenKind.API
) -> ApiToken:
    """The live token of `kind` for a secret; Unauthorized naming why not (an unknown
    secret, or one of the other kind, says nothing more than that)."""
    # With its user, their memberships and projects (the principal names them): one
    # query on every authenticated request, not four.
    query = (
        select(ApiToken)
        .where(ApiToken.token_hash == digest(secret))
        .options(
            joinedload(ApiToken.user).joinedload(User.memberships).joinedload(Membership.project)
        )
    )
    token = (
        session.scalars(query).unique().first()
        if secret.startswith(PREFIXES[kind]) and len(secret) < 200
        else None
    )
    if token is None or token.kind is not kind:
        raise Unauthorized("the API token is not valid")
    if token.revoked_at is not None:
        raise Unauthorized("the API token was revoked")
    if token.expires_at <= now:
        raise Unauthorized("the API token has expired; create a new one")
    if not token.user.active:
        raise Unauthorized("the account of this API token is disabled")
    return token


# The token, its account and the account's projects as plain rows: what `resolve` loads
# through the ORM, without building objects (this runs on every authenticated request).
_T, _U = ApiToken.__table__.c, User.__table__.c
_M, _P = Membership.__table__.c, Project.__table__.c
_PRINCIPAL = (
    select(
        _T.id, _T.kind, _T.revoked_at, _T.expires_at, _T.scopes, _T.last_used_at,
        _U.id, _U.username, _U.role, _U.active, _M.role, _P.name,
    )
    .select_from(
        ApiToken.__table__.join(User.__table__, _U.id == _T.user_id)
        .outerjoin(Membership.__table__, _M.user_id == _U.id)
        .outerjoin(Project.__table__, _P.id == _M.project_id)
    )
    .where(_T.token_hash == bindparam("token_hash"))
)  # fmt: skip


def resolve_principal(
    conn: Connection,
    secret: str,
    now: dt.datetime,
    kind: TokenKind = TokenKind.API,
    *,
    via: str = "api",
    address: str = "",
) -> tuple[Principal, bool]:
    """The principal of the live token of `kind` for a secret (what `resolve` and
    accounts.principal make of it, in one plain query), and whether its last use should
    be written (`needs_touch`). Unauthorized as `resolve`, with the same words."""
    rows = (
        conn.execute(_PRINCIPAL, {"token_hash": digest(secret)}).all()
        if secret.startswith(PREFIXES[kind]) and len(secret) < 200
        else []
    )
    if not rows or rows[0][1] is not kind:
        raise Unauthorized("the API token is not valid")
    token_id, _, revoked_at, expires_at, scopes, last_used_at, user_id, username, role, active = (
        rows[0][:10]
    )
    if revoked_at is not None:
        raise Unauthorized("the API token was revoked")
    if expires_at <= now:
        raise Unauthorized("the API token has expired; create a new one")
    if not active:
        raise Unauthorized("the account of this API token is disabled")
    who = Principal(
        username=username,
        role=role,
        user_id=user_id,
        projects=frozenset(r[11] for r in rows if r[11] is not None),
        leads=frozenset(r[11] for r in rows if r[11] is not None and r[10] is ProjectRole.LEAD),
        scopes=frozenset(Scope(x) for x in scopes.split()),
        via=via,
        address=address,
        token_id=token_id,
    )
    return who, last_used_at is None or now - last_used_at >= TOUCH_EVERY


def needs_touch(token: ApiToken, now: dt.datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY


def scopes_of(token: ApiToken) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in token.scopes.split())


def get(session: Session, token_id: int) -> ApiToken:
    # An id no row can have is not sent to the database (SQLite refuses ints over 2**63).
    token = session.get(ApiToken, token_id) if 0 < token_id < 2**31 else None
    if token is None:
        raise NotFound(f"no token {token_id}")
    return token


def revoke(session: Session, token: ApiToken, now: dt.datetime) -> ApiToken:
    """The token and every token made with it (and with those, …). Idempotent."""
    if token.revoked_at is None:
        token.revoked_at = now
    level = [token.id]
    while level:
        children = list(session.scalars(select(ApiToken).where(ApiToken.parent_id.in_(level))))
        for child in children:
            if child.revoked_at is None:
                child.revoked_at = now
        level = [c.id for c in children]
    session.flush()
    return token


def revoke_all(session: Session, user: User, now: dt.datetime) -> int:
    """Every live token of the account (a new password, a disabled account); how many."""
    live = _live(session, user.id)
    for token in live:
        token.revoked_at = now
    session.flush()
    return len(live)


def narrow_to_role(session: Session, user: User, now: dt.datetime) -> None:
    """Every live token keeps only the scopes the account's (new) role allows; one left
    with none is revoked. Children stay within their parents: both lose the same scopes."""
    allowed = DEFAULT_SCOPES[user.role]
    for token in _live(session, user.id):
        kept = scopes_of(token) & allowed
        if not kept:
            token.revoked_at = now
        elif kept != scopes_of(token):
            token.scopes = " ".join(sorted(x.value for x in kept))
    session.flush()


def _live(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        )
    )


def of_user(session: Session, user_id: int) -> list[ApiToken]:
    return list(
        session.scalars(
            select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.id.desc())
        )
    )


def describe(token: ApiToken, now: dt.datetime) -> dict[str, Any]:
    state = (
        "revoked"
        if token.revoked_at is not None
        else ("expired" if token.expires_at <= now else "active")
    )
    return {
        "id": token.id,
        "name": token.name,
        "prefix": token.prefix,
        "user": token.user.username,
        "scopes": token.scopes.split(),
        "kind": token.kind.value,
        "parent_id": token.parent_id,
        "state": state,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }
