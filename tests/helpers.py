"""Small helpers shared by tests."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table, func, select

from federica.context import Context
from federica.db import Base, transaction
from federica.substrate.inventory import LoadReport, apply_topology
from federica.substrate.topology import parse_topology


def load_file(db: Context, path: Path) -> LoadReport:
    topo = parse_topology(path.read_bytes())
    with transaction(db.sessions) as s:
        return apply_topology(s, topo)


# What a refused request still writes, by design: the audit log records every attempt
# (anonymous ones are counted), failed logins count towards the rate limit, and a token
# notes when it was last used.
RECORDS = {"audit_log", "anonymous_requests", "login_failures", "api_tokens"}


def _state_tables() -> list[Table]:
    return [t for t in Base.metadata.sorted_tables if t.name not in RECORDS]


def row_counts(db: Context) -> dict[str, int]:
    """Rows per table: a cheap fingerprint for "the database did not change" (its state,
    not the records of attempts to change it)."""
    with transaction(db.read_sessions) as s:
        return {t.name: s.scalar(select(func.count()).select_from(t)) or 0 for t in _state_tables()}


def records(db: Context) -> tuple[int, int]:
    """(audit rows, anonymous requests counted): each refused request adds one to one."""
    from federica.aaa.models import AnonymousRequest, AuditEntry

    with transaction(db.read_sessions) as s:
        rows = s.scalar(select(func.count()).select_from(AuditEntry)) or 0
        counted = s.scalar(select(func.coalesce(func.sum(AnonymousRequest.count), 0))) or 0
    return rows, int(counted)


def table_dump(db: Context) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, sorted: "unchanged" means equal dumps."""
    with transaction(db.read_sessions) as s:
        return {
            t.name: sorted((tuple(r) for r in s.execute(select(t))), key=repr)
            for t in _state_tables()
        }
