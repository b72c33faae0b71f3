"""Database plumbing: declarative base, engine and session factories.

SQLite (the embedded default) runs in WAL mode with foreign keys on; PostgreSQL is the
production database. The schema is owned by Alembic (`federica db upgrade`).
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Connection,
    CursorResult,
    DateTime,
    Engine,
    Enum,
    MetaData,
    Table,
    create_engine,
    event,
    exc,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

# Stable constraint names so Alembic migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; federica stores timezone-aware UTC only")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> dt.datetime | None:
        if value is None:
            return None
        assert isinstance(value, dt.datetime)
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def str_enum(cls: type[enum.Enum], name: str) -> Enum:
    """A portable enum column: VARCHAR plus CHECK on every backend, storing the value."""
    return Enum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda e: [m.value for m in e],
    )


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def make_engine(url: str, *, sqlite_busy_timeout_ms: int = 30_000, echo: bool = False) -> Engine:
    if url.startswith("sqlite"):
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, echo=echo, connect_args={"timeout": sqlite_busy_timeout_ms / 1000}
        )
        _configure_sqlite(engine, sqlite_busy_timeout_ms)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    engine = create_engine(url, echo=echo)
    _ping_when_idle(engine)
    return engine


# A pooled connection unused this long is checked (one round trip) before it is handed
# out: the server may have restarted or dropped it meanwhile. One in steady use is not:
# pool_pre_ping's round trip on every checkout cost a booking 3-4 of its ~30 (B4); a
# connection that breaks while in use fails its statement, the pool then drops every
# connection made before, and the caller's retry (or 503) takes over.
IDLE_PING_S = 1.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < IDLE_PING_S:
            return
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception:  # whatever the driver raises for a dead connection
            alive = False
        if not alive:
            raise exc.DisconnectionError("the pooled connection was dropped")  # pool retries


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Take transaction control from pysqlite so BEGIN is issued by us (see _on_begin).
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # BEGIN IMMEDIATE takes the write lock up front: SQLite serialises writers instead of
        # failing a read-then-write transaction half way with "database is locked".
        # Read-only sessions (see make_session_factory) begin deferred and never block.
        readonly = conn.get_execution_options().get(READONLY_OPTION, False)
        conn.exec_driver_sql("BEGIN" if readonly else "BEGIN IMMEDIATE")


READONLY_OPTION = "federica_readonly"


def make_session_factory(engine: Engine, *, readonly: bool = False) -> sessionmaker[Session]:
    """Sessions for one unit of work; `readonly` ones never take SQLite's write lock."""
    bind = engine.execution_options(**{READONLY_OPTION: True}) if readonly else engine
    return sessionmaker(bind, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any exception."""
    with factory() as session, session.begin():
        yield session


def driver_sql(
    conn: Connection, sql: str, params: Sequence[Any] = ()
) -> CursorResult[*tuple[Any, ...]]:
    """Plain SQL written with `?` marks, straight to the driver: for the few statements on
    the booking path where SQLAlchemy's statement handling costs more than the query.
    Values go in and come out as the driver has them (no column type conversion)."""
    if conn.dialect.paramstyle != "qmark":
        sql = sql.replace("?", "%s")
    return conn.exec_driver_sql(sql, tuple(params))


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    """A multi-row INSERT through the driver's executemany, values converted by each
    column type's own bind processor. Same result as `conn.execute(insert(table), rows)`,
    without SQLAlchemy's per-row parameter handling, which costs ~25 µs a row: a booking
    writes ~100 reservation rows and must answer in milliseconds."""
    if not rows:
        return
    columns = list(rows[0])
    sql, processors = _insert_statement(conn, table, columns)
    # Rows of one booking repeat most values (its window, the kinds): convert each once,
    # and touch only the columns whose type converts at all.
    converting: list[tuple[int, Any, dict[Any, Any]]] = [
        (i, proc, {}) for i, proc in enumerate(processors) if proc is not None
    ]
    params: list[Any] = []
    for row in rows:
        values = [row[name] for name in columns]
        for i, proc, seen in converting:
            value = values[i]
            if value in seen:
                values[i] = seen[value]
            else:
                values[i] = seen[value] = proc(value)
        params.append(tuple(values))
    conn.exec_driver_sql(sql, params)


def insert_row(conn: Connection, table: Table, row: Mapping[str, Any]) -> int:
    """One INSERT as `insert_rows` makes it, returning the new row's `id`."""
    sql, processors = _insert_statement(conn, table, list(row))
    values = tuple(v if p is None else p(v) for v, p in zip(row.values(), processors, strict=True))
    new_id = conn.exec_driver_sql(sql + " RETURNING id", values).scalar()
    assert new_id is not None
    return int(new_id)


def _insert_statement(conn: Connection, table: Table, columns: list[str]) -> tuple[str, list[Any]]:
    """The driver-level INSERT for these columns, and each column's bind processor."""
    return _insert_statement_for(conn.dialect, table, tuple(columns))


@functools.lru_cache(maxsize=256)
def _insert_statement_for(
    dialect: Dialect, table: Table, columns: tuple[str, ...]
) -> tuple[str, list[Any]]:
    processors = [
        table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
    ]
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    quote = dialect.identifier_preparer.quote
    sql = (
        f"INSERT INTO {quote(table.name)} ({', '.join(quote(c) for c in columns)}) "  # noqa: S608  (names from metadata, values bound)
        f"VALUES ({', '.join(mark for _ in columns)})"
    )
    return sql, processors
