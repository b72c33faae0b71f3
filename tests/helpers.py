"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import func, select

from federica.app import Context
from federica.db import Base, transaction
from federica.substrate.inventory import LoadReport, apply_topology
from federica.substrate.topology import parse_topology


def load_file(db: Context, path: Path) -> LoadReport:
    topo = parse_topology(path.read_bytes())
    with transaction(db.sessions) as s:
        return apply_topology(s, topo)


def row_counts(db: Context) -> dict[str, int]:
    """Rows per table: a cheap fingerprint for "the database did not change"."""
    with transaction(db.read_sessions) as s:
        return {
            t.name: s.scalar(select(func.count()).select_from(t)) or 0
            for t in Base.metadata.sorted_tables
        }


def table_dump(db: Context) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, sorted: "unchanged" means equal dumps."""
    with transaction(db.read_sessions) as s:
        return {
            t.name: sorted((tuple(r) for r in s.execute(select(t))), key=repr)
            for t in Base.metadata.sorted_tables
        }
