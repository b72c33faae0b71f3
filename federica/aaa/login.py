"""Password login, rate-limited, that never tells which usernames exist.

Failures are counted in the database per username and per client address over a sliding
window, so every API replica sees the same count. A locked-out username answers the same
whether or not the account exists; a wrong username costs the same scrypt time as a
wrong password.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from federica.aaa import passwords
from federica.aaa.accounts import normalise_username
from federica.aaa.models import LoginFailure, User
from federica.config import Settings
from federica.errors import TooManyRequests, Unauthorized

WRONG = "wrong username or password"


@dataclass(frozen=True)
class Limits:
    window: dt.timedelta = dt.timedelta(minutes=15)
    per_username: int = 5
    per_address: int = 30

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            window=dt.timedelta(minutes=settings.login_window_min),
            per_username=settings.login_max_failures,
            per_address=settings.login_max_failures_per_address,
        )


def _recent(session: Session, column: Any, value: str, since: dt.datetime) -> int:
    query = select(func.count()).where(column == value, LoginFailure.at >= since)
    return int(session.scalar(query) or 0)


def check_password_login(
    sessions: sessionmaker[Session],
    username: str,
    password: str,
    *,
    address: str,
    now: dt.datetime,
    limits: Limits = Limits(),
) -> int:
    """The user id for a correct username and password of an active account.
    Raises Unauthorized (one message for every cause) or TooManyRequests."""
    name = normalise_username(username)[:64]
    since = now - limits.window
    with sessions() as s, s.begin():
        if (
            _recent(s, LoginFailure.username, name, since) >= limits.per_username
            or _recent(s, LoginFailure.address, address, since) >= limits.per_address
        ):
            raise TooManyRequests(
                "too many failed logins; try again later",
                retry_after_s=int(limits.window.total_seconds()),
            )
        user = s.scalar(select(User).where(User.username == name))
        stored = user.password_hash if user is not None and user.password_hash else None
        ok = passwords.verify_password(password, stored or passwords.DUMMY_HASH)
        if ok and user is not None and stored is not None and user.active:
            if passwords.needs_rehash(stored):
                user.password_hash = passwords.hash_password(password)
            return user.id
        # Recorded in this transaction, which commits: the raise happens after it.
        s.add(LoginFailure(username=name, address=address[:64], at=now))
        s.execute(delete(LoginFailure).where(LoginFailure.at < since))
    raise Unauthorized(WRONG)
