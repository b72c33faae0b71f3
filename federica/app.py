"""create_app(settings): the WSGI application. No global app object."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Flask
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from federica.config import Settings
from federica.db import make_engine, make_session_factory

EXTENSION_KEY = "federica"


@dataclass
class Context:
    """What every request handler needs; one per application."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]


def make_context(settings: Settings, engine: Engine | None = None) -> Context:
    from federica.slices import usage

    usage.register()  # the inventory must not remove what slices hold (idempotent)
    engine = engine or make_engine(
        settings.effective_database_url, sqlite_busy_timeout_ms=settings.sqlite_busy_timeout_ms
    )
    return Context(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        read_sessions=make_session_factory(engine, readonly=True),
    )


def create_app(settings: Settings, *, context: Context | None = None) -> Flask:
    from federica.web import register_web

    logging.basicConfig(level=settings.log_level.upper())
    app = Flask("federica")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION_KEY] = context or make_context(settings)
    register_web(app)
    return app
