"""The application context of a request: its settings and database sessions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from flask import current_app
from sqlalchemy.orm import Session

from federica.context import Context

EXTENSION_KEY = "federica"


def ctx() -> Context:
    context = current_app.extensions[EXTENSION_KEY]
    assert isinstance(context, Context)
    return context


@contextmanager
def read_session() -> Iterator[Session]:
    with ctx().read_sessions() as session, session.begin():
        yield session


@contextmanager
def write_session() -> Iterator[Session]:
    with ctx().sessions() as session, session.begin():
        yield session
