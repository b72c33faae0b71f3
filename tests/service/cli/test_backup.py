"""`federica db backup` and `federica db restore` on both databases: a backup of a
database with slices, users, tokens and audit entries, restored into a new database, is
the same database (every table's rows), `federica doctor` finds it sound, and the API
serves the same slices to the same token. A restore never overwrites a database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import Engine, inspect, select, text

import federica.cli.db
import federica.cli.doctor  # noqa: F401  (registers the commands)
from federica.app import create_app
from federica.cli import cli
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import make_engine
from tests.accounts import client_as
from tests.conftest import EXAMPLES, POSTGRES_ADMIN_URL
from tests.helpers import load_file
from tests.service.cli.test_doctor import doctor

BGP = (EXAMPLES / "slices" / "bgp-lab.yaml").read_text()


def run(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def every_row(engine: Engine) -> dict[str, list[tuple[object, ...]]]:
    found: dict[str, list[tuple[object, ...]]] = {}
    with engine.connect() as conn:
        for name in sorted(inspect(engine).get_table_names()):
            rows = conn.execute(text(f'SELECT * FROM "{name}"'))  # noqa: S608  (names from the schema)
            found[name] = sorted((tuple(r) for r in rows), key=repr)
    return found


@pytest.fixture
def new_database(tmp_path: Path, db: Context) -> Iterator[str]:
    """A new, empty database of the same kind as the test database."""
    if db.engine.dialect.name == "sqlite":
        yield f"sqlite:///{tmp_path / 'restored' / 'federica.sqlite'}"
        return
    name = f"federica_restore_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_restored_into_a_new_database_is_the_same_database(
    db: Context,
    client: FlaskClient,
    admin_token: str,
    cli_env: dict[str, str],
    new_database: str,
    tmp_path: Path,
) -> None:
    load_file(db, EXAMPLES / "topologies" / "core4.yaml")
    booked = client.post("/api/v1/slices", data=BGP, content_type="application/yaml")
    assert booked.status_code == 201, booked.get_json()
    assert client.post("/api/v1/slices/bgp-lab/extend", json={"by": "1h"}).status_code == 200
    listed = client.get("/api/v1/slices").get_json()
    before = every_row(db.engine)
    assert before["slices"] and before["users"] and before["audit_log"]

    archive = tmp_path / "federica.backup"
    r = run(cli_env, "db", "backup", str(archive))
    assert r.exit_code == 0, r.output
    assert archive.stat().st_size > 0
    # A second backup never overwrites the first.
    r = run(cli_env, "db", "backup", str(archive))
    assert r.exit_code != 0 and "target" in r.output

    restored_env = cli_env | {
        "FEDERICA_DATABASE_URL": new_database,
        "FEDERICA_DATA_DIR": str(tmp_path / "restored-data"),
    }
    r = run(restored_env, "db", "restore", str(archive))
    assert r.exit_code == 0, r.output
    restored = make_engine(new_database)
    try:
        assert every_row(restored) == before
        _, found = doctor(restored_env, "--no-devices")
        assert found["database"][0] == "ok" and found["migrations"][0] == "ok", found
        # The application on the restored database: the same slices, to the same token.
        settings = Settings(data_dir=tmp_path / "restored-data", database_url=new_database)
        context = make_context(settings, engine=restored)
        served = client_as(create_app(settings, context=context), admin_token)
        assert served.get("/api/v1/slices").get_json() == listed
        with restored.connect() as conn:
            assert conn.execute(select(text("count(*)")).select_from(text("audit_log"))).scalar()
        # A restore never overwrites a database (this one now has tables).
        again = run(restored_env, "db", "restore", str(archive))
        assert again.exit_code != 0 and "not empty" in again.output
        assert every_row(restored) == before
    finally:
        restored.dispose()
