"""`federica demo`'s account: a researcher "demo" leading project "demo", so the README's
curl examples have someone to be. Its password and a fresh API token are written to files
in the data directory (0600), never printed or logged."""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from federica.aaa import accounts, tokens
from federica.aaa.models import Project, ProjectRole, User
from federica.config import Settings
from federica.files import write_private

USERNAME = PROJECT = "demo"


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password_file: Path
    token_file: Path


def ensure(session: Session, settings: Settings, now: dt.datetime) -> DemoAccount:
    password_file = settings.data_dir / "demo-password"
    token_file = settings.data_dir / "demo-token"
    user = session.scalar(select(User).where(User.username == USERNAME))
    if user is None:
        password = secrets.token_urlsafe(12)
        user = accounts.create_user(session, USERNAME, password=password, display_name="Demo")
        write_private(password_file, password + "\n")
    project = session.scalar(select(Project).where(Project.name == PROJECT))
    if project is None:
        project = accounts.create_project(session, PROJECT, description="the demo's project")
    accounts.set_member(session, project, user, ProjectRole.LEAD)
    _, secret = tokens.issue(
        session,
        user,
        name="demo",
        scopes=tokens.parse_scopes(None, user),
        lifetime=dt.timedelta(days=settings.token_default_days),
        max_lifetime=dt.timedelta(days=settings.token_max_days),
        now=now,
    )
    write_private(token_file, secret + "\n")
    return DemoAccount(USERNAME, password_file, token_file)
