"""Fixtures layered settings → db → app → client.

Every test that uses `db` runs twice: on a SQLite file and on a throwaway PostgreSQL
database (FEDERICA_TEST_POSTGRES_URL, default the local server). Set
FEDERICA_TEST_POSTGRES=off to run SQLite only (never in CI).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, delete

from federica import migrate
from federica.aaa import append_only
from federica.app import create_app
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import Base, make_engine

# Property tests check properties, not speed: Hypothesis' default 200 ms deadline per
# example fails them on a busy machine (CI's may be), a timed test in disguise. Speed is
# measured in bench/.
hypothesis_settings.register_profile("federica", deadline=None)
hypothesis_settings.load_profile("federica")

# The shared driver suites are plain modules: let pytest explain their failed asserts.
pytest.register_assert_rewrite("tests.driver_conformance", "tests.compute_conformance")

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
DATA = Path(__file__).resolve().parent / "data"
POSTGRES_ADMIN_URL = os.environ.get(
    "FEDERICA_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite"] + (
    [] if os.environ.get("FEDERICA_TEST_POSTGRES") == "off" else ["postgresql"]
)


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this test run, dropped at the end."""
    name = f"federica_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL not reachable at {POSTGRES_ADMIN_URL} ({exc}); start it or set "
            "FEDERICA_TEST_POSTGRES=off to run the SQLite half only"
        )
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        base = POSTGRES_ADMIN_URL.rsplit("/", 1)[0]
        try:
            yield f"{base}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('db') / 'federica.db'}"
    url: str = request.getfixturevalue("postgres_database")
    return url


@pytest.fixture(scope="session")
def migrated_engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "var", database_url=database_url)


@pytest.fixture
def db(settings: Settings, migrated_engine: Engine) -> Iterator[Context]:
    """A migrated, empty database; emptied again after the test."""
    context = make_context(settings, engine=migrated_engine)
    yield context
    with migrated_engine.begin() as conn, append_only.suspended(conn):
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(delete(table))


@pytest.fixture
def app(settings: Settings, db: Context) -> Flask:
    app = create_app(settings, context=db)
    app.config["TESTING"] = True
    return app


@pytest.fixture
def admin_token(db: Context) -> str:
    from tests.accounts import make_user

    return make_user(db, "admin", "admin")


@pytest.fixture
def client(app: Flask, admin_token: str) -> FlaskClient:
    """A client signed in as an administrator (API token)."""
    from tests.accounts import client_as

    return client_as(app, admin_token)


@pytest.fixture
def anon_client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def cli_env(settings: Settings, db: Context) -> dict[str, str]:
    """Environment for CLI invocations against the test database."""
    return {
        "FEDERICA_DATABASE_URL": settings.database_url,
        "FEDERICA_DATA_DIR": str(settings.data_dir),
        # The CLI keeps `federica login`'s token under here: never the tester's own.
        "XDG_CONFIG_HOME": str(settings.data_dir / "config"),
    }
