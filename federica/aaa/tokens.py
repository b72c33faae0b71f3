"""API tokens: scoped, expiring, revocable, stored hashed, shown once."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.aaa.models import ApiToken, User
from federica.aaa.policy import DEFAULT_SCOPES, Scope
from federica.errors import FieldError, InvalidInput, NotFound, Unauthorized

PREFIX = "fed_"
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
) -> tuple[ApiToken, str]:
    """A new token and its secret, which is never stored and cannot be shown again."""
    if not 1 <= len(name) <= 64:
        raise InvalidInput([FieldError("name", "1 to 64 characters")])
    if lifetime <= dt.timedelta(0):
        raise InvalidInput([FieldError("expires_in_days", "must be positive")])
    if lifetime > max_lifetime:
        raise InvalidInput(
            [FieldError("expires_in_days", f"at most {max_lifetime.days} days on this facility")]
        )
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        user=user,
        name=name,
        prefix=secret[: len(PREFIX) + 6],
        token_hash=digest(secret),
        scopes=" ".join(sorted(s.value for s in scopes)),
        created_at=now,
        expires_at=now + lifetime,
    )
    session.add(token)
    session.flush()
    return token, secret


def resolve(session: Session, secret: str, now: dt.datetime) -> ApiToken:
    """The live token for a secret; Unauthorized naming why not (an unknown secret says
    nothing more than that)."""
    token = (
        session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret)))
        if secret.startswith(PREFIX) and len(secret) < 200
        else None
    )
    if token is None:
        raise Unauthorized("the API token is not valid")
    if token.revoked_at is not None:
        raise Unauthorized("the API token was revoked")
    if token.expires_at <= now:
        raise Unauthorized("the API token has expired; create a new one")
    if not token.user.active:
        raise Unauthorized("the account of this API token is disabled")
    return token


def needs_touch(token: ApiToken, now: dt.datetime) -> bool:
    return token.last_used_at is None or now - token.last_used_at >= TOUCH_EVERY


def scopes_of(token: ApiToken) -> frozenset[Scope]:
    return frozenset(Scope(s) for s in token.scopes.split())


def get(session: Session, token_id: int) -> ApiToken:
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"no token {token_id}")
    return token


def revoke(session: Session, token: ApiToken, now: dt.datetime) -> ApiToken:
    """Idempotent."""
    if token.revoked_at is None:
        token.revoked_at = now
        session.flush()
    return token


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
        "state": state,
        "created_at": token.created_at.isoformat(),
        "expires_at": token.expires_at.isoformat(),
        "revoked_at": token.revoked_at.isoformat() if token.revoked_at else None,
        "last_used_at": token.last_used_at.isoformat() if token.last_used_at else None,
    }
