"""db.insert_rows writes exactly what SQLAlchemy's own INSERT writes, on both databases
(enums, timezone-aware times, NULLs, repeated values)."""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from sqlalchemy import Table, insert, select

from federica.context import Context
from federica.db import insert_row, insert_rows, transaction
from federica.slices.models import MaintenanceTarget, MaintenanceWindow


def test_insert_rows_matches_sqlalchemy_insert(db: Context) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    start = dt.datetime(2026, 12, 1, 10, 30, 15, 123456, tzinfo=cet)
    rows: list[dict[str, Any]] = [
        {
            "target_kind": kind,
            "target": f"t{i}",
            "start": start,
            "end": start + dt.timedelta(hours=i + 1),
            "reason": "fibre works" if i % 2 else "ünïcode; 'quotes'",
            "created_at": start,
        }
        for i, kind in enumerate([*MaintenanceTarget, MaintenanceTarget.LINK])
    ]
    table = cast(Table, MaintenanceWindow.__table__)
    with transaction(db.sessions) as s:
        insert_rows(s.connection(), table, [r | {"id": 100 + i} for i, r in enumerate(rows)])
        s.connection().execute(insert(table), [r | {"id": 200 + i} for i, r in enumerate(rows)])
    with transaction(db.read_sessions) as s:
        got = s.scalars(select(MaintenanceWindow).order_by(MaintenanceWindow.id)).all()

    def fields(m: MaintenanceWindow) -> tuple[Any, ...]:
        return (m.target_kind, m.target, m.start, m.end, m.reason, m.created_at)

    fast, reference = got[: len(rows)], got[len(rows) :]
    assert [fields(m) for m in fast] == [fields(m) for m in reference]
    assert fast[0].start == start and fast[0].start.tzinfo is not None
    assert [m.target_kind for m in fast] == [r["target_kind"] for r in rows]
    with db.engine.connect() as conn:
        insert_rows(conn, table, [])  # nothing to write is not an error


def test_insert_row_returns_the_new_id_and_writes_what_insert_rows_writes(db: Context) -> None:
    start = dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC)
    row = {
        "target_kind": MaintenanceTarget.POP,
        "target": "MIL",
        "start": start,
        "end": start + dt.timedelta(hours=2),
        "reason": "power",
        "created_at": start,
    }
    table = cast(Table, MaintenanceWindow.__table__)
    with transaction(db.sessions) as s:
        ids = [insert_row(s.connection(), table, row), insert_row(s.connection(), table, row)]
    assert ids[1] > ids[0]
    with transaction(db.read_sessions) as s:
        got = [s.get(MaintenanceWindow, i) for i in ids]
    assert all(m is not None and (m.target_kind, m.target, m.start) == (
        MaintenanceTarget.POP, "MIL", start) for m in got)  # fmt: skip
