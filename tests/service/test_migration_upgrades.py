"""Upgrading from every earlier revision with data in it, on both databases.

A database is filled at head by the services themselves (a topology, accounts with a
token, slices booked and released, audit rows); its rows are copied into a database at
the revision under test, as far as that schema holds them (the columns both have); that
one is upgraded to head: every row is still there, and the controller works on it (the
calendar loads the old slices, a new booking goes in beside them)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Engine, MetaData, Table, insert, inspect, select, text

import federica.models  # noqa: F401  (every table in Base.metadata)
from federica import migrate
from federica.aaa import audit
from federica.aaa.policy import Principal
from federica.aaa.roles import Role
from federica.config import Settings
from federica.context import Context, make_context
from federica.db import Base, make_engine, transaction
from federica.slices import service
from tests.accounts import ensure_project, make_user
from tests.conftest import BACKENDS, EXAMPLES, POSTGRES_ADMIN_URL
from tests.helpers import load_file

START = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) + dt.timedelta(days=2)


def _revisions() -> list[str]:
    engine = make_engine("sqlite://")
    script = ScriptDirectory.from_config(migrate.alembic_config(engine))
    engine.dispose()
    ordered = [r.revision for r in script.walk_revisions()]  # head first
    return list(reversed(ordered))[:-1]  # every one before head


def request(name: str, hours: int) -> dict[str, object]:
    return {
        "name": name,
        "project": "lab",
        "window": {"start": (START + dt.timedelta(hours=hours)).isoformat(), "duration": "2h"},
        "nodes": [{"name": "a", "pop": "PRG", "vcpu": 2}, {"name": "b", "pop": "MIL"}],
        "circuits": [{"name": "c", "endpoints": ["a", "b"], "bandwidth_mbps": 100}],
    }


def _database(backend: str, tmp_path: Path, label: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / f'{label}.db'}"
        return
    name = f"federica_upgrade_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{POSTGRES_ADMIN_URL.rsplit('/', 1)[0]}/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def source_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from _database(backend, tmp_path, "source")


@pytest.fixture
def old_url(backend: str, tmp_path: Path) -> Iterator[str]:
    yield from _database(backend, tmp_path, "old")


def fill(ctx: Context) -> None:
    load_file(ctx, EXAMPLES / "topologies" / "core4.yaml")
    make_user(ctx, "researcher", projects=["lab"])
    for i in range(3):
        service.book_with_retry(ctx.sessions, ctx.settings, request(f"s{i}", 3 * i), now=ctx.now)
    with transaction(ctx.sessions) as s:
        service.release(s, service.get(s, "s1"), now=ctx.now())
    audit.record(
        ctx.sessions,
        Principal("operator", Role.ADMIN, via="cli"),
        "test.upgrade",
        status=200,
        target="the upgrade test",
        at=ctx.now(),
    )


def counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        tables = [t for t in inspect(conn).get_table_names() if t != "alembic_version"]
        return {
            t: int(conn.execute(text(f'SELECT count(*) FROM "{t}"')).scalar() or 0)  # noqa: S608  (names from the schema)
            for t in tables
        }


def copy_into_old_schema(source: Engine, old: Engine) -> None:
    """Every row of the filled database, as far as the old schema holds it: the columns
    both have, each value converted by the models' column types."""
    present = MetaData()
    present.reflect(old)
    with source.connect() as src, old.begin() as dst:
        for table in present.sorted_tables:
            if table.name == "alembic_version" or table.name not in Base.metadata.tables:
                continue
            model = Base.metadata.tables[table.name]
            common = [c for c in model.c if c.name in table.c]
            rows = [dict(r._mapping) for r in src.execute(select(*common))]
            dst.execute(table.delete())  # what a migration seeded (revisions): the source's
            if rows:
                bare = Table(table.name, MetaData(), *(Column(c.name, c.type) for c in common))
                dst.execute(insert(bare), rows)
            if old.dialect.name == "postgresql" and "id" in table.c:
                # Rows came with their ids: the sequence goes on after them.
                dst.execute(
                    text(
                        f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "  # noqa: S608  (names from the schema)
                        f'(SELECT coalesce(max(id), 0) + 1 FROM "{table.name}"), false)'
                    )
                )


@pytest.mark.parametrize("revision", _revisions())
def test_upgrade_from_an_earlier_revision_keeps_the_data(
    source_url: str, old_url: str, revision: str, tmp_path: Path
) -> None:
    source, old = make_engine(source_url), make_engine(old_url)
    try:
        migrate.upgrade(source)
        fill(make_context(Settings(data_dir=tmp_path / "var", database_url=source_url), source))
        migrate.upgrade(old, revision)
        copy_into_old_schema(source, old)
        before = counts(old)
        assert before["pops"] == 4 and before["links"] == 6

        migrate.upgrade(old)
        assert migrate.current_revision(old) == migrate.head_revision(old)
        after = counts(old)
        assert {t: after[t] for t in before} == before
        # A new context (nothing cached) works on the old rows: the calendar loads the
        # slices that were there, and a booking goes in beside them (or, where the old
        # schema had no slices, on an empty calendar).
        fresh = make_context(Settings(data_dir=tmp_path / "var2", database_url=old_url))
        ensure_project(fresh, "lab")  # older than projects (0005): the slices had none
        booked = service.book_with_retry(
            fresh.sessions, fresh.settings, request("after-upgrade", 0), now=fresh.now
        )
        assert booked.slice is not None
        fresh.engine.dispose()
    finally:
        source.dispose()
        old.dispose()
