"""Test accounts: a user with a role and projects, and an API token for them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from federica.aaa import accounts, tokens
from federica.aaa.models import Project, ProjectRole, Role
from federica.aaa.policy import Scope
from federica.context import Context
from federica.db import transaction


def ensure_project(context: Context, name: str) -> None:
    with transaction(context.sessions) as s:
        if s.scalar(select(Project.id).where(Project.name == name)) is None:
            accounts.create_project(s, name)


def make_user(
    context: Context,
    username: str,
    role: Role | str = Role.RESEARCHER,
    *,
    projects: Iterable[str] = (),
    leads: Iterable[str] = (),
    password: str | None = None,
    scopes: Iterable[Scope] | None = None,
    lifetime: dt.timedelta = dt.timedelta(days=1),
) -> str:
    """Creates the user (and any missing project) and returns a fresh API token."""
    for p in (*projects, *leads):
        ensure_project(context, p)
    now = context.now()
    with transaction(context.sessions) as s:
        user = accounts.create_user(s, username, role=role, password=password)
        for p in projects:
            accounts.set_member(s, accounts.get_project(s, p), user, ProjectRole.MEMBER)
        for p in leads:
            accounts.set_member(s, accounts.get_project(s, p), user, ProjectRole.LEAD)
        _, secret = tokens.issue(
            s,
            user,
            name="test",
            scopes=frozenset(scopes) if scopes is not None else tokens.parse_scopes(None, user),
            lifetime=lifetime,
            max_lifetime=dt.timedelta(days=3650),
            now=now,
        )
    return secret


def client_as(app: Flask, token: str | None) -> FlaskClient:
    client = app.test_client()
    if token is not None:
        client.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    return client
