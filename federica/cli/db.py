"""federica db …"""

from __future__ import annotations

import os
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path

import click
from sqlalchemy import Engine, inspect

from federica import migrate
from federica.cli import CliState, cli, pass_state
from federica.errors import FieldError, InvalidInput


@cli.group()
def db() -> None:
    """Database schema, backup and restore."""


@db.command()
@pass_state
def upgrade(state: CliState) -> None:
    """Apply every pending migration."""
    migrate.upgrade(state.raw_context.engine)
    click.echo(f"database at revision {migrate.current_revision(state.raw_context.engine)}")


@db.command()
@pass_state
def current(state: CliState) -> None:
    """Show the schema revision and whether it is the newest."""
    engine = state.raw_context.engine
    cur, head = migrate.current_revision(engine), migrate.head_revision(engine)
    click.echo(
        f"current {cur or 'none'}, head {head}"
        + ("" if cur == head else " (run: federica db upgrade)")
    )


@db.command()
@click.argument("target", type=click.Path(dir_okay=False, path_type=Path))
@pass_state
def backup(state: CliState, target: Path) -> None:
    """Copy the database into TARGET (a new file) while the controller runs.

    SQLite: the online backup API (a consistent copy, also while others write; copying
    the file could catch it mid-transaction). PostgreSQL: pg_dump's custom format."""
    engine = state.raw_context.engine
    if target.exists():
        raise InvalidInput([FieldError("target", f"{target} exists; choose a new file")])
    if engine.dialect.name == "sqlite":
        source = _sqlite_path(engine.url.database)
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(target)) as dst:
            src.backup(dst)
    else:
        _run_pg(engine, "pg_dump", "--format=custom", "--no-owner", f"--file={target}")
    click.echo(f"backed up {engine.dialect.name} database to {target}")


@db.command()
@click.argument("source", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@pass_state
def restore(state: CliState, source: Path) -> None:
    """Restore a backup made by `federica db backup` into the configured database, which
    must be new (an SQLite file that does not exist yet, or an empty PostgreSQL
    database): a restore never overwrites a database in use."""
    engine = state.raw_context.engine
    if inspect(engine).get_table_names():
        raise InvalidInput(
            [FieldError("database", "the configured database is not empty; restore into a new one")]
        )
    if engine.dialect.name == "sqlite":
        path = _sqlite_path(engine.url.database)
        engine.dispose()
        Path(path).unlink(missing_ok=True)  # the empty file opening it just made
        with closing(sqlite3.connect(source)) as src, closing(sqlite3.connect(path)) as dst:
            if src.execute("PRAGMA quick_check").fetchone() != ("ok",):
                raise InvalidInput([FieldError("source", f"{source} is not a sound SQLite file")])
            src.backup(dst)
    else:
        engine.dispose()
        _run_pg(engine, "pg_restore", "--no-owner", "--exit-on-error", str(source), dbname=True)
    click.echo(
        f"restored {source}: database at revision {migrate.current_revision(engine) or 'none'}"
    )


def _sqlite_path(database: str | None) -> str:
    if not database or database == ":memory:":
        raise InvalidInput([FieldError("database", "an in-memory database has nothing to keep")])
    return database


def _run_pg(engine: Engine, *argv: str, dbname: bool = False) -> None:
    """pg_dump or pg_restore on the configured database: its URL as libpq takes it, the
    password (if any) in the environment, not on the command line."""
    url = engine.url.set(drivername="postgresql", password=None)
    target = url.render_as_string(hide_password=False)
    env = os.environ | ({"PGPASSWORD": str(engine.url.password)} if engine.url.password else {})
    command = [*argv, f"--dbname={target}"] if dbname else [*argv, target]
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise click.ClickException(f"{argv[0]} failed: {done.stderr.strip()[-2000:]}")
